"""`distill-rvc prepare`: a folder of recordings -> the dataset cache `teach` trains from.

Each file goes through RVC's training preprocess (rvc-format.md §7), so a prepared cache
holds the same kind of data as an imported RVC `logs/<exp>` folder:

    load mono at the target rate -> causal 5th-order 48 Hz high-pass -> slice at silences
    -> 3.7 s windows overlapping 0.3 s -> drop windows peaking above 2.5
    -> x = 0.75 * (x / peak * 0.9) + 0.25 * x          (the loudness mix)

then, per window, the 16 kHz copy gives content features (50 Hz, as RVC stores them) and
F0 (100 Hz) plus coarse pitch, and the window itself is the target audio. Everything goes
through `DatasetWriter`: one source per input file, recorded once all its segments are on
disk, so a re-run skips finished files. Unusable files are skipped with a warning naming
them and are tried again on the next run.

    prepare(audio_dir, out, hubert, PrepareSettings(...)) -> PrepareResult;  format_prepare(result) -> str

Not for: importing RVC's own extracted features (`rvc_logs.py`) or reading the cache
(`dataset.py`).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import make_folder
from ..errors import DistillRVCError
from ..features.audio import AUDIO_SUFFIXES, MIN_SECONDS, SILENCE_PEAK, highpass, load_audio, resample
from ..features.pitch import F0_METHODS, coarse_pitch, extract_f0
from ..options import resolve_device
from ..safe_load import file_sha256
from ..skipped import Skipped, summary
from .dataset import DatasetWriter
from .slicer import SlicerSettings, slice_at_silences

if TYPE_CHECKING:
    from ..features.encoders import FeatureEncoder

log = logging.getLogger(__name__)

SAMPLE_RATES = (32000, 40000, 48000)
WINDOW_S, OVERLAP_S = 3.7, 0.3  # RVC uses 3.0 s windows on fp32-only or <= 4 GB GPUs
MAX_PEAK = 2.5  # windows louder than this are dropped (clipping or a broken file)
LOUDNESS_MAX, LOUDNESS_ALPHA = 0.9, 0.75


@dataclass(frozen=True)
class PrepareSettings:
    """How the recordings become training data: the teacher's version and rate, the F0 extractor."""

    version: str = "v2"  # the teacher's: v1 = 256-d content features (layer 9), v2 = 768-d (layer 12)
    f0_method: str = "harvest"  # harvest, dio, rmvpe or fcpe
    sr: int = 40000  # the teacher's sample rate; target audio is stored at it
    rmvpe: str | Path | None = None  # rmvpe.pt, for f0_method "rmvpe"
    fcpe: str | Path | None = None  # fcpe_c_v001.pt for "fcpe" (None: $DISTILL_RVC_FCPE, else the torchfcpe wheel)
    device: str = "auto"  # where the content encoder and RMVPE run
    window_s: float = WINDOW_S  # segment length (RVC: 3.7; 3.0 for GPUs of 4 GB or less)

    def check(self) -> None:
        """Refuse a device, version, F0 method, rate or window RVC's preprocess has no use for."""
        resolve_device(self.device)
        if self.version not in ("v1", "v2"):
            raise DistillRVCError(f"unknown version {self.version!r}; use v1 or v2 (the teacher's version)")
        if self.f0_method not in F0_METHODS:
            raise DistillRVCError(f"unknown F0 method {self.f0_method!r}; use one of {', '.join(F0_METHODS)}")
        if self.f0_method == "rmvpe" and self.rmvpe is None:
            raise DistillRVCError("--f0 rmvpe needs the model file: add --rmvpe path/to/rmvpe.pt")
        if int(self.sr) not in SAMPLE_RATES:
            raise DistillRVCError(f"unsupported sample rate {self.sr}; use the teacher's: 32000, 40000 or 48000")
        if not 0.5 <= self.window_s <= 30:
            raise DistillRVCError(f"window of {self.window_s} s is out of range; RVC uses 3.7 (3.0 on small GPUs)")


