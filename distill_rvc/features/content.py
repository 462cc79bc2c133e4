"""Content features from RVC's `hubert_base.pt` (ContentVec in fairseq's format), without fairseq.

`load_content_encoder(path)` reads the checkpoint through the restricted unpickler, infers
the architecture from the weights (conv-stack widths, embed and FFN dims, layer count) and
the stored config (conv strides, attention heads), maps fairseq's key names onto
`ContentEncoder` and returns it in eval mode. `extract(audio_16k, version)` gives what RVC
feeds its synthesizer (rvc-format.md §5.1 and appendix):

    v1: output of transformer layer 9, then final_proj  -> [T, 256]
    v2: output of transformer layer 12                  -> [T, 768]

with T = floor((N - 400) / 320) + 1 frames at 50 per second. A model with fewer layers
stops after its last one, as fairseq's `extract_features(output_layer=N)` does.
`ContentEncoder` is one `features.encoders.FeatureEncoder` (kind "hubert"): callers open any
encoder file with `open_encoder`, which reads a fairseq file through `content_encoder_from`.

The first conv's GroupNorm normalises each channel over the whole input, so features
depend on where the audio was cut: chunking is the caller's job, and the encoder processes
exactly what it is given. Not for: audio loading or conditioning (`audio.py`).
"""
from __future__ import annotations

import ast
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DistillRVCError
from ..safe_load import safe_torch_load, stand_in

if TYPE_CHECKING:
    from ..memory import InferenceMemory

log = logging.getLogger(__name__)

OUTPUT_LAYER = {"v1": 9, "v2": 12}  # 1-based, as fairseq's output_layer
MIN_SAMPLES = 400  # receptive field of the conv stack: one frame
# fairseq's default (HuBERT base) feature extractor, used when the checkpoint does not say.
DEFAULT_CONV_LAYERS = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"

# Globals a fairseq checkpoint pickles besides tensors; rebuilt as inert attribute bags.
FAIRSEQ_STAND_INS = (stand_in("fairseq.data.dictionary.Dictionary"), stand_in("argparse.Namespace"))


@dataclass(frozen=True)
class ContentConfig:
    """The architecture of a HuBERT-base-like encoder, as read off a checkpoint."""

    conv_layers: tuple[tuple[int, int, int], ...]  # (channels, kernel, stride) per conv
    conv_bias: bool
    embed_dim: int
    ffn_dim: int
    heads: int
    layers: int
    pos_conv_kernel: int
    pos_conv_groups: int
    final_dim: int | None  # final_proj's output width (v1), None if the file has none
    normalize: bool  # layer-normalise the waveform first (the task's `normalize`; False for ContentVec)

    def frames(self, samples: int) -> int:
        """Number of output frames for `samples` input samples (0 if too short)."""
        n = samples
        for _, kernel, stride in self.conv_layers:
            if n < kernel:
                return 0
            n = (n - kernel) // stride + 1
        return n

    @property
    def min_samples(self) -> int:
        """The shortest input that gives one frame (400 for HuBERT base)."""
        n = 1
        for _, kernel, stride in reversed(self.conv_layers):
            n = (n - 1) * stride + kernel
        return n


