"""`distill-rvc convert`: wav -> wav voice conversion with any of our models, as RVC's pipeline does it.

    load mono 16 kHz
    -> cut points at quiet moments near every multiple of x_center (only if longer than x_max)
    -> per chunk, with x_pad of real context each side (reflected beyond the ends):
       RVC's conditioning (peak 0.95, zero-phase 48 Hz high-pass), F0, transpose, coarse
       pitch, content features, retrieval (faiss), protect, synthesizer
    -> drop the context, cross-fade 20 ms into the previous chunk
    -> 16-bit WAV at the model's rate, written while the chunks come

This is RVC's `Pipeline.pipeline` (rvc-format.md §5) with one change: RVC conditions the whole
input and computes F0 on all of it at once, which costs about 150 MB per minute of input
(dio, measured); we do both per chunk on the same padded stretch, which gives the same frames
(see `chunk_inputs`). Where the cuts fall and how long the chunks are is chunking.py's part;
the output has exactly round(N x sr / 16000) samples, and seams are cross-faded because the
NSF sine restarts its phase in every chunk. `convert()` also turns off oneDNN's per-shape
primitive cache, which otherwise grows with every new chunk length (`limit_onednn_cache`).

    convert(model, hubert, src, dst, ConvertSettings(...)) -> ConvertResult;  format_convert(result) -> str

Not for: training data (`prepare`), model comparison (`compare`), real-time streaming (see
`bench`'s time to first audio).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from .atomic import atomic_path
from .backends import Backend, open_backend
from .backends.base import ModelInfo
from .chunking import DEFAULT_BUDGET_GB, SR_16K, WINDOW, ChunkSizes, chunk_sizes, conditioner, cut_points, stretch
from .errors import DistillRVCError
from .features.audio import AUDIO_SUFFIXES, load_audio
from .features.pitch import F0_METHODS, coarse_pitch, extract_f0, transpose_f0
from .features.retrieval import RetrievalIndex, protect_mix, retrieve
from .options import check_threads, refuse_output_inside, refuse_overwrite, resolve_device
from .safe_load import file_sha256
from .skipped import Skipped, summary
from .timing import torch_threads

if TYPE_CHECKING:
    from .features.encoders import FeatureEncoder

log = logging.getLogger(__name__)

FADE_S = 0.02
PROGRESS_CHUNKS = 3  # a file longer than this many chunks gets its own progress bar
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]"


@dataclass(frozen=True)
class ConvertSettings:
    """Conversion options (RVC's names in brackets)."""

    f0_method: str = "fcpe"  # harvest, dio, rmvpe or fcpe (f0method); fcpe: bench/bench_f0.py
    rmvpe: str | Path | None = None  # rmvpe.pt for f0_method "rmvpe"
    fcpe: str | Path | None = None  # fcpe_c_v001.pt for "fcpe" (None: $DISTILL_RVC_FCPE, else the torchfcpe wheel)
    transpose: float = 0.0  # semitones (f0_up_key)
    sid: int = 0  # speaker id
    index: str | Path | None = None  # faiss .index of the voice's training features (file_index)
    index_rate: float = 0.75
    protect: float = 0.33  # voiceless-consonant protection; 0.5 or more = off
    filter_radius: int = 3  # > 2: median-filter harvest's F0 (kernel 3)
    chunks: ChunkSizes | None = None  # None: from `memory_gb`
    memory_gb: float = DEFAULT_BUDGET_GB
    seed: int | None = 0  # prior noise; None = fresh noise each run
    fade_s: float = FADE_S

    def check(self) -> None:
        """Refuse values RVC's pipeline has no meaning for, naming the option."""
        if self.f0_method not in F0_METHODS:
            raise DistillRVCError(f"unknown F0 method {self.f0_method!r}; use one of {', '.join(F0_METHODS)}")
        if not 0.0 <= self.index_rate <= 1.0:
            raise DistillRVCError(f"--index-rate {self.index_rate} is outside 0..1")
        if not 0.0 <= self.protect <= 0.5:
            raise DistillRVCError(f"--protect {self.protect} is outside 0..0.5 (0.5 turns protection off)")
        if self.sid < 0:
            raise DistillRVCError(f"--sid {self.sid} must be 0 or more")
        if self.memory_gb <= 0:
            raise DistillRVCError(f"--memory-gb {self.memory_gb} must be positive")
        if self.chunks is not None and self.chunks.pad < 0.1:
            raise DistillRVCError("the context pad must be at least 0.1 s")


# ---------------------------------------------------------------------------------- chunks
@dataclass
class ChunkInput:
    """One synthesizer pass: inputs for T frames and where its audio lands in the output."""

    phone: np.ndarray  # [1, T, C] float32
    pitch: np.ndarray | None  # [1, T] int64
    pitchf: np.ndarray | None  # [1, T] float32 Hz
    noise: np.ndarray | None  # [1, inter, T] standard normal
    offset: int  # output sample where this pass's first sample lands (negative: context before the start)
    span: tuple[int, int]  # the output samples this chunk is responsible for


@dataclass
class Timings:
    """Seconds spent per stage, summed over chunks and files."""

    f0: float = 0.0
    content: float = 0.0
    synth: float = 0.0
    audio_s: float = 0.0  # seconds of input converted
    passes: int = 0  # synthesizer passes (chunks)

    def add(self, other: "Timings") -> None:
        for name in ("f0", "content", "synth", "audio_s", "passes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def chunk_inputs(audio_16k: np.ndarray, encoder: "FeatureEncoder", backend: Backend, settings: ConvertSettings,
                 sizes: ChunkSizes, index: RetrievalIndex | None = None, timings: Timings | None = None
                 ) -> Iterator[ChunkInput]:
    """16 kHz audio [N] as loaded -> the synthesizer passes that convert it, one at a time.

    RVC conditions and reflect-pads the whole input and computes F0 on all of it; here each
    chunk's stretch (x_pad of context each side) is conditioned and analysed on its own. Both
    are local (a 48 Hz filter, 10 ms F0 frames), so the frames a chunk keeps come out the same
    (tests/test_convert.py checks it), and memory no longer grows with the input's length.
    """
    info = backend.info
    timings = timings if timings is not None else Timings()
    n = len(audio_16k)
    r_num = info.hop  # output samples per 160 input samples
    pad_frames = int(round(sizes.pad * 100))
    t_pad = pad_frames * WINDOW
    condition = conditioner(audio_16k)
    cuts = cut_points(audio_16k, sizes, condition)
    bounds = [0, *cuts, n]
    n_out = int(round(n * info.hop / WINDOW))
    rng = np.random.default_rng(settings.seed)
    for j, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        last = j == len(bounds) - 2
        # x_pad of context before `a` and after `b` (+ one frame, so the content frames cover it)
        piece = stretch(audio_16k, a - t_pad, n + t_pad if last else b + t_pad + WINDOW, condition)
        need = pad_frames + math.ceil((b - a) / WINDOW) + (0 if last else pad_frames)

        pitch = pitchf = None
        if info.f0:
            start = time.perf_counter()
            f0 = extract_f0(piece, settings.f0_method, rmvpe_path=settings.rmvpe, fcpe_path=settings.fcpe,
                            device=encoder.device,
                            filter_radius=settings.filter_radius)  # [len(piece) // 160 + 1]
            pitchf = transpose_f0(f0, settings.transpose).astype(np.float32)
            timings.f0 += time.perf_counter() - start

        start = time.perf_counter()
        feats = encoder.extract(piece, info.version)  # [T_h, C] at 50 Hz
        if not np.isfinite(feats).all():
            raise DistillRVCError("the content encoder produced NaN features (a damaged hubert file?)")
        feats0 = feats
        if index is not None and settings.index_rate > 0:
            feats = retrieve(feats, index.index, index.vectors, settings.index_rate)
        timings.content += time.perf_counter() - start

        t = 2 * len(feats)
        if info.f0:
            t = min(t, len(pitchf))
        t = t if last else min(t, need)
        if t < need:
            raise RuntimeError(f"chunk {j} has {t} frames, {need} needed")  # the frame arithmetic is broken
        phone = np.repeat(feats, 2, axis=0)[:t]
        if info.f0:
            pitchf = pitchf[:t]
            pitch = coarse_pitch(pitchf)[None]
            if settings.protect < 0.5 and feats0 is not feats:
                phone = protect_mix(phone, np.repeat(feats0, 2, axis=0)[:t], pitchf, settings.protect)
            pitchf = pitchf[None]
        noise = None
        if info.inter_channels:
            noise = rng.standard_normal((1, info.inter_channels, t), dtype=np.float32)
        span = (a * r_num // WINDOW, n_out if last else b * r_num // WINDOW)
        timings.passes += 1
        yield ChunkInput(phone=phone[None].astype(np.float32), pitch=pitch, pitchf=pitchf, noise=noise,
                         offset=a * r_num // WINDOW - pad_frames * info.hop, span=span)


def render(chunks: Iterable[ChunkInput], backend: Backend, sid: int = 0, fade: int = 0,
           timings: Timings | None = None) -> Iterator[np.ndarray]:
    """Run each chunk through `backend` and yield the output in order, context dropped and
    seams cross-faded over `fade` samples (raised cosine centred on the seam)."""
    half = fade // 2
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(2 * half) + 0.5) / (2 * half)) if half else np.zeros(0)
    tail: np.ndarray | None = None
    for chunk in chunks:
        start = time.perf_counter()
        audio = backend.run(chunk.phone, chunk.pitch, chunk.pitchf, sid, chunk.noise)[0]
        if timings is not None:
            timings.synth += time.perf_counter() - start
        lo, hi = chunk.span
        first = tail is None
        seg_lo = lo if first else lo - half
        # the last chunk's span ends at the output's end; inner ones carry `half` more for the next fade
        seg_hi = hi + half
        seg = audio[seg_lo - chunk.offset: seg_hi - chunk.offset]
        if len(seg) < seg_hi - seg_lo:  # only the last pass may end early, in what is dropped anyway
            seg = np.pad(seg, (0, seg_hi - seg_lo - len(seg)))
        if not first:
            seg = seg.copy()
            seg[: 2 * half] = tail * (1.0 - ramp) + seg[: 2 * half] * ramp
        tail = seg[len(seg) - 2 * half:] if half else seg[:0]
        yield seg[: len(seg) - 2 * half] if half else seg
    # the final chunk's extra `half` samples were kept as a tail beyond the output's end: emit its
    # part within the output (its first `half` samples) and drop the rest
    if tail is not None and half:
        yield tail[:half]


# ------------------------------------------------------------------------------ conversion
def check_trained_encoder(info: ModelInfo, encoder: "FeatureEncoder", option: str = "--hubert") -> None:
    """A model `teach --encoder` made hears only that encoder's features: refuse any other one.

    The encoder is known by its file's sha256 (a distilled .pt) or, for its ONNX export, by the
    sha256 of the .pt it was exported from; HuBERT itself is never the right one for such a model.
    """
    want = info.trained_encoder
    if not want:
        return
    given = getattr(encoder, "source_sha256", None) if encoder.kind == "onnx" else \
        file_sha256(encoder.path) if encoder.kind == "student" and encoder.path else None
    if given != want.get("sha256"):
        name = encoder.path.name if encoder.path else encoder.kind
        raise DistillRVCError(f"the model was trained on the content encoder {want.get('file')} (sha256 "
                              f"{str(want.get('sha256'))[:12]}), not {name}: pass that encoder as {option}")


@dataclass
class ConvertedFile:
    """One file `Converter.convert_file` wrote."""

    input: Path
    output: Path
    seconds: float  # of audio
    sample_rate: int
    chunks: int
    timings: Timings


@dataclass
class ConvertResult:
    """What a `convert` run did."""

    output: str = ""  # the destination as given: the .wav, or the folder of a folder input
    files: list[ConvertedFile] = field(default_factory=list)
    bad: Skipped = field(default_factory=list)  # (file, reason), skipped
    sizes: ChunkSizes | None = None
    backend: str = ""
    timings: Timings = field(default_factory=Timings)


class Converter:
    """A model, a content encoder and settings, ready to convert audio."""

    def __init__(self, backend: Backend, encoder: "FeatureEncoder", settings: ConvertSettings | None = None):
        self.backend, self.encoder = backend, encoder
        self.settings = settings = settings or ConvertSettings()
        settings.check()
        info = backend.info
        dim = encoder.dim(info.version)  # v1 needs final_proj: raises with the reason
        if dim != info.phone_dim:
            raise DistillRVCError(f"the model takes {info.phone_dim}-d content features ({info.version}) but the "
                                  f"content encoder gives {dim}-d: pass the hubert_base.pt the model was trained on")
        check_trained_encoder(info, encoder)
        if info.format == "torch" and settings.sid >= backend.model.config.spk_embed_dim:
            raise DistillRVCError(f"--sid {settings.sid}: the model has {backend.model.config.spk_embed_dim} "
                                  "speaker slots (0.." f"{backend.model.config.spk_embed_dim - 1})")
        self.index = RetrievalIndex(settings.index) if settings.index else None
        if self.index is not None and self.index.dim != info.phone_dim:
            raise DistillRVCError(f"{self.index.path}: the index holds {self.index.dim}-d features but the model "
                                  f"takes {info.phone_dim}-d; use the index trained with this model")
        self._sizes = settings.chunks

    @property
    def sizes(self) -> ChunkSizes:
        if self._sizes is None:
            self._sizes = chunk_sizes(self.backend, self.encoder, self.settings.memory_gb)
            log.info("chunks of %.1f s with %.1f s of context each side (budget %.1f GB)", self._sizes.center,
                     self._sizes.pad, self.settings.memory_gb)
        return self._sizes

    def cuts(self, audio_16k: np.ndarray) -> list[int]:
        """Where 16 kHz audio [N] (as loaded) is cut into chunks, in samples."""
        return cut_points(audio_16k, self.sizes, conditioner(audio_16k))

    def chunks(self, audio_16k: np.ndarray, timings: Timings | None = None) -> Iterator[ChunkInput]:
        """The synthesizer passes for 16 kHz audio [N] as loaded (RVC's conditioning is applied here)."""
        return chunk_inputs(audio_16k, self.encoder, self.backend, self.settings, self.sizes, self.index, timings)

    def blocks(self, audio_16k: np.ndarray, timings: Timings | None = None) -> Iterator[np.ndarray]:
        """Converted audio at the model's rate, block by block, for 16 kHz audio [N] as loaded."""
        fade = int(round(self.settings.fade_s * self.backend.info.sr)) // 2 * 2
        fade = min(fade, int(self.sizes.pad * self.backend.info.sr))
        if timings is not None:
            timings.audio_s += len(audio_16k) / SR_16K
        return render(self.chunks(audio_16k, timings), self.backend, self.settings.sid, fade, timings)

    def convert_audio(self, audio_16k: np.ndarray, timings: Timings | None = None) -> np.ndarray:
        """16 kHz audio [N] as loaded -> converted audio [round(N * sr / 16000)] at the model's rate."""
        return np.concatenate(list(self.blocks(audio_16k, timings)))

    def convert_file(self, src: str | Path, dst: str | Path, progress: bool = False) -> ConvertedFile:
        """Convert one audio file (any format `load_audio` reads) into a 16-bit WAV at the model's rate.

        `progress`: a progress bar (seconds of audio done, with ETA) when the input is longer
        than PROGRESS_CHUNKS chunks; it goes away when the file is done.
        """
        import soundfile as sf
        from tqdm import tqdm

        src, dst = Path(src), Path(dst)
        audio = load_audio(src, SR_16K)
        timings = Timings()
        sr = self.backend.info.sr
        seconds = len(audio) / SR_16K
        show = progress and seconds > PROGRESS_CHUNKS * self.sizes.center
        with atomic_path(dst) as tmp, tqdm(total=round(seconds, 1), desc=src.name, unit="s", leave=False,
                                           disable=not show, bar_format=BAR_FORMAT) as bar:
            with sf.SoundFile(str(tmp), "w", samplerate=sr, channels=1, subtype="PCM_16", format="WAV") as f:
                for block in self.blocks(audio, timings):
                    if not np.isfinite(block).all():
                        raise DistillRVCError(f"{src}: the model produced NaN or infinite audio")
                    f.write(np.clip(block, -1.0, 1.0 - 2.0 ** -15))
                    if show:
                        bar.update(min(len(block) / sr, bar.total - bar.n))
        return ConvertedFile(input=src, output=dst, seconds=len(audio) / SR_16K, sample_rate=sr,
                             chunks=timings.passes, timings=timings)


def limit_onednn_cache() -> None:
    """Keep torch's CPU convolutions from holding memory for every input length seen.

    oneDNN caches a primitive, buffers included, per convolution shape (up to 1024 of them), and
    every chunk of a long input, every file of a folder, has its own length: measured with the
    tiny teacher, the RSS grew by about 150 MB per new length and never came back. With the
    cache off (ONEDNN_PRIMITIVE_CACHE_CAPACITY=0) it stays flat, and chunks of new lengths
    gain nothing from it anyway. oneDNN reads the variable when it first convolves, so this
    acts only in a process that has not convolved yet (the CLI); a value the user set is kept.
    """
    import os

    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")


def convert(model: str | Path, hubert: str | Path, src: str | Path, dst: str | Path,
            settings: ConvertSettings | None = None, *, device: str = "cpu", threads: int | None = None,
            progress: bool = False) -> ConvertResult:
    """Convert a file, or every audio file under a folder (into the same tree of .wav files under `dst`)."""
    from tqdm import tqdm

    from .features.encoders import open_encoder

    limit_onednn_cache()
    threads = check_threads(threads)
    settings = settings or ConvertSettings()
    settings.check()
    result = ConvertResult(output=str(dst))
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise DistillRVCError(f"{src}: no such file or folder")
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise DistillRVCError(f"{src}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
        if dst.exists() and not dst.is_dir():
            raise DistillRVCError(f"{dst}: the input is a folder, so --output must be a folder too")
        refuse_output_inside(dst, src)
        pairs = [(f, dst / f.relative_to(src).with_suffix(".wav")) for f in files]
    else:
        if dst.is_dir():
            dst = dst / src.with_suffix(".wav").name
        elif dst.suffix.lower() != ".wav":
            raise DistillRVCError(f"{dst}: the output is written as WAV; name it .wav (or give a folder)")
        pairs = [(src, dst)]
    others = [model, hubert, settings.index, settings.rmvpe, settings.fcpe]
    for src_file, dst_file in pairs:
        refuse_overwrite(dst_file, [src_file, *others])
    if settings.f0_method == "fcpe":  # no weights: one line now, not after the model and encoder are loaded
        from .features.fcpe import find_fcpe

        find_fcpe(settings.fcpe)

    device = str(resolve_device(device))  # the content encoder runs where the model does
    backend = open_backend(model, device, threads=threads)
    converter = Converter(backend, open_encoder(hubert, device, threads=threads), settings)
    result.backend = backend.name
    with torch_threads(threads):
        for src_file, dst_file in tqdm(pairs, desc="convert", unit="file", disable=not progress or len(pairs) < 2):
            try:
                done = converter.convert_file(src_file, dst_file, progress=progress)
            except DistillRVCError as e:
                if len(pairs) == 1:
                    raise
                log.warning("skipping %s: %s", src_file.name, str(e).replace(f"{src_file}: ", ""))
                result.bad.append((str(src_file.relative_to(src)), str(e).replace(f"{src_file}: ", "")))
                continue
            result.files.append(done)
            result.timings.add(done.timings)
    if not result.files:
        raise DistillRVCError(f"none of the {len(pairs)} audio files could be converted "
                              f"(first: {result.bad[0][0]}: {result.bad[0][1]})")
    result.sizes = converter._sizes
    return result


def format_convert(result: ConvertResult) -> str:
    """What `distill-rvc convert` prints: the real-time factor by stage, where the audio went, what was skipped."""
    t = result.timings
    compute = t.f0 + t.content + t.synth
    lines = [f"converted {len(result.files)} file(s), {t.audio_s:.1f} s of audio in {compute:.1f} s "
             f"(real-time factor {compute / max(t.audio_s, 1e-9):.2f}: F0 {t.f0:.1f} s, content {t.content:.1f} s, "
             f"synthesizer {t.synth:.1f} s on {result.backend}, {t.passes} pass(es))"]
    if len(result.files) == 1:
        one = result.files[0]
        lines.append(f"  -> {one.output} ({one.sample_rate} Hz, {one.seconds:.2f} s)")
    else:
        lines.append(f"  -> {result.output}")
    return summary("\n".join(lines), result.bad, "unusable file(s)")