@dataclass
class PrepareResult:
    """What a `prepare` run did."""

    out: Path
    files: int = 0  # audio files found
    prepared: int = 0  # processed by this run
    resumed: int = 0  # already in the cache from an earlier run
    segments: int = 0  # written by this run
    seconds: float = 0.0  # of target audio written by this run
    bad: Skipped = field(default_factory=list)  # (file, reason), skipped


def windows(clip: np.ndarray, sr: int, window_s: float = WINDOW_S, overlap_s: float = OVERLAP_S) -> list[np.ndarray]:
    """RVC's training windows of one slice: `window_s` long, stepping `window_s - overlap_s`,
    until what is left is at most `window_s + overlap_s`, which becomes the last window."""
    out, i = [], 0
    while True:
        start = int(sr * (window_s - overlap_s) * i)
        i += 1
        if len(clip) - start > (window_s + overlap_s) * sr:
            out.append(clip[start: start + int(window_s * sr)])
        else:
            out.append(clip[start:])
            return out


def loudness_mix(segment: np.ndarray) -> np.ndarray | None:
    """RVC's level normalisation: 0.75 * (x / peak * 0.9) + 0.25 * x; None if the window is
    silent or peaks above 2.5 (RVC drops those)."""
    peak = float(np.abs(segment).max()) if len(segment) else 0.0
    if peak > MAX_PEAK or peak < SILENCE_PEAK:
        return None
    return (LOUDNESS_ALPHA * (segment / peak * LOUDNESS_MAX) + (1 - LOUDNESS_ALPHA) * segment).astype(np.float32)


def preprocess(audio: np.ndarray, sr: int, *, window_s: float = WINDOW_S,
               slicer: SlicerSettings = SlicerSettings()) -> list[np.ndarray]:
    """RVC's training preprocess of one recording [N] at the target rate -> float32 segments."""
    filtered = highpass(audio, sr, zero_phase=False)
    segments = []
    for clip in slice_at_silences(filtered, sr, slicer):
        for window in windows(clip, sr, window_s):
            mixed = loudness_mix(window)
            if mixed is not None and len(mixed) >= MIN_SECONDS * sr:
                segments.append(mixed)
    return segments


def find_audio(audio_dir: Path) -> list[Path]:
    """Audio files under `audio_dir` (recursively, hidden ones excluded), sorted; or the file itself."""
    if audio_dir.is_file():
        return [audio_dir]
    return sorted(p for p in audio_dir.rglob("*")
                  if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(audio_dir).parts))