class EncoderLayer(nn.Module):
    """Post-norm transformer layer: x = LN(x + MHA(x)); x = LN(x + fc2(GELU(fc1(x))))."""

    def __init__(self, dim: int, ffn_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.attn_norm = nn.LayerNorm(dim, eps=1e-5)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.ffn_norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, C] -> [B, T, C]"""
        b, t, c = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, H, T, C/H]
            return y.view(b, t, self.heads, c // self.heads).transpose(1, 2)

        # SDPA's default scale is head_dim^-0.5, fairseq's `scaling`; its memory-efficient
        # kernels keep a minute of audio (3000 frames) affordable on CPU.
        attn = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        x = self.attn_norm(x + self.out(attn.transpose(1, 2).reshape(b, t, c)))
        return self.ffn_norm(x + self.fc2(F.gelu(self.fc1(x))))


class ContentEncoder(nn.Module):
    """HuBERT-base / ContentVec: conv feature extractor, positional conv, post-norm layers.

    Module names are ours; `fairseq_to_module` maps fairseq's key names onto them.
    """

    def __init__(self, config: ContentConfig):
        super().__init__()
        self.config = config
        c_in = 1
        convs = []
        for c_out, kernel, stride in config.conv_layers:
            convs.append(nn.Conv1d(c_in, c_out, kernel, stride, bias=config.conv_bias))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        # fairseq's "default" extractor mode: GroupNorm with one group per channel on conv 0 only.
        self.conv_norm = nn.GroupNorm(config.conv_layers[0][0], config.conv_layers[0][0], eps=1e-5)
        self.feature_norm = nn.LayerNorm(c_in, eps=1e-5)
        self.feature_proj = nn.Linear(c_in, config.embed_dim)
        self.pos_conv = nn.Conv1d(config.embed_dim, config.embed_dim, config.pos_conv_kernel,
                                  padding=config.pos_conv_kernel // 2, groups=config.pos_conv_groups)
        self.encoder_norm = nn.LayerNorm(config.embed_dim, eps=1e-5)
        self.layers = nn.ModuleList(EncoderLayer(config.embed_dim, config.ffn_dim, config.heads)
                                    for _ in range(config.layers))
        self.final_proj = nn.Linear(config.embed_dim, config.final_dim) if config.final_dim else None

    # the `FeatureEncoder` protocol (features/encoders.py); `path` is set by the loader
    kind, path = "hubert", None
    device = property(lambda self: str(self.feature_proj.weight.device))
    min_samples = property(lambda self: self.config.min_samples)
    params = property(lambda self: sum(p.numel() for p in self.parameters()))
    file_bytes = property(lambda self: self.path.stat().st_size if self.path and self.path.exists() else 0)

    def frames(self, samples: int) -> int:
        return self.config.frames(samples)

    def memory(self, version: str, ladder_s: tuple[float, ...] = (10, 30, 60, 120)) -> "InferenceMemory":
        """Peak bytes of one pass by input length, traced on fake tensors (`memory.fake_peaks`)."""
        from ..memory import InferenceMemory, fake_peaks

        def pass_of(seconds: float):
            return lambda model: model(torch.zeros(1, int(seconds * 16000)), version)

        config = self.config
        with torch.no_grad():
            peaks = fake_peaks(lambda: ContentEncoder(config).eval(), [pass_of(s) for s in ladder_s])
        weights = peaks[0].get("param", 0) + peaks[0].get("buffer", 0)
        return InferenceMemory(seconds=tuple(ladder_s), peaks=tuple(p["total"] for p in peaks), weights=weights,
                               dtype="float32")

    def dim(self, version: str) -> int:
        """Feature width for `version`: final_proj's width for v1, the embed dim for v2."""
        _check_version(version)
        if version == "v1":
            if self.final_proj is None:
                raise DistillRVCError("this content encoder has no final_proj, so it cannot give v1 (256-d) "
                                      "features; use --version v2")
            return self.final_proj.out_features
        return self.config.embed_dim

    def output_layer(self, version: str) -> int:
        """How many transformer layers run for `version` (fairseq stops after the last one)."""
        _check_version(version)
        return min(OUTPUT_LAYER[version], self.config.layers)

    def forward(self, audio: torch.Tensor, version: str = "v2") -> torch.Tensor:
        """16 kHz audio [B, N] -> features [B, T, C] (C = `dim(version)`, T = frames(N))."""
        self.dim(version)  # validates version and final_proj before any work
        if audio.shape[-1] < self.config.min_samples:
            raise DistillRVCError(f"audio of {audio.shape[-1]} samples is shorter than one content frame "
                                  f"({self.config.min_samples} samples = {self.config.min_samples / 16:g} ms "
                                  "at 16 kHz)")
        x = audio.to(self.feature_proj.weight.dtype)
        if self.config.normalize:
            x = F.layer_norm(x, x.shape[-1:])
        x = x.unsqueeze(1)  # [B, 1, N]
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i == 0:  # in float32 whatever the weights (fairseq's Fp32GroupNorm): statistics over the whole input
                norm = self.conv_norm
                x = F.group_norm(x.float(), norm.num_groups, norm.weight.float(), norm.bias.float(),
                                 norm.eps).to(x.dtype)
            x = F.gelu(x)
        x = self.feature_proj(self.feature_norm(x.transpose(1, 2)))  # [B, T, E]
        t = x.shape[1]
        x = x + F.gelu(self.pos_conv(x.transpose(1, 2))[..., :t]).transpose(1, 2)  # even kernel: drop the extra frame
        x = self.encoder_norm(x)  # post-norm model: the encoder's LayerNorm comes before layer 1
        for layer in self.layers[: self.output_layer(version)]:
            x = layer(x)
        return self.final_proj(x) if version == "v1" else x

    @torch.no_grad()
    def extract(self, audio_16k: np.ndarray, version: str) -> np.ndarray:
        """Mono 16 kHz float audio [N] -> float32 features [T, C] at 50 frames/s.

        The whole array is one input (see the module docstring on chunking). Apply RVC's
        input conditioning (`condition_audio`) first when converting; `prepare` feeds its
        already filtered, level-normalised training segments as they are.
        """
        _check_version(version)
        audio = np.asarray(audio_16k)
        if audio.ndim != 1:
            raise DistillRVCError(f"expected mono audio [N], got an array of shape {list(audio.shape)}")
        if not np.isfinite(audio).all():
            raise DistillRVCError("the audio contains NaN or infinite samples")
        device = self.feature_proj.weight.device
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(device).unsqueeze(0)
        return self(x, version)[0].float().cpu().numpy()


