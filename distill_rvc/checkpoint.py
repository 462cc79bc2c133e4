"""The model-file boundary: every synthesizer file distill-rvc reads or writes passes here.

Reads (rvc-format.md §3, deploy-targets.md §3):
- RVC inference models (`weight` fp16 without enc_q, 18-item `config`, `sr`, `f0`, `version`;
  no `version` means v1), including Applio's files with their extra keys;
- RVC training checkpoints `G_*.pth` and pretrained bases (`model`, with enc_q, no config:
  the architecture is read off the tensor shapes);
- distill-rvc's own files (students, pruned models);
- weight norm as `weight_g`/`weight_v` or `parametrizations.weight.original0/1`.
Refuses, with the reason: other families (ddPn08 rvc-webui, VoRAS, Applio's non-HiFi-GAN
vocoders), discriminators, content encoders, truncated or foreign files, unknown versions,
and anything whose tensors don't fit the architecture it declares.

Writes RVC's inference format whenever RVC can build the architecture, so a student loads in
RVC itself; otherwise the project format (a state dict plus an explicit config under the key
`distill_rvc`, with no `config` key, so RVC refuses it loudly instead of half-loading it),
under the suffix `.drvc.pt` rather than `.pth` so the runtimes don't list it as a voice.

Two things make every RVC-format file either load right or fail loudly (consumers.md):
- a ResBlock2 decoder's `weight` carries the Applio guard (`APPLIO_GUARD_KEYS`): tensors under
  ResBlock1 names with a shape no ResBlock1 has. Applio always builds ResBlock1, and
  `load_state_dict(strict=False)` still raises on a shape mismatch, so Applio refuses the file;
  RVC and w-okada build ResBlock2 from `config[9]` and skip the keys as unexpected. The reader drops them.
- what the voice needs besides the weights (`TRAVEL_KEYS`: the content encoder
  `embedder_model`, `vocoder`, `speakers_id`) is written at the top level, where Applio reads
  it, and read back into `Checkpoint.metadata`, so it travels teacher -> student -> pruned model.
"""
from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write
from .config import PHONE_DIMS, SynthConfig, _RVC_DECODERS, parse_sample_rate
from .errors import DistillRVCError
from .models import Synthesizer
from .models.arch import apply_arch, validate_arch
from .models.weight_norm import fold_state_dict, to_rvc_keys
from .safe_load import safe_torch_load

log = logging.getLogger(__name__)

PROJECT_KEY = "distill_rvc"
PROJECT_FORMAT_VERSION = 1

FORMAT_RVC = "RVC inference model"
FORMAT_APPLIO = "Applio inference model"
FORMAT_TRAINING = "RVC training checkpoint (G_*.pth)"
FORMAT_PRETRAINED = "RVC pretrained base (G)"
FORMAT_STATE_DICT = "bare synthesizer state dict"
FORMAT_STUDENT_RVC = "distill-rvc model in RVC format"
FORMAT_PROJECT = "distill-rvc model (project format, not loadable by RVC)"

# Keys Applio adds to RVC's inference format (deploy-targets.md §3).
_APPLIO_KEYS = {"vocoder", "model_hash", "creation_date", "author", "embedder_model", "speakers_id",
                "dataset_length", "model_name"}
# What the voice needs besides its weights: travels teacher -> student -> pruned model, at the
# top level of every file we write (where Applio reads it).
TRAVEL_KEYS = ("embedder_model", "vocoder", "speakers_id")
# The distilled content encoder a student was taught on (`teach --encoder`: file, sha256, kind,
# version, dim), under our metadata: such a model hears only that encoder's features.
STUDENT_ENCODER_KEY = "student_encoder"
# The Applio guard of ResBlock2 files (see the module docstring): ResBlock1-only names, shape [1].
APPLIO_GUARD_KEYS = ("dec.resblocks.0.convs1.0.weight_g", "dec.resblocks.0.convs1.0.weight_v")
PROJECT_SUFFIX = ".drvc.pt"  # project-format files: not `.pth`, which the runtimes list as voices
_METADATA_KEYS = ("info", "epoch", "step", "iteration", "learning_rate", "creation_date", "model_hash",
                  "dataset_length", "model_name", "author", "embedder_model", "speakers_id", "vocoder")


