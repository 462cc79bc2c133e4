"""Import an RVC experiment folder (`logs/<exp>/`) into the dataset cache, recomputing nothing.

RVC's preprocess and feature extraction leave, per training segment `<i>_<j>` (file i,
window j; rvc-format.md §7):

    0_gt_wavs/<i>_<j>.wav           float32 audio at the model's rate   -> audio
    3_feature256|768/<i>_<j>.npy    float32 [T_h, 256|768] at 50 Hz     -> phone
    2a_f0/<i>_<j>.wav.npy           coarse pitch 1..255 at 100 Hz       -> pitch (f0 models)
    2b-f0nsf/<i>_<j>.wav.npy        F0 in Hz (float64) at 100 Hz        -> f0 (f0 models)
    filelist.txt                    the training list, `gt|feature|2a|2b|speaker` (f0) or
                                    `gt|feature|speaker`, absolute paths, plus two lines for
                                    RVC's shipped silent sample `logs/mute/...`

The segments are those named in filelist.txt (found by name inside the folder, since its
absolute paths may come from another machine); without one, those present in every folder,
which is how RVC builds the list. The `mute` lines are left out. Segments of one input file
form one source of the cache, so an interrupted import resumes. Arrays are read with
`allow_pickle=False`: an .npy file cannot run code.

    import_rvc_logs(exp_dir, out, ImportRVCLogsSettings(...)) -> ImportRVCLogsResult
    format_import_rvc_logs(result) -> str

Not for: preparing raw audio (`prepare.py`).
"""
from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DistillRVCError
from ..skipped import Skipped, summary
from .dataset import DatasetWriter

log = logging.getLogger(__name__)

FEATURE_DIRS = {"3_feature256": "v1", "3_feature768": "v2"}


@dataclass(frozen=True)
class ImportRVCLogsSettings:
    """How to read the experiment folder."""

    version: str | None = None  # v1 or v2: only needed with both feature folders and no filelist.txt

    def check(self) -> None:
        """Refuse a version RVC does not have."""
        if self.version is not None and self.version not in ("v1", "v2"):
            raise DistillRVCError(f"unknown version {self.version!r}; use v1 or v2")


@dataclass
class ImportRVCLogsResult:
    """What an import run did."""

    out: Path
    version: str
    sample_rate: int
    f0: bool
    segments: int = 0  # imported by this run
    resumed: int = 0  # sources already in the cache
    seconds: float = 0.0
    skipped: Skipped = field(default_factory=list)  # (segment name, reason)


def _name_of(path_text: str) -> tuple[str, str]:
    """'E:\\rvc\\logs\\exp\\0_gt_wavs\\3_1.wav' -> ('0_gt_wavs', '3_1.wav'), for either separator."""
    parts = [p for p in re.split(r"[\\/]", path_text.strip()) if p]
    return (parts[-2] if len(parts) > 1 else "", parts[-1] if parts else "")


def _is_mute(path_text: str) -> bool:
    parts = [p for p in re.split(r"[\\/]", path_text.strip()) if p]
    return len(parts) >= 3 and parts[-3] == "mute"


def read_filelist(exp: Path) -> tuple[list[str], str | None, bool]:
    """(segment names like '3_1', the feature folder it names, f0) from `exp/filelist.txt`."""
    names, feature_dir, f0 = [], None, None
    for n, line in enumerate((exp / "filelist.txt").read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) not in (3, 5):
            raise DistillRVCError(f"{exp / 'filelist.txt'}:{n}: expected 5 (f0) or 3 (no f0) '|'-separated "
                                  f"fields, found {len(cols)}")
        if f0 is not None and f0 != (len(cols) == 5):
            raise DistillRVCError(f"{exp / 'filelist.txt'}:{n}: mixes f0 and no-f0 lines")
        f0 = len(cols) == 5
        if _is_mute(cols[0]):
            continue
        folder, name = _name_of(cols[0])
        feature_dir = feature_dir or _name_of(cols[1])[0]
        if folder != "0_gt_wavs" or not name.endswith(".wav"):
            raise DistillRVCError(f"{exp / 'filelist.txt'}:{n}: first field should be a 0_gt_wavs/*.wav path")
        names.append(name[: -len(".wav")])
    if f0 is None:
        raise DistillRVCError(f"{exp / 'filelist.txt'}: empty")
    return sorted(set(names), key=_segment_order), feature_dir, f0


def _segment_order(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in name.split("_"))