def _check_version(version: str) -> None:
    if version not in OUTPUT_LAYER:
        raise DistillRVCError(f"unknown RVC version {version!r}; use v1 (256-d features) or v2 (768-d)")


# --------------------------------------------------------------------------- fairseq checkpoint boundary

_PARAM = r"\.(weight|bias)"  # every mapped name ends in .weight or .bias, kept as it is
_LAYER_MAP = {  # inside encoder.layers.N (fairseq) / layers.N (ours)
    r"self_attn\.([qkv])_proj": r"\2", r"self_attn\.out_proj": "out", r"self_attn_layer_norm": "attn_norm",
    r"(fc1|fc2)": r"\2", r"final_layer_norm": "ffn_norm",
}
_KEY_MAP = [  # fairseq name -> ours; weight-normed pos_conv is folded separately
    (r"feature_extractor\.conv_layers\.(\d+)\.0" + _PARAM, r"convs.\1.\2"),
    (r"feature_extractor\.conv_layers\.0\.2" + _PARAM, r"conv_norm.\1"),
    (r"layer_norm" + _PARAM, r"feature_norm.\1"),
    (r"post_extract_proj" + _PARAM, r"feature_proj.\1"),
    (r"encoder\.pos_conv\.0" + _PARAM, r"pos_conv.\1"),
    (r"encoder\.layer_norm" + _PARAM, r"encoder_norm.\1"),
    (r"final_proj" + _PARAM, r"final_proj.\1"),
] + [(r"encoder\.layers\.(\d+)\." + theirs + _PARAM, r"layers.\1." + ours + "." + rf"\{2 + theirs.count('(')}")
     for theirs, ours in _LAYER_MAP.items()]
_UNUSED = {"mask_emb", "label_embs_concat"}  # pre-training only
_POS_WN = {  # the two names of pos_conv's weight-norm pair: (magnitude g, direction v)
    "legacy": ("encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v"),
    "parametrizations": ("encoder.pos_conv.0.parametrizations.weight.original0",
                         "encoder.pos_conv.0.parametrizations.weight.original1"),
}