@dataclass
class Checkpoint:
    """A model file, parsed and checked, before any module is built."""

    path: Path
    format: str
    config: SynthConfig
    weights: dict[str, torch.Tensor]  # weight norm folded in fp32 (as RVC folds), the rest in the
    # stored dtype, enc_q kept if present
    stored_dtype: torch.dtype  # the file's dtype (before folding)
    stored_counts: dict[str, int]  # values per top-level part as stored (weight-norm g and v
    # counted, like RVC's own counts): {"enc_p": ..., "flow": ..., "dec": ..., "emb_g": ...}
    file_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)
    arch: dict[str, Any] | None = None  # per-layer widths of pruned models (project format)
    applio_guard: bool = False  # the file carries the Applio guard (ResBlock2 decoders)

    @property
    def stored_params(self) -> int:
        return sum(self.stored_counts.values())

    @property
    def has_posterior(self) -> bool:
        return any(k.startswith("enc_q.") for k in self.weights)


# --------------------------------------------------------------------------- reading
def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load and recognise a model file; raises DistillRVCError naming the problem."""
    path = Path(path)
    raw = safe_torch_load(path, what="voice model (.pth)")
    fmt, config, weights, metadata, arch = _parse(raw, path)
    guard = config.resblock == "2" and all(k in weights and weights[k].shape == (1,) for k in APPLIO_GUARD_KEYS)
    stored = {k: v for k, v in weights.items() if not (guard and k in APPLIO_GUARD_KEYS)}
    counts: Counter[str] = Counter()
    for key, value in stored.items():
        counts[key.split(".")[0]] += value.numel()
    dtypes = Counter(v.dtype for v in stored.values() if v.is_floating_point())
    stored_dtype = dtypes.most_common(1)[0][0] if dtypes else torch.float32
    try:
        folded = fold_state_dict(stored)
    except KeyError as e:
        raise DistillRVCError(f"{path}: damaged weight norm: {e.args[0]}") from None
    _check_shapes(path, config, folded, arch)
    return Checkpoint(path=path, format=fmt, config=config, weights=folded, stored_dtype=stored_dtype,
                      stored_counts=dict(counts), file_bytes=path.stat().st_size,
                      metadata=metadata, arch=arch, applio_guard=guard)


def _tensor_dict(obj: Any, path: Path, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not obj:
        raise DistillRVCError(f"{path}: `{what}` is not a dict of tensors")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise DistillRVCError(f"{path}: `{what}` holds a non-tensor entry {bad[0]!r}")
    return obj


def _parse(raw: Any, path: Path):
    if not isinstance(raw, dict):
        raise DistillRVCError(f"{path}: not an RVC voice model (the file holds a {type(raw).__name__}, not a dict)")
    keys = set(raw)

    if PROJECT_KEY in raw:
        return _parse_project(raw, path)
    if "params" in keys and "config" not in keys:
        raise DistillRVCError(
            f"{path}: a ddPn08 rvc-webui model (`params` instead of `config`); this family is not "
            "supported: convert it to an RVC model first")
    if raw.get("version") == "voras_beta":
        raise DistillRVCError(f"{path}: a VoRAS (beta) model; VoRAS is a different network and is not supported")

    if "weight" in keys and "config" in keys:
        version = raw.get("version", "v1")  # files from before v2 (April 2023) have no version
        if version not in PHONE_DIMS:
            raise DistillRVCError(f"{path}: unknown RVC model version {version!r} (distill-rvc reads v1 and v2)")
        applio = bool(keys & _APPLIO_KEYS)
        vocoder = raw.get("vocoder", "HiFi-GAN")
        if vocoder != "HiFi-GAN":
            raise DistillRVCError(
                f"{path}: an Applio model with the {vocoder} vocoder; only HiFi-GAN (RVC's NSF decoder) models "
                "are supported")
        weights = _tensor_dict(raw["weight"], path, "weight")
        if "emb_g.weight" not in weights:
            raise DistillRVCError(f"{path}: damaged RVC model: `weight` has no emb_g.weight")
        f0 = bool(int(raw.get("f0", 1)))
        items = list(raw["config"]) if isinstance(raw["config"], (list, tuple)) else raw["config"]
        if isinstance(items, list) and len(items) == 18:
            items[15] = int(weights["emb_g.weight"].shape[0])  # RVC's loader does the same
        config = SynthConfig.from_rvc_list(items, version=version, f0=f0)
        meta = {k: raw[k] for k in _METADATA_KEYS if k in raw}
        return (FORMAT_APPLIO if applio else FORMAT_RVC), config, weights, meta, None

    if "model" in keys and isinstance(raw["model"], dict):
        weights = raw["model"]
        if any(isinstance(k, str) and k.startswith("discriminators.") for k in weights):
            raise DistillRVCError(
                f"{path}: a discriminator checkpoint (D_*.pth); pass the generator (G_*.pth) or the small model")
        if any(isinstance(k, str) and k.startswith("feature_extractor.") for k in weights):
            raise DistillRVCError(f"{path}: a content encoder (HuBERT/ContentVec) checkpoint, not a voice model")
        weights = _tensor_dict(weights, path, "model")
        if "enc_p.emb_phone.weight" not in weights:
            raise DistillRVCError(f"{path}: not an RVC voice model: `model` has no synthesizer weights")
        fmt = FORMAT_TRAINING if ("optimizer" in keys or "iteration" in keys) else FORMAT_PRETRAINED
        config = config_from_weights(weights, path)
        meta = {k: raw[k] for k in ("iteration", "learning_rate") if isinstance(raw.get(k), (int, float))}
        return fmt, config, weights, meta, None

    if "enc_p.emb_phone.weight" in keys:
        weights = _tensor_dict(raw, path, "state dict")
        return FORMAT_STATE_DICT, config_from_weights(weights, path), weights, {}, None

    shown = ", ".join(sorted(str(k) for k in keys)[:6])
    raise DistillRVCError(f"{path}: not an RVC voice model (top-level keys: {shown})")


def _parse_project(raw: dict, path: Path):
    project = raw[PROJECT_KEY]
    if not isinstance(project, dict) or "config" not in project:
        raise DistillRVCError(f"{path}: damaged distill-rvc model: `{PROJECT_KEY}` has no config")
    version = project.get("format_version")
    if not isinstance(version, int) or version > PROJECT_FORMAT_VERSION:
        raise DistillRVCError(
            f"{path}: written by a newer distill-rvc (format {version!r}, this one reads up to "
            f"{PROJECT_FORMAT_VERSION}); upgrade distill-rvc")
    if not isinstance(project["config"], dict):
        raise DistillRVCError(f"{path}: damaged distill-rvc model: config is not a dict")
    config = SynthConfig.from_dict(project["config"])
    weights = _tensor_dict(raw.get("weight"), path, "weight")
    meta = {k: v for k, v in project.items() if k not in ("config", "format_version", "arch")}
    meta.update({k: raw[k] for k in TRAVEL_KEYS if k in raw})  # written at the top level, for Applio
    fmt = FORMAT_STUDENT_RVC if "config" in raw else FORMAT_PROJECT
    arch = project.get("arch")
    if arch is not None:
        try:
            arch = validate_arch(config, arch)
        except DistillRVCError as e:
            raise DistillRVCError(f"{path}: damaged distill-rvc model: {e}") from None
    return fmt, config, weights, meta, arch


def config_from_weights(weights: dict[str, torch.Tensor], path: Path) -> SynthConfig:
    """Read the architecture off a state dict that comes without a config (G_ files).

    Widths, counts and kernels are in the shapes. The upsample *rates* (hence the sample rate)
    are not, so the decoder geometry is matched against RVC's known configs; a `config.json`
    beside the file (RVC's `logs/<exp>/` layout) takes precedence.
    """
    w = weights
    try:
        phone_dim = w["enc_p.emb_phone.weight"].shape[1]
        hidden = w["enc_p.emb_phone.weight"].shape[0]
        inter = w["enc_p.proj.weight"].shape[0] // 2
        k_channels = w["enc_p.encoder.attn_layers.0.emb_rel_k"].shape[2]
        window = (w["enc_p.encoder.attn_layers.0.emb_rel_k"].shape[1] - 1) // 2
        ffn = w["enc_p.encoder.ffn_layers.0.conv_1.weight"]
        n_layers = len({k.split(".")[3] for k in w if k.startswith("enc_p.encoder.attn_layers.")})
        n_stages = len({k.split(".")[2] for k in w if k.startswith("dec.ups.")})
        kernels = tuple(_wn_shape(w, f"dec.ups.{i}")[2] for i in range(n_stages))
        init_ch = w["dec.conv_pre.weight"].shape[0]
        n_flows = len({k.split(".")[2] for k in w if k.startswith("flow.flows.") and ".pre." in k})
        wn_layers = len({k.split(".")[5] for k in w if k.startswith("flow.flows.0.enc.in_layers.")})
        flow_kernel = _wn_shape(w, "flow.flows.0.enc.in_layers.0")[2]
        emb_g = w["emb_g.weight"]
    except (KeyError, IndexError) as e:
        raise DistillRVCError(f"{path}: incomplete RVC synthesizer weights (missing {e})") from None
    version = {256: "v1", 768: "v2"}.get(phone_dim)
    if version is None:
        raise DistillRVCError(f"{path}: content width {phone_dim} is neither v1 (256) nor v2 (768)")
    f0 = "enc_p.emb_pitch.weight" in w
    n_res = len({k.split(".")[2] for k in w if k.startswith("dec.resblocks.")})
    per_stage = n_res // max(n_stages, 1)
    resblock = "1" if any(".convs1." in k for k in w if k.startswith("dec.resblocks.")) else "2"
    conv = "convs1" if resblock == "1" else "convs"
    res_kernels = tuple(_wn_shape(w, f"dec.resblocks.{j}.{conv}.0")[2] for j in range(per_stage))
    noise_kernels = tuple(w[f"dec.noise_convs.{i}.weight"].shape[2] for i in range(n_stages)) if f0 else None
    spec = w["enc_q.pre.weight"].shape[1] if "enc_q.pre.weight" in w else None

    sibling = _sibling_config(path)
    if sibling is not None:
        rates, sr = tuple(sibling["model"]["upsample_rates"]), parse_sample_rate(sibling["data"]["sampling_rate"])
        spec = spec or sibling["data"]["filter_length"] // 2 + 1
        dilations = tuple(tuple(d) for d in sibling["model"].get("resblock_dilation_sizes", [[1, 3, 5]] * per_stage))
    else:
        matches = []
        for (_, rate), (spec_ch, rates_, kernels_) in _RVC_DECODERS.items():
            if kernels_ != kernels or (spec is not None and spec != spec_ch):
                continue
            if noise_kernels is not None:
                strides = [math.prod(rates_[i + 1:]) for i in range(len(rates_) - 1)]
                if tuple(2 * s for s in strides) + (1,) != noise_kernels:
                    continue
            matches.append((rate, spec_ch, rates_))
        rates_by_sr = {m[0]: m for m in matches}
        if len({m[2] for m in matches}) != 1:
            raise DistillRVCError(
                f"{path}: cannot tell this checkpoint's sample rate from its weights; put the experiment's "
                "config.json beside it")
        sr, spec_m, rates = next(iter(rates_by_sr.values()))
        spec = spec or spec_m
        dilations = ((1, 3, 5),) * per_stage if resblock == "1" else ((1, 3),) * per_stage
    return SynthConfig(
        spec_channels=spec, inter_channels=inter, hidden_channels=hidden, filter_channels=ffn.shape[0],
        n_heads=hidden // k_channels, n_layers=n_layers, kernel_size=ffn.shape[2], resblock=resblock,
        resblock_kernel_sizes=res_kernels, resblock_dilation_sizes=dilations, upsample_rates=rates,
        upsample_initial_channel=init_ch, upsample_kernel_sizes=kernels, spk_embed_dim=emb_g.shape[0],
        gin_channels=emb_g.shape[1], sr=sr, version=version, f0=f0, phone_dim=phone_dim, n_flows=n_flows,
        flow_wn_layers=wn_layers, flow_kernel_size=flow_kernel, window_size=window)


def _wn_shape(w: dict[str, torch.Tensor], prefix: str) -> torch.Size:
    for suffix in (".weight_v", ".parametrizations.weight.original1", ".weight"):
        if prefix + suffix in w:
            return w[prefix + suffix].shape
    raise KeyError(prefix + ".weight")


def _sibling_config(path: Path) -> dict | None:
    candidate = path.parent / "config.json"
    if not candidate.is_file():
        return None
    try:
        cfg = json.loads(candidate.read_text(encoding="utf-8"))
        cfg["model"]["upsample_rates"], cfg["data"]["sampling_rate"], cfg["data"]["filter_length"]
        return cfg
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring %s: not an RVC config.json", candidate)
        return None


def _check_shapes(path: Path, config: SynthConfig, weights: dict[str, torch.Tensor], arch: dict | None) -> None:
    """Every tensor the declared architecture needs is there, with the right shape."""
    with torch.device("meta"):
        expected = build_model(config, arch, with_posterior=any(k.startswith("enc_q.") for k in weights)).state_dict()
    missing = [k for k in expected if k not in weights]
    if missing:
        more = f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DistillRVCError(f"{path}: damaged model: missing weight {missing[0]}{more}")
    for key, want in expected.items():
        got = weights[key].shape
        if got != want.shape:
            raise DistillRVCError(
                f"{path}: weight {key} has shape {list(got)}, but the file's config "
                f"({config.version}, {config.sr} Hz) needs {list(want.shape)}")
    unexpected = [k for k in weights if k not in expected]
    if unexpected:
        log.info("%s: ignoring %d unexpected weights (first: %s)", path, len(unexpected), unexpected[0])


# ----------------------------------------------------------------------- building
def build_model(config: SynthConfig, arch: dict[str, Any] | None = None, with_posterior: bool = False) -> Synthesizer:
    """An untrained Synthesizer of this architecture (`arch`: per-layer widths of pruned models,
    models/arch.py); `model.arch` is that spec, or None."""
    model = Synthesizer(config, with_posterior=with_posterior)
    model.arch = None
    if arch:
        model.arch = validate_arch(config, arch)
        apply_arch(model, model.arch)
    return model


def load_model(path: str | Path, *, with_posterior: bool = False) -> Synthesizer:
    """Any supported model file -> Synthesizer in eval mode, fp32, weight norm folded.

    `model.config` is the architecture; `model.checkpoint` the parsed file's description
    (format, metadata, stored dtype) without its weights.
    """
    ckpt = read_checkpoint(path)
    with_posterior = with_posterior and ckpt.has_posterior
    model = build_model(ckpt.config, ckpt.arch, with_posterior=with_posterior)
    wanted = model.state_dict()
    model.load_state_dict({k: ckpt.weights[k].float() for k in wanted}, strict=True)
    ckpt.weights = {}
    model.checkpoint = ckpt
    return model.eval()


# ------------------------------------------------------------------------ writing
def fold_phone_projection(sd: dict[str, torch.Tensor], config: SynthConfig):
    """emb_phone(phone_proj(x)) is one linear map: fold it so the file takes full-width features."""
    if not config.phone_proj_dim:
        return sd, config
    sd = dict(sd)
    wp, bp = sd.pop("enc_p.phone_proj.weight").float(), sd.pop("enc_p.phone_proj.bias").float()
    we, be = sd["enc_p.emb_phone.weight"].float(), sd["enc_p.emb_phone.bias"].float()
    sd["enc_p.emb_phone.weight"] = we @ wp  # [H, P] @ [P, D] -> [H, D]
    sd["enc_p.emb_phone.bias"] = we @ bp + be
    return sd, config.replace(phone_proj_dim=0)


@dataclass(frozen=True)
class SavedModel:
    """What `save_model` wrote: the path actually written and its format (FORMAT_*)."""

    path: Path
    format: str


def trained_encoder(model: Any) -> dict[str, Any] | None:
    """The distilled content encoder the loaded `model` was taught on, or None (HuBERT's features)."""
    return (getattr(getattr(model, "checkpoint", None), "metadata", None) or {}).get(STUDENT_ENCODER_KEY)


def project_path(path: str | Path) -> Path:
    """Where a project-format file asked for at `path` goes: `X.pth` -> `X.drvc.pt`."""
    path = Path(path)
    return path.with_suffix(PROJECT_SUFFIX) if path.suffix.lower() == ".pth" else path


def save_model(model: Synthesizer, path: str | Path, *, metadata: dict[str, Any] | None = None,
               half: bool = True, plain_rvc: bool = False) -> SavedModel:
    """Write `model` atomically; RVC's inference format when RVC can build it.

    metadata (plain JSON-like values: recipe, provenance, fidelity, ...) goes under the
    `distill_rvc` key, which RVC ignores; its TRAVEL_KEYS (`embedder_model`, `vocoder`,
    `speakers_id`), or those of the file the model was loaded from (`model.checkpoint`), go
    at the top level, where Applio reads them. `plain_rvc=True` writes what RVC's own `savee`
    writes (no `distill_rvc` key, any latent width), e.g. for example teachers.

    A model RVC cannot build is written in the project format; asked for `X.pth`, it goes to
    `X.drvc.pt` instead (the runtimes list every `*.pth` as a voice and would fail on it). So is
    a model trained on a distilled content encoder (metadata `student_encoder`): RVC, Applio and
    w-okada would build it and feed it HuBERT's features, and it would sound wrong.
    Returns the path written and the format.
    """
    metadata = dict(metadata or {})
    loaded = getattr(model.checkpoint, "metadata", None) or {}
    travel = {k: metadata.pop(k, loaded.get(k)) for k in TRAVEL_KEYS}
    travel = {k: v for k, v in travel.items() if v is not None}
    try:
        metadata = json.loads(json.dumps(metadata, allow_nan=False))
        travel = json.loads(json.dumps(travel, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise DistillRVCError(f"metadata for {path} is not plain JSON data: {e}") from None
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith("enc_q.")}
    sd, config = fold_phone_projection(sd, model.config)
    arch = model.arch
    fits, reason = config.fits_rvc(latent_192=not plain_rvc)
    if arch:
        fits, reason = False, "per-layer widths (pruned)"
    own_encoder = metadata.get(STUDENT_ENCODER_KEY) or trained_encoder(model)  # a re-saved student keeps it
    if own_encoder:
        metadata[STUDENT_ENCODER_KEY] = own_encoder
        fits, reason = False, (f"it takes the features of the distilled content encoder {own_encoder.get('file')}, "
                               "which RVC, Applio and w-okada do not have")
    if plain_rvc and not fits:
        raise DistillRVCError(f"cannot write {path} in RVC's format: {reason}")
    sd = to_rvc_keys(sd)
    sd = {k: (v.half() if half and v.is_floating_point() else v.float() if v.is_floating_point() else v)
          for k, v in sd.items()}
    project = {"format_version": PROJECT_FORMAT_VERSION, "config": config.to_dict(), **metadata}
    if arch:
        project["arch"] = arch
    path = Path(path)
    if fits:
        if config.resblock == "2":  # Applio would build ResBlock1 and load it silently wrong: make it refuse
            sd.update({k: torch.zeros(1, dtype=torch.float16 if half else torch.float32) for k in APPLIO_GUARD_KEYS})
        sr = config.sr
        obj = {"weight": sd, "config": config.to_rvc_list(), "info": str(metadata.get("info", "distill-rvc")),
               "sr": f"{sr // 1000}k" if sr % 1000 == 0 else str(sr), "f0": int(config.f0),
               "version": config.version, **travel, PROJECT_KEY: project}
        if plain_rvc:
            del obj[PROJECT_KEY]
        fmt = FORMAT_RVC if plain_rvc else FORMAT_STUDENT_RVC
    else:
        project["not_rvc_because"] = reason
        obj = {"weight": sd, **travel, PROJECT_KEY: project}  # no `config`: RVC's loader fails loudly
        fmt = FORMAT_PROJECT
        wanted, path = path, project_path(path)
        if path != wanted:
            log.warning("writing %s instead of %s: not in RVC's format (%s); RVC, Applio and w-okada list "
                        "every *.pth as a voice, and this one they must refuse", path, wanted.name, reason)
    atomic_write(path, lambda tmp: torch.save(obj, tmp))
    return SavedModel(path=path, format=fmt)