def import_rvc_logs(exp_dir: str | Path, out: str | Path, settings: ImportRVCLogsSettings | None = None, *,
                    progress: bool = True) -> ImportRVCLogsResult:
    """Copy an RVC experiment's segments (audio, features, F0, coarse pitch) into the cache `out`.

    The settings' `version` ("v1"/"v2") is only needed when the folder holds both 3_feature256
    and 3_feature768 and no filelist.txt says which one was used.
    """
    from tqdm import tqdm

    settings = settings or ImportRVCLogsSettings()
    settings.check()
    version = settings.version
    exp = Path(exp_dir)
    if not (exp / "0_gt_wavs").is_dir():
        raise DistillRVCError(f"{exp}: not an RVC experiment folder (no 0_gt_wavs/); pass logs/<experiment>")
    present = [d for d in FEATURE_DIRS if (exp / d).is_dir()]
    names, feature_dir, f0 = None, None, (exp / "2a_f0").is_dir() and (exp / "2b-f0nsf").is_dir()
    if (exp / "filelist.txt").is_file():
        names, feature_dir, f0 = read_filelist(exp)
    if version is not None:
        feature_dir = {v: d for d, v in FEATURE_DIRS.items()}[version]
    elif feature_dir not in FEATURE_DIRS:
        if not present:
            raise DistillRVCError(f"{exp}: no 3_feature256/ or 3_feature768/ folder; run RVC's feature extraction first")
        if len(present) > 1:
            raise DistillRVCError(f"{exp}: both 3_feature256/ and 3_feature768/ exist; pass --version v1 or v2")
        feature_dir = present[0]
    if not (exp / feature_dir).is_dir():
        raise DistillRVCError(f"{exp}: no {feature_dir}/ folder")
    if f0 and not ((exp / "2a_f0").is_dir() and (exp / "2b-f0nsf").is_dir()):
        raise DistillRVCError(f"{exp}: filelist.txt lists F0 files but 2a_f0/ or 2b-f0nsf/ is missing")
    if names is None:
        names = sorted({p.stem for p in (exp / "0_gt_wavs").glob("*.wav")}
                       & {p.stem for p in (exp / feature_dir).glob("*.npy")}, key=_segment_order)
    if not names:
        raise DistillRVCError(f"{exp}: no segments to import (0_gt_wavs/ and {feature_dir}/ share no names)")

    sample_rate = _sample_rate(exp, names)
    dim = 256 if FEATURE_DIRS[feature_dir] == "v1" else 768
    report = ImportRVCLogsResult(out=Path(out), version=FEATURE_DIRS[feature_dir], sample_rate=sample_rate, f0=f0)
    writer = DatasetWriter(out, version=report.version, feature_dim=dim, sample_rate=sample_rate, f0=f0,
                           extractor={"tool": "distill-rvc import-rvc-logs", "experiment": exp.resolve().name,
                                      "features": feature_dir})
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:  # <i>_<j>: all windows j of input file i form one source
        groups[f"{exp.resolve().name}/{name.split('_')[0]}"].append(name)
    for source, members in tqdm(groups.items(), desc="import", unit="file", disable=not progress):
        if writer.done(source):
            report.resumed += 1
            continue
        segments = []
        for name in members:
            try:
                segments.append(_read_segment(exp, name, feature_dir, dim, sample_rate, f0))
            except DistillRVCError as e:
                log.warning("skipping segment %s: %s", name, e)
                report.skipped.append((name, str(e)))
        writer.add_source(source, segments)
        report.segments += len(segments)
        report.seconds += sum(len(s[3]) for s in segments) / sample_rate
    return report


def format_import_rvc_logs(result: ImportRVCLogsResult) -> str:
    """What `distill-rvc import-rvc-logs` prints: what was imported, what an earlier run had, what was skipped."""
    return summary(f"imported {result.segments} segments ({result.seconds:.1f} s of audio; {result.version}, "
                   f"{result.sample_rate} Hz, {'f0' if result.f0 else 'no f0'}) -> {result.out}",
                   result.skipped, "segment(s)", resumed=(result.resumed, "source file(s) were already imported"))


def _sample_rate(exp: Path, names: list[str]) -> int:
    import soundfile as sf

    for name in names:
        path = exp / "0_gt_wavs" / f"{name}.wav"
        try:
            return int(sf.info(str(path)).samplerate)
        except (RuntimeError, OSError):
            continue
    raise DistillRVCError(f"{exp}: none of the 0_gt_wavs/*.wav files can be read")


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DistillRVCError(f"missing {path.parent.name}/{path.name}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DistillRVCError(f"{path.parent.name}/{path.name} is not a readable .npy array ({e})") from None


def _read_segment(exp: Path, name: str, feature_dir: str, dim: int, sr: int, f0: bool):
    """(phone [T_h, C], f0 [T] or None, pitch [T] or None, audio [N]) of segment `name`."""
    import soundfile as sf

    phone = _load_npy(exp / feature_dir / f"{name}.npy")
    if phone.ndim != 2 or phone.shape[1] != dim or len(phone) == 0:
        raise DistillRVCError(f"{feature_dir}/{name}.npy has shape {list(phone.shape)}, expected [T, {dim}]")
    if not np.isfinite(phone).all():
        raise DistillRVCError(f"{feature_dir}/{name}.npy holds NaN or inf (RVC skips it too)")
    wav = exp / "0_gt_wavs" / f"{name}.wav"
    try:
        audio, file_sr = sf.read(str(wav), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as e:
        raise DistillRVCError(f"0_gt_wavs/{name}.wav cannot be read ({e})") from None
    if file_sr != sr:
        raise DistillRVCError(f"0_gt_wavs/{name}.wav is at {file_sr} Hz, the others at {sr} Hz")
    audio = audio.mean(axis=1)
    if not np.isfinite(audio).all():
        raise DistillRVCError(f"0_gt_wavs/{name}.wav holds NaN or inf samples")
    hz = pitch = None
    if f0:
        hz = _load_npy(exp / "2b-f0nsf" / f"{name}.wav.npy").astype(np.float32)
        pitch = _load_npy(exp / "2a_f0" / f"{name}.wav.npy")
        if hz.ndim != 1 or pitch.shape != hz.shape:
            raise DistillRVCError(f"2a_f0/{name}.wav.npy and 2b-f0nsf/{name}.wav.npy disagree in shape "
                                  f"({list(pitch.shape)} vs {list(hz.shape)})")
        if not np.isfinite(hz).all() or (hz < 0).any():
            raise DistillRVCError(f"2b-f0nsf/{name}.wav.npy holds negative, NaN or inf F0")
        if pitch.size and (pitch.min() < 1 or pitch.max() > 255):
            raise DistillRVCError(f"2a_f0/{name}.wav.npy holds values outside 1..255")
    return phone.astype(np.float32), hz, pitch, audio