def fairseq_to_module(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fairseq HuBERT `model` tensors -> `ContentEncoder` state dict (float32).

    pos_conv's weight norm (dim=2: one magnitude per kernel tap, norm over dims 0 and 1)
    is folded into a plain weight. Unknown keys raise `DistillRVCError`.
    """
    weights = dict(weights)
    out: dict[str, torch.Tensor] = {}
    for g_key, v_key in _POS_WN.values():
        if g_key in weights and v_key in weights:
            g, v = weights.pop(g_key).float(), weights.pop(v_key).float()
            out["pos_conv.weight"] = v * (g / v.norm(dim=(0, 1), keepdim=True))
    for key, value in weights.items():
        if key in _UNUSED:
            continue
        for pattern, repl in _KEY_MAP:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value.float()
                break
        else:
            raise DistillRVCError(f"unexpected weight {key} {list(value.shape)}: not a HuBERT-base/ContentVec "
                                  "(legacy) checkpoint; speaker-conditioned ContentVec and other layouts are "
                                  "not supported")
    return out


def _setting(stored: dict[str, Any], name: str, default: Any) -> Any:
    """A model or task setting from `cfg` (plain dicts since 2021) or an old `args` Namespace."""
    cfg = stored.get("cfg")
    if isinstance(cfg, dict):
        for section in ("model", "task"):
            part = cfg.get(section)
            if isinstance(part, dict) and name in part:
                return part[name]
    args = stored.get("args")
    if args is not None and name in getattr(args, "__dict__", {}):
        return args.__dict__[name]
    return default


def _parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """fairseq's conv_feature_layers string, e.g. "[(512,10,5)] + [(512,3,2)] * 4", without eval."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = ev(node.left), ev(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(ast.dump(node))

    try:
        layers = ev(ast.parse(spec, mode="eval"))
        return [(int(c), int(k), int(s)) for c, k, s in layers]
    except (SyntaxError, ValueError, TypeError) as e:
        raise DistillRVCError(f"cannot read the checkpoint's conv_feature_layers {spec!r} ({e})") from None


def infer_config(weights: dict[str, torch.Tensor], stored: dict[str, Any] | None = None) -> ContentConfig:
    """The architecture of a fairseq HuBERT from its `model` tensors (and `cfg`/`args` for
    what weights cannot tell: conv strides, attention heads, waveform normalisation)."""
    stored = stored or {}

    def need(key: str) -> torch.Tensor:
        if key not in weights:
            raise DistillRVCError(f"missing weight {key}: not a complete HuBERT/ContentVec checkpoint")
        return weights[key]

    conv_ids = sorted(int(m.group(1)) for k in weights
                      if (m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", k)))
    if not conv_ids or conv_ids != list(range(len(conv_ids))):
        raise DistillRVCError("no conv feature extractor (feature_extractor.conv_layers.*) in the checkpoint")
    if any(re.fullmatch(r"feature_extractor\.conv_layers\.\d+\.2\.1\.weight", k) for k in weights):
        raise DistillRVCError("this HuBERT uses the layer-norm feature extractor (a large model); RVC uses "
                              "hubert_base.pt, whose first conv has a GroupNorm")
    if _setting(stored, "layer_norm_first", False):
        raise DistillRVCError("this HuBERT is pre-norm (layer_norm_first, a large model); RVC uses hubert_base.pt")
    need("feature_extractor.conv_layers.0.2.weight")
    spec = _setting(stored, "conv_feature_layers", None) or DEFAULT_CONV_LAYERS
    declared = _parse_conv_layers(spec) if isinstance(spec, str) else [tuple(x) for x in spec]
    conv_layers = []
    for i in conv_ids:
        c_out, _, kernel = need(f"feature_extractor.conv_layers.{i}.0.weight").shape
        if i >= len(declared) or declared[i][1] != kernel:
            raise DistillRVCError(f"conv layer {i} has kernel {kernel}, but the checkpoint's config declares "
                                  f"{declared[i] if i < len(declared) else 'no such layer'}")
        conv_layers.append((int(c_out), int(kernel), int(declared[i][2])))

    embed_dim = need("post_extract_proj.weight").shape[0]
    layer_ids = {int(m.group(1)) for k in weights if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    if not layer_ids or layer_ids != set(range(len(layer_ids))):
        raise DistillRVCError("the checkpoint's transformer layers (encoder.layers.N) are missing or not numbered 0..N-1")
    heads = int(_setting(stored, "encoder_attention_heads", max(1, embed_dim // 64)))
    if embed_dim % heads:
        raise DistillRVCError(f"embed dim {embed_dim} is not divisible by {heads} attention heads")
    pos_v = weights.get(_POS_WN["legacy"][1], weights.get(_POS_WN["parametrizations"][1],
                                                          weights.get("encoder.pos_conv.0.weight")))
    if pos_v is None:
        raise DistillRVCError("missing weight encoder.pos_conv.0.weight_v: not a complete HuBERT checkpoint")
    final = weights.get("final_proj.weight")
    return ContentConfig(
        conv_layers=tuple(conv_layers),
        conv_bias="feature_extractor.conv_layers.0.0.bias" in weights,
        embed_dim=int(embed_dim),
        ffn_dim=int(need("encoder.layers.0.fc1.weight").shape[0]),
        heads=heads,
        layers=len(layer_ids),
        pos_conv_kernel=int(pos_v.shape[2]),
        pos_conv_groups=int(embed_dim // pos_v.shape[1]),
        final_dim=int(final.shape[0]) if final is not None else None,
        normalize=bool(_setting(stored, "normalize", False)),
    )


def read_fairseq_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(model tensors, the whole stored dict) of a fairseq checkpoint, loaded with weights_only=True."""
    return fairseq_weights(load_encoder_file(path), path)


def load_encoder_file(path: str | Path) -> Any:
    """What a torch content-encoder file holds, loaded with weights_only=True.

    fairseq's Dictionary (in task_state) and argparse.Namespace (in old `args`) are rebuilt as
    inert stand-ins; any other non-tensor global is refused without running it.
    """
    try:
        return safe_torch_load(path, what="content encoder (hubert_base.pt)", stand_ins=FAIRSEQ_STAND_INS)
    except DistillRVCError as e:
        found = re.search(r"it needs (fairseq\.[\w.]+)", str(e))
        if found:  # a fairseq file pickling more than RVC's hubert_base.pt does
            raise DistillRVCError(f"{path}: this fairseq checkpoint pickles {found.group(1)}, which is not rebuilt "
                                  "safely; RVC's hubert_base.pt layout is supported") from None
        raise


def fairseq_weights(stored: Any, path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(model tensors, the stored dict) of a loaded fairseq checkpoint; anything else is refused
    with what it looks like."""
    if not isinstance(stored, dict) or not isinstance(stored.get("model"), dict):
        if isinstance(stored, dict) and ("weight" in stored and "config" in stored):
            raise DistillRVCError(f"{path}: an RVC voice model, not a content encoder; pass hubert_base.pt")
        if isinstance(stored, dict) and any(str(k).startswith("feature_extractor.conv_layers.0.conv") for k in stored):
            raise DistillRVCError(f"{path}: a transformers-format HuBERT; pass RVC's fairseq hubert_base.pt")
        raise DistillRVCError(f"{path}: not a fairseq HuBERT/ContentVec checkpoint (no 'model' weights); "
                              "pass RVC's hubert_base.pt")
    weights = {k: v for k, v in stored["model"].items() if isinstance(v, torch.Tensor)}
    if not any(k.startswith("feature_extractor.") for k in weights):
        if any(k.startswith(("enc_p.", "dec.", "flow.")) for k in weights):
            raise DistillRVCError(f"{path}: an RVC synthesizer checkpoint, not a content encoder; pass hubert_base.pt")
        raise DistillRVCError(f"{path}: not a HuBERT/ContentVec checkpoint (no feature_extractor weights)")
    return weights, stored


def load_content_encoder(path: str | Path, device: str | torch.device = "cpu",
                         dtype: torch.dtype = torch.float32) -> ContentEncoder:
    """Read RVC's `hubert_base.pt` (or any fairseq HuBERT-base-layout file) -> `ContentEncoder`
    in eval mode on `device`. Bad or foreign files raise `DistillRVCError`."""
    return content_encoder_from(load_encoder_file(path), path, device, dtype)


def content_encoder_from(loaded: Any, path: str | Path, device: str | torch.device = "cpu",
                         dtype: torch.dtype = torch.float32) -> ContentEncoder:
    """`load_content_encoder` of a file already loaded (`load_encoder_file`)."""
    weights, stored = fairseq_weights(loaded, path)
    try:
        config = infer_config(weights, stored)
        state = fairseq_to_module(weights)
    except DistillRVCError as e:
        raise DistillRVCError(f"{path}: {e}") from None
    model = ContentEncoder(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise DistillRVCError(f"{path}: missing weights for {', '.join(missing[:3])}"
                              f"{' and more' if len(missing) > 3 else ''}: not a complete HuBERT checkpoint")
    for key, value in state.items():
        if key not in expected or value.shape != expected[key].shape:
            raise DistillRVCError(f"{path}: weight {key} has shape {list(value.shape)}, inconsistent with the "
                                  "rest of the checkpoint (damaged file?)")
    model.load_state_dict(state)
    log.debug("content encoder %s: %s", path, config)
    model.path = Path(path)
    return model.to(device=device, dtype=dtype).eval()

