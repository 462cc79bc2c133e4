"""One way to run any of our synthesizers: torch on CPU/CUDA, onnxruntime on CPU/CUDA.

    backend = open_backend("student.onnx", device="cpu", threads=2)
    audio = backend.run(phone, pitch, pitchf, sid=0, noise=noise)   # [B, T * hop] float32

`run` takes what RVC's synthesizer takes, as numpy arrays: phone [B, T, C] float32 (content
features at 100 frames/s), pitch [B, T] int64 coarse bins and pitchf [B, T] float32 Hz (None
for no-f0 models), a speaker id, and noise [B, inter, T], the standard-normal prior noise
(drawn when None). `convert`, `compare` and `bench` all go through it, so a .pth and an .onnx
model are converted, timed and compared the same way.

ONNX files come in two interfaces (deploy-targets.md §1): the w-okada one draws its prior
noise inside the graph (`accepts_noise` is False: a given `noise` is ignored), the RVC one
takes it as `rnd`. Files without our metadata (RVC's own exporter) are read off their input
shapes and one probe run. With `deterministic=True` the NSF source noise is off (torch's
`source_noise=False`, or the RVC graph with its random nodes made zeros), so two models fed
the same `noise` can be compared sample by sample.

Not for: feature extraction (`features`), chunking (`convert`) or exporting (`onnx_export`).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .errors import DistillRVCError
from .models.synthesizer import NOISE_SCALE

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pth", ".pt", ".onnx")


@dataclass
class ModelInfo:
    """What a caller must know to feed a model and read its output."""

    path: Path | None
    format: str  # "torch", "onnx-wokada" or "onnx-rvc"
    sr: int
    hop: int  # output samples per frame
    f0: bool
    phone_dim: int  # 256 (v1) or 768 (v2)
    inter_channels: int | None  # width of the prior noise; None when the graph draws it itself
    params: int  # torch: parameters, weight norm folded; ONNX: values in the graph's initializers
    file_bytes: int | None

    @property
    def version(self) -> str:
        return "v1" if self.phone_dim == 256 else "v2"

    @property
    def widths(self) -> tuple[int, bool, int | None]:
        """phone_dim, f0, inter_channels: what `timing.synthetic_inputs` needs to feed this model."""
        return self.phone_dim, self.f0, self.inter_channels


class Backend(Protocol):
    info: ModelInfo
    name: str  # e.g. "torch-cpu", "ort-cuda"
    accepts_noise: bool
    deterministic: bool

    def run(self, phone: np.ndarray, pitch: np.ndarray | None, pitchf: np.ndarray | None, sid: int = 0,
            noise: np.ndarray | None = None) -> np.ndarray:
        """phone [B, T, C], pitch/pitchf [B, T] or None, noise [B, inter, T] or None -> audio [B, T * hop]."""
        ...


# --------------------------------------------------------------------------------- torch
class TorchBackend:
    """A `Synthesizer` on a torch device (fp32)."""

    accepts_noise = True

    def __init__(self, model, device: str = "cpu", *, deterministic: bool = False, path: Path | None = None):
        self.device = torch.device(device)
        self.model = model.to(self.device).float().eval()
        self.deterministic = deterministic
        self.name = f"torch-{self.device.type}"
        cfg = model.config
        ckpt = model.checkpoint
        self.info = ModelInfo(path=path, format="torch", sr=cfg.sr, hop=cfg.hop_length, f0=cfg.f0,
                              phone_dim=cfg.phone_dim, inter_channels=cfg.inter_channels,
                              params=sum(p.numel() for p in model.parameters()),
                              file_bytes=ckpt.file_bytes if ckpt is not None else None)

    def run(self, phone: np.ndarray, pitch: np.ndarray | None, pitchf: np.ndarray | None, sid: int = 0,
            noise: np.ndarray | None = None) -> np.ndarray:
        b, t = phone.shape[:2]
        dev = self.device

        def tensor(x: np.ndarray | None) -> torch.Tensor | None:
            return None if x is None else torch.from_numpy(np.ascontiguousarray(x)).to(dev)

        with torch.no_grad():
            audio = self.model.infer(tensor(phone.astype(np.float32, copy=False)),
                                     torch.full((b,), t, dtype=torch.long, device=dev),
                                     tensor(pitch) if self.info.f0 else None,
                                     tensor(pitchf.astype(np.float32, copy=False)) if self.info.f0 else None,
                                     torch.full((b,), int(sid), dtype=torch.long, device=dev),
                                     noise=tensor(None if noise is None else noise.astype(np.float32, copy=False)),
                                     source_noise=not self.deterministic)
        return audio[:, 0].float().cpu().numpy()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


# ---------------------------------------------------------------------------------- onnx
_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


class OrtBackend:
    """An ONNX synthesizer (w-okada or RVC interface) on onnxruntime's CPU or CUDA provider."""

    def __init__(self, path: str | Path, device: str = "cpu", *, threads: int | None = None,
                 deterministic: bool = False):
        import onnx

        from .onnx.parity import CPU, CUDA, deterministic_variant, session

        self.path = Path(path)
        try:
            graph = onnx.load(str(self.path))
        except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file
            raise DistillRVCError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
        names = [i.name for i in graph.graph.input]
        if "feats" in names:
            interface = "wokada"
        elif "phone" in names and "rnd" in names:
            interface = "rvc"
        else:
            raise DistillRVCError(f"{path}: inputs {names} are neither the w-okada (feats, p_len, pitch, pitchf, "
                                  "sid) nor the RVC (phone, phone_lengths, pitch, pitchf, ds, rnd) interface")
        self.interface = interface
        meta = {p.key: p.value for p in graph.metadata_props}
        dims = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in graph.graph.input}
        phone_dim = int(dims["feats" if interface == "wokada" else "phone"][2])
        f0 = "pitchf" in names
        inter = int(dims["rnd"][1]) if interface == "rvc" else None
        params = sum(int(np.prod(t.dims)) for t in graph.graph.initializer)
        if deterministic:
            if interface == "wokada":
                raise DistillRVCError(f"{path}: a w-okada-interface graph draws its noise inside, so its output "
                                      "cannot be made repeatable; export with --interface rvc to compare fidelity")
            graph = deterministic_variant(graph, inter)
        self.deterministic = deterministic
        self.accepts_noise = interface == "rvc"

        provider = CUDA if torch.device(device).type == "cuda" else CPU
        if provider == CUDA:
            import onnxruntime as ort

            if CUDA not in ort.get_available_providers():
                raise DistillRVCError("onnxruntime has no CUDA provider here: install onnxruntime-gpu "
                                      "(pip install 'distill-rvc[gpu]') or use --device cpu")
        self.session = session(graph.SerializeToString(), provider, threads)
        del graph
        self.name = f"ort-{'cuda' if provider == CUDA else 'cpu'}"
        self._inputs = {i.name: _NP[i.type] for i in self.session.get_inputs()}

        sr, hop = _rate_from_metadata(meta)
        info = ModelInfo(path=self.path, format=f"onnx-{interface}", sr=sr or 0, hop=hop or 0, f0=f0,
                         phone_dim=phone_dim, inter_channels=inter, params=params,
                         file_bytes=self.path.stat().st_size)
        self.info = info
        if not hop:  # RVC's exporter writes no metadata: every RVC hop is 10 ms, so one run tells the rate
            t = 8
            out = self._run_one(np.zeros((1, t, phone_dim), np.float32), np.ones((1, t), np.int64),
                                np.full((1, t), 200.0, np.float32), 0,
                                np.zeros((1, inter or 1, t), np.float32))
            info.hop = out.shape[-1] // t
            info.sr = info.hop * 100
            log.info("%s has no metadata: %d Hz read off its output length", path, info.sr)

    def run(self, phone: np.ndarray, pitch: np.ndarray | None, pitchf: np.ndarray | None, sid: int = 0,
            noise: np.ndarray | None = None) -> np.ndarray:
        outs = []
        for i in range(phone.shape[0]):  # the exported graphs have batch 1
            n = None
            if self.accepts_noise:
                n = noise[i: i + 1] if noise is not None else \
                    np.random.default_rng().standard_normal((1, self.info.inter_channels, phone.shape[1]))
            outs.append(self._run_one(phone[i: i + 1], None if pitch is None else pitch[i: i + 1],
                                      None if pitchf is None else pitchf[i: i + 1], sid, n))
        return np.concatenate(outs, axis=0)

    def _run_one(self, phone, pitch, pitchf, sid, noise) -> np.ndarray:
        t = phone.shape[1]
        values = {"feats": phone, "phone": phone, "p_len": np.array([t]), "phone_lengths": np.array([t]),
                  "pitch": pitch, "pitchf": pitchf, "sid": np.array([sid]), "ds": np.array([sid]),
                  "rnd": None if noise is None else noise * np.float32(NOISE_SCALE)}
        fed = {name: np.ascontiguousarray(values[name]).astype(dtype, copy=False)
               for name, dtype in self._inputs.items()}
        audio = self.session.run(None, fed)[0]
        return audio.reshape(1, -1).astype(np.float32, copy=False)

    def synchronize(self) -> None:
        pass