def prepare(audio_dir: str | Path, out: str | Path, hubert: str | Path, settings: PrepareSettings | None = None,
            *, progress: bool = True) -> PrepareResult:
    """Prepare every audio file under `audio_dir` into the cache folder `out` (see module doc),
    with RVC's content encoder `hubert` (hubert_base.pt)."""
    from tqdm import tqdm

    from ..features.encoders import open_encoder
    from ..features.fcpe import find_fcpe

    settings = settings or PrepareSettings()
    device = str(resolve_device(settings.device))  # first, then the folder, then the rest: as the CLI always did
    audio_dir, out = Path(audio_dir), Path(out)
    if not audio_dir.exists():
        raise DistillRVCError(f"{audio_dir}: no such folder")
    settings.check()
    version, f0_method, rmvpe, window_s = settings.version, settings.f0_method, settings.rmvpe, settings.window_s
    sr = int(settings.sr)
    files = find_audio(audio_dir)
    if not files:
        raise DistillRVCError(f"{audio_dir}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    make_folder(out / "segments")  # a read-only or blocked cache folder: one line, before any work
    fcpe = find_fcpe(settings.fcpe) if f0_method == "fcpe" else None
    encoder = open_encoder(hubert, device=device)
    dim = encoder.dim(version)
    if f0_method in ("rmvpe", "fcpe"):  # load (and validate) it once, before any file is processed
        extract_f0(np.zeros(1600, dtype=np.float32), f0_method, rmvpe_path=rmvpe, fcpe_path=fcpe, device=device)
    extractor: dict[str, Any] = {
        "tool": "distill-rvc prepare",
        "content_encoder": {"file": Path(hubert).name, "sha256": file_sha256(hubert, 16)},
        "f0_method": f0_method,
        "rmvpe": {"file": Path(rmvpe).name, "sha256": file_sha256(rmvpe, 16)} if f0_method == "rmvpe" else None,
        # only with fcpe, so caches prepared before fcpe existed still resume
        **({"fcpe": {"file": fcpe.name, "sha256": file_sha256(fcpe, 16)}} if fcpe is not None else {}),
        "preprocess": {"highpass_hz": 48, "highpass": "butterworth order 5, causal", "slicer": asdict(SlicerSettings()),
                       "window_s": window_s, "overlap_s": OVERLAP_S, "max_peak": MAX_PEAK,
                       "loudness": {"max": LOUDNESS_MAX, "alpha": LOUDNESS_ALPHA}},
    }
    writer = DatasetWriter(out, version=version, feature_dim=dim, sample_rate=sr, f0=True, extractor=extractor)
    report = PrepareResult(out=out, files=len(files))
    for path in tqdm(files, desc="prepare", unit="file", disable=not progress):
        source = path.relative_to(audio_dir).as_posix() if path != audio_dir else path.name
        if writer.done(source):
            report.resumed += 1
            continue
        try:
            segments = _prepare_file(path, sr, encoder, version, f0_method, rmvpe or fcpe, device, window_s)
        except DistillRVCError as e:  # a bad file is reported and skipped; write errors below still stop the run
            reason = str(e).removeprefix(f"{path}: ")
            log.warning("skipping %s: %s", source, reason)
            report.bad.append((source, reason))
            continue
        writer.add_source(source, segments)
        report.prepared += 1
        report.segments += len(segments)
        report.seconds += sum(len(s[3]) for s in segments) / sr
    if report.prepared + report.resumed == 0:
        raise DistillRVCError(f"{audio_dir}: none of the {len(files)} audio files could be used (see the warnings)")
    return report


def format_prepare(result: PrepareResult) -> str:
    """What `distill-rvc prepare` prints: what was written, what an earlier run had done, what was skipped."""
    return summary(f"prepared {result.prepared} file(s): {result.segments} segments, {result.seconds:.1f} s of audio "
                   f"-> {result.out}", result.bad, "unusable file(s)",
                   resumed=(result.resumed, "file(s) were already prepared"))


def _prepare_file(path: Path, sr: int, encoder: FeatureEncoder, version: str, f0_method: str,
                  f0_model: str | Path | None, device: str,
                  window_s: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """One recording -> [(phone [T_h, C] at 50 Hz, f0 [T] Hz, coarse pitch [T], audio [N] at sr)].

    `f0_model`: the rmvpe.pt or fcpe_c_v001.pt of those methods."""
    audio = load_audio(path, sr)
    out = []
    for segment in preprocess(audio, sr, window_s=window_s):
        audio_16k = resample(segment, sr, 16000)
        if len(audio_16k) < encoder.min_samples:
            continue
        phone = encoder.extract(audio_16k, version)
        if not np.isfinite(phone).all():  # RVC skips such segments too
            log.warning("%s: a segment gave NaN content features; skipped", path)
            continue
        f0 = extract_f0(audio_16k, f0_method, rmvpe_path=f0_model, fcpe_path=f0_model, device=device)
        out.append((phone, f0, coarse_pitch(f0), segment))
    if not out:
        raise DistillRVCError(f"{path}: no usable segment (nothing above -42 dB long enough to keep)")
    return out