def _rate_from_metadata(meta: dict[str, str]) -> tuple[int | None, int | None]:
    """(sample rate, hop) from our `distill_rvc` entry (every file we write; the only one in
    rvc-interface files) or else the w-okada `metadata` entry (w-okada's own exports)."""
    from .onnx.export import OUR_METADATA_KEY, WOKADA_METADATA_KEY

    try:
        ours = json.loads(meta.get(OUR_METADATA_KEY, "{}"))
        if ours.get("sample_rate") and ours.get("hop_length"):
            return int(ours["sample_rate"]), int(ours["hop_length"])
        sr = json.loads(meta.get(WOKADA_METADATA_KEY, "{}")).get("samplingRate")
        return (int(sr), int(sr) // 100) if sr else (None, None)
    except (ValueError, TypeError, AttributeError):
        return None, None


# ------------------------------------------------------------------------------- opening
def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; the one check of options.py, as text."""
    from .options import resolve_device as check_device

    return str(check_device(device))


def open_backend(path: str | Path, device: str = "cpu", *, threads: int | None = None,
                 deterministic: bool = False) -> Backend:
    """A .pth (any format `load_model` reads) or .onnx model file, ready to `run` on `device`."""
    path = Path(path)
    if not path.is_file():
        raise DistillRVCError(f"{path}: no such model file")
    device = resolve_device(device)
    if path.suffix.lower() == ".onnx":
        return OrtBackend(path, device, threads=threads, deterministic=deterministic)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise DistillRVCError(f"{path}: expected a .pth or .onnx voice model")
    from .checkpoint import load_model

    return TorchBackend(load_model(path), device, deterministic=deterministic, path=path)
