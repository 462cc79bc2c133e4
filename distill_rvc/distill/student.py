"""The student: its architecture from teacher + recipe, and its weights from the teacher's.

`student_config` resolves the recipe's widths ("0.5x" or counts) against the teacher and
takes the sample rate, hop and upsampling rates from the teacher. `init_from_teacher` copies
the teacher's weights wherever the shapes allow, keeping the most important channels:

- Channels are chosen per *group* of coupled tensors, so every layer that writes a channel
  and every layer that reads it keep the same one (e.g. enc_p's residual stream runs through
  emb_phone, every attention and FFN block, both LayerNorms and proj; a decoder stage through
  its upsampler, noise conv, resblocks and the next upsampler).
- A channel's importance is its weight magnitude summed over the group, each tensor's share
  normalised so one big tensor does not decide alone.
- Attention keeps the same per-head channels in every head (the relative-position tables are
  shared by the heads), and q with k, v with o.
- Fewer layers take evenly spaced teacher layers (enc_p) or the first ones (flows, WN, resblocks);
  smaller kernels take the teacher's centre taps; ResBlock2 convs start from ResBlock1's dilated convs.
- A `phone_proj` is initialised from the SVD of the teacher's emb_phone (best rank-P fit).
Anything else (a narrower latent, wider layers) keeps its random init, and is logged.

Not here: training (trainer.py) or saving (checkpoint.save_model).
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Iterator

import torch

from ..config import SynthConfig
from ..errors import DistillRVCError
from ..models import Synthesizer
from .recipes import StudentSpec, Width

log = logging.getLogger(__name__)


# -------------------------------------------------------------------------- the config
def resolve_width(value: Width, teacher: int, *, multiple: int = 1, minimum: int = 1) -> int:
    """A recipe width against the teacher's: counts are kept, fractions are rounded to
    `multiple` (never below `minimum`)."""
    if isinstance(value, int):
        return value
    v = teacher * float(value[:-1])
    return max(minimum, multiple * round(v / multiple))


def _channel_multiple(approx: float) -> int:
    return 8 if approx >= 32 else 2  # multiples of 8 suit GPU kernels; tiny teachers need finer steps


def student_config(teacher: SynthConfig, spec: StudentSpec) -> SynthConfig:
    """The student's architecture: the teacher's, with the recipe's widths, depths and decoder."""
    def channels(name: str, extra_multiple: int = 1, minimum: int = 2) -> int:
        t = getattr(teacher, name)
        value = getattr(spec, name)
        approx = t * float(value[:-1]) if isinstance(value, str) else value
        return resolve_width(value, t, multiple=math.lcm(_channel_multiple(approx), extra_multiple),
                             minimum=max(minimum, extra_multiple))

    def count(name: str) -> int:
        return resolve_width(getattr(spec, name), getattr(teacher, name))

    n_heads = count("n_heads")
    stages = len(teacher.upsample_rates)
    resblock = spec.resblock or teacher.resblock
    kernels = spec.resblock_kernel_sizes or teacher.resblock_kernel_sizes
    dilations = spec.resblock_dilation_sizes
    if dilations is None:
        if resblock == teacher.resblock and len(kernels) == len(teacher.resblock_dilation_sizes):
            dilations = teacher.resblock_dilation_sizes
        else:
            dilations = ((1, 3, 5) if resblock == "1" else (1, 3),) * len(kernels)
    if len(dilations) != len(kernels):
        raise DistillRVCError(f"the student has {len(kernels)} resblock kernels but {len(dilations)} dilation "
                              "lists; give resblock_dilation_sizes in the recipe")
    inter = channels("inter_channels")
    if inter > teacher.inter_channels:
        raise DistillRVCError(f"the student's latent width {inter} exceeds the teacher's {teacher.inter_channels}")
    return teacher.replace(
        inter_channels=inter,
        hidden_channels=channels("hidden_channels", extra_multiple=2 * n_heads),
        filter_channels=channels("filter_channels"),
        gin_channels=channels("gin_channels"),
        n_heads=n_heads,
        n_layers=count("n_layers"),
        n_flows=count("n_flows"),
        flow_wn_layers=count("flow_wn_layers"),
        upsample_initial_channel=channels("upsample_initial_channel", extra_multiple=2**stages,
                                          minimum=2 ** (stages + 1)),
        resblock=resblock,
        resblock_kernel_sizes=tuple(kernels),
        resblock_dilation_sizes=tuple(tuple(d) for d in dilations),
        phone_proj_dim=spec.phone_proj_dim,
    )


def build_student(teacher: Synthesizer, spec: StudentSpec, init: bool = True) -> Synthesizer:
    """A student for `teacher`, initialised from its weights (or randomly with init=False)."""
    student = Synthesizer(student_config(teacher.config, spec))
    if init:
        init_from_teacher(student, teacher)
    if spec.phone_proj_dim and spec.phone_proj == "fixed":
        student.enc_p.phone_proj.requires_grad_(False)
    return student


# ------------------------------------------------------------------ channel selection
@dataclass
class _Member:
    """`size` channels of student tensor `s_key` along `dim`, starting at `s_off`, come from the
    teacher tensor (mapped key) at the group's chosen indices + `t_off`."""

    group: str
    s_key: str
    dim: int
    s_off: int = 0
    t_off: int = 0


class _Plan:
    def __init__(self) -> None:
        self.groups: dict[str, tuple[int, int]] = {}  # name -> (teacher size, student size)
        self.members: list[_Member] = []

    def group(self, name: str, t_size: int, s_size: int) -> str:
        self.groups[name] = (t_size, s_size)
        return name

    def add(self, group: str, s_key: str, dim: int, s_off: int = 0, t_off: int = 0) -> None:
        self.members.append(_Member(group, s_key, dim, s_off, t_off))


def _layer_map(n_teacher: int, n_student: int) -> list[int | None]:
    """Evenly spaced teacher layers, first and last included (None: a layer beyond the teacher's)."""
    if n_student >= n_teacher:
        return list(range(n_teacher)) + [None] * (n_student - n_teacher)
    if n_student == 1:
        return [n_teacher - 1]
    return [round(i * (n_teacher - 1) / (n_student - 1)) for i in range(n_student)]


def _key_map(t: SynthConfig, s: SynthConfig) -> tuple[dict[str, str], list[int]]:
    """Student key patterns -> teacher key: which teacher tensor each student tensor starts from."""
    enc_layers = _layer_map(t.n_layers, s.n_layers)
    nk_t, nk_s = len(t.resblock_kernel_sizes), len(s.resblock_kernel_sizes)
    mapping: dict[str, str] = {}

    def rename(key: str) -> str | None:
        m = re.match(r"^enc_p\.encoder\.(\w+)\.(\d+)\.(.*)$", key)
        if m:
            layer = enc_layers[int(m[2])]
            return None if layer is None else f"enc_p.encoder.{m[1]}.{layer}.{m[3]}"
        m = re.match(r"^dec\.resblocks\.(\d+)\.(convs[12]?)\.(\d+)\.(.*)$", key)
        if m:
            stage, j = divmod(int(m[1]), nk_s)
            if j >= nk_t:
                return None
            conv = m[2]
            if conv == "convs":  # a ResBlock2 student
                conv = "convs1" if t.resblock == "1" else "convs"
            elif t.resblock == "2":
                return None
            return f"dec.resblocks.{stage * nk_t + j}.{conv}.{m[3]}.{m[4]}"
        return key

    with torch.device("meta"):
        keys = Synthesizer(s).state_dict().keys()
    for key in keys:
        target = rename(key)
        if target is not None:
            mapping[key] = target
    return mapping, enc_layers


def _selection_plan(t: SynthConfig, s: SynthConfig) -> _Plan:
    p = _Plan()
    # enc_p residual stream.
    g = p.group("enc_p.hidden", t.hidden_channels, s.hidden_channels)
    p.add(g, "enc_p.emb_phone.weight", 0)
    p.add(g, "enc_p.emb_phone.bias", 0)
    if s.f0:
        p.add(g, "enc_p.emb_pitch.weight", 1)
    p.add(g, "enc_p.proj.weight", 1)
    d_t, d_s = t.hidden_channels // t.n_heads, s.hidden_channels // s.n_heads
    for i in range(s.n_layers):
        a, f = f"enc_p.encoder.attn_layers.{i}", f"enc_p.encoder.ffn_layers.{i}"
        for conv in ("q", "k", "v"):
            p.add(g, f"{a}.conv_{conv}.weight", 1)
        p.add(g, f"{a}.conv_o.weight", 0)
        p.add(g, f"{a}.conv_o.bias", 0)
        for n in (1, 2):
            p.add(g, f"enc_p.encoder.norm_layers_{n}.{i}.gamma", 0)
            p.add(g, f"enc_p.encoder.norm_layers_{n}.{i}.beta", 0)
        p.add(g, f"{f}.conv_1.weight", 1)
        p.add(g, f"{f}.conv_2.weight", 0)
        p.add(g, f"{f}.conv_2.bias", 0)
        # Per-head channels, the same in every head; heads beyond the teacher's stay random.
        qk = p.group(f"enc_p.attn.{i}.qk", d_t, d_s)
        vo = p.group(f"enc_p.attn.{i}.vo", d_t, d_s)
        for h in range(min(t.n_heads, s.n_heads)):
            for conv in ("q", "k"):
                p.add(qk, f"{a}.conv_{conv}.weight", 0, h * d_s, h * d_t)
                p.add(qk, f"{a}.conv_{conv}.bias", 0, h * d_s, h * d_t)
            p.add(vo, f"{a}.conv_v.weight", 0, h * d_s, h * d_t)
            p.add(vo, f"{a}.conv_v.bias", 0, h * d_s, h * d_t)
            p.add(vo, f"{a}.conv_o.weight", 1, h * d_s, h * d_t)
        p.add(qk, f"{a}.emb_rel_k", 2)
        p.add(vo, f"{a}.emb_rel_v", 2)
        ffn = p.group(f"enc_p.ffn.{i}", t.filter_channels, s.filter_channels)
        p.add(ffn, f"{f}.conv_1.weight", 0)
        p.add(ffn, f"{f}.conv_1.bias", 0)
        p.add(ffn, f"{f}.conv_2.weight", 1)

    # Speaker embedding width, read by every cond layer.
    g = p.group("gin", t.gin_channels, s.gin_channels)
    p.add(g, "emb_g.weight", 1)
    p.add(g, "dec.cond.weight", 1)

    # Flow couplings (the first n): WN residual stream, skip stream, and each layer's gate.
    h_t, h_s = t.hidden_channels, s.hidden_channels
    for k in range(min(t.n_flows, s.n_flows)):
        base = f"flow.flows.{2 * k}"
        p.add("gin", f"{base}.enc.cond_layer.weight", 1)
        res = p.group(f"{base}.res", h_t, h_s)
        skip = p.group(f"{base}.skip", h_t, h_s)
        p.add(res, f"{base}.pre.weight", 0)
        p.add(res, f"{base}.pre.bias", 0)
        p.add(skip, f"{base}.post.weight", 1)
        for i in range(min(t.flow_wn_layers, s.flow_wn_layers)):
            s_last, t_last = i == s.flow_wn_layers - 1, i == t.flow_wn_layers - 1
            rs = f"{base}.enc.res_skip_layers.{i}"
            p.add(res, f"{base}.enc.in_layers.{i}.weight", 1)
            if not s_last:
                if t_last:
                    continue  # the teacher's last layer has no residual half: leave it random
                p.add(res, f"{rs}.weight", 0)
                p.add(res, f"{rs}.bias", 0)
            s_skip, t_skip = (0 if s_last else h_s), (0 if t_last else h_t)
            p.add(skip, f"{rs}.weight", 0, s_skip, t_skip)
            p.add(skip, f"{rs}.bias", 0, s_skip, t_skip)
            gate = p.group(f"{base}.gate.{i}", h_t, h_s)
            for half in (0, 1):  # tanh and sigmoid halves pair channel by channel
                p.add(gate, f"{base}.enc.in_layers.{i}.weight", 0, half * h_s, half * h_t)
                p.add(gate, f"{base}.enc.in_layers.{i}.bias", 0, half * h_s, half * h_t)
                off_s, off_t = 2 * h_s * i + half * h_s, 2 * h_t * i + half * h_t
                p.add(gate, f"{base}.enc.cond_layer.weight", 0, off_s, off_t)
                p.add(gate, f"{base}.enc.cond_layer.bias", 0, off_s, off_t)
            p.add(gate, f"{rs}.weight", 1)

    # Decoder: the input width, then each stage's width.
    g = p.group("dec.stage.-1", t.upsample_initial_channel, s.upsample_initial_channel)
    for key, dim in (("dec.conv_pre.weight", 0), ("dec.conv_pre.bias", 0), ("dec.cond.weight", 0),
                     ("dec.cond.bias", 0), ("dec.ups.0.weight", 0)):
        p.add(g, key, dim)
    nk = len(s.resblock_kernel_sizes)
    for i, (ct, cs) in enumerate(zip(t.stage_channels(), s.stage_channels())):
        g = p.group(f"dec.stage.{i}", ct, cs)
        p.add(g, f"dec.ups.{i}.weight", 1)  # ConvTranspose1d: [in, out, k]
        p.add(g, f"dec.ups.{i}.bias", 0)
        if s.f0:
            p.add(g, f"dec.noise_convs.{i}.weight", 0)
            p.add(g, f"dec.noise_convs.{i}.bias", 0)
        p.add(g, f"dec.ups.{i + 1}.weight" if i + 1 < len(s.upsample_rates) else "dec.conv_post.weight",
              0 if i + 1 < len(s.upsample_rates) else 1)
        convs = ("convs1", "convs2") if s.resblock == "1" else ("convs",)
        for j in range(nk):
            for conv in convs:
                for m in range(len(s.resblock_dilation_sizes[j])):
                    key = f"dec.resblocks.{i * nk + j}.{conv}.{m}"
                    p.add(g, f"{key}.weight", 0)
                    p.add(g, f"{key}.weight", 1)
                    p.add(g, f"{key}.bias", 0)
    return p


def _importance(tensor: torch.Tensor, dim: int, offset: int, size: int) -> torch.Tensor:
    """Per-channel squared magnitude along `dim`, as a share of the slice's total."""
    part = tensor.narrow(dim, offset, size).float()
    per = part.pow(2).transpose(0, dim).reshape(size, -1).sum(1)
    return per / per.sum().clamp_min(1e-12)


def _centre(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    """Crop (or zero-pad) the last dim of a conv weight to `kernel` taps around its centre."""
    k = weight.shape[-1]
    if kernel <= k:
        start = (k - kernel) // 2
        return weight[..., start:start + kernel]
    left = (kernel - k) // 2
    return torch.nn.functional.pad(weight, (left, kernel - k - left))


def scored_members(plan: _Plan, key_map: dict[str, str],
                   t_sd: dict[str, torch.Tensor]) -> Iterator[tuple[_Member, str, int]]:
    """The plan's members a channel choice can score: (member, teacher key, teacher group width)
    for each tensor the teacher has, in groups where the student is not wider."""
    for m in plan.members:
        t_size, s_size = plan.groups[m.group]
        t_key = key_map.get(m.s_key)
        if t_key in t_sd and s_size <= t_size:
            yield m, t_key, t_size


def magnitude_choice(plan, key_map: dict[str, str], t_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per group, the teacher channels with the largest weight magnitude over the tensors the
    student keeps: group -> sorted indices (as many as the student's width)."""
    scores: dict[str, torch.Tensor] = {}
    for m, t_key, t_size in scored_members(plan, key_map, t_sd):
        scores[m.group] = scores.get(m.group, 0) + _importance(t_sd[t_key], m.dim, m.t_off, t_size)
    return {name: torch.topk(score, plan.groups[name][1]).indices.sort().values for name, score in scores.items()}


@torch.no_grad()
def init_from_teacher(student: Synthesizer, teacher: Synthesizer,
                      chosen: dict[str, torch.Tensor] | None = None) -> dict[str, int]:
    """Copy the teacher's weights into `student` where shapes allow (see the module docstring).

    `chosen` (group -> sorted teacher channel indices) replaces the weight-magnitude choice,
    e.g. a data-driven one (function_init.py). Returns counts {"copied": tensors taken from
    the teacher, "random": tensors left as initialised}.
    """
    t_cfg, s_cfg = teacher.config, student.config
    if (t_cfg.upsample_rates, t_cfg.sr, t_cfg.f0, t_cfg.phone_dim) != (s_cfg.upsample_rates, s_cfg.sr, s_cfg.f0,
                                                                          s_cfg.phone_dim):
        raise DistillRVCError("the student must keep the teacher's sample rate, upsampling, f0 and content width")
    t_sd = {k: v.detach().float() for k, v in teacher.state_dict().items()}
    s_sd = student.state_dict()
    key_map, _ = _key_map(t_cfg, s_cfg)
    plan = _selection_plan(t_cfg, s_cfg)
    if s_cfg.phone_proj_dim:  # emb_phone reads the projection, not the features: its dim 1 is handled apart
        plan.members = [m for m in plan.members if not (m.s_key == "enc_p.emb_phone.weight" and m.dim == 1)]
        key_map.pop("enc_p.phone_proj.weight", None)
        key_map.pop("enc_p.phone_proj.bias", None)

    if chosen is None:
        chosen = magnitude_choice(plan, key_map, t_sd)

    # Each student tensor's source index along each mapped dim.
    index: dict[tuple[str, int], torch.Tensor] = {}
    for m in plan.members:
        if m.group not in chosen or m.s_key not in s_sd:
            continue
        key = (m.s_key, m.dim)
        if key not in index:
            index[key] = torch.full((s_sd[m.s_key].shape[m.dim],), -1, dtype=torch.long)
        idx = chosen[m.group]
        index[key][m.s_off:m.s_off + len(idx)] = idx + m.t_off

    copied, random_keys = 0, []
    for s_key, target in s_sd.items():
        t_key = key_map.get(s_key)
        source = t_sd.get(t_key) if t_key else None
        if source is None or source.dim() != target.dim():
            random_keys.append(s_key)
            continue
        ok = True
        for dim in range(target.dim()):
            idx = index.get((s_key, dim))
            if idx is not None and (idx >= 0).all() and int(idx.max()) < source.shape[dim]:
                source = source.index_select(dim, idx)
            elif source.shape[dim] != target.shape[dim]:
                if dim == 2 and target.dim() == 3 and not s_key.endswith(("emb_rel_k", "emb_rel_v")):
                    source = _centre(source, target.shape[2])  # a different conv kernel size
                else:
                    ok = False
                    break
        if ok and source.shape == target.shape:
            target.copy_(source)
            copied += 1
        else:
            random_keys.append(s_key)

    # enc_p scales its embeddings by sqrt(hidden): keep the teacher's scale in the narrower student.
    scale = math.sqrt(t_cfg.hidden_channels / s_cfg.hidden_channels)
    for key in ("enc_p.emb_phone.weight", "enc_p.emb_phone.bias", "enc_p.emb_pitch.weight"):
        if key in s_sd and key not in random_keys:
            s_sd[key].mul_(scale)
    if s_cfg.phone_proj_dim:
        _init_phone_projection(student, t_sd, chosen.get("enc_p.hidden"), scale)
        random_keys = [k for k in random_keys if not k.startswith(("enc_p.phone_proj.", "enc_p.emb_phone.weight"))]
        copied += 3
    if random_keys:
        log.info("student init: %d tensors from the teacher, %d left random (first: %s)", copied,
                 len(random_keys), random_keys[0])
    return {"copied": copied, "random": len(random_keys)}


def _init_phone_projection(student: Synthesizer, t_sd: dict[str, torch.Tensor], hidden_idx: torch.Tensor | None,
                           scale: float) -> None:
    """emb_phone(phone_proj(x)) as the best rank-P fit of the teacher's emb_phone (its SVD)."""
    w = t_sd["enc_p.emb_phone.weight"]  # [H_t, D]
    if hidden_idx is not None:
        w = w[hidden_idx]
    w = w * scale
    u, sv, vh = torch.linalg.svd(w, full_matrices=False)  # w = u diag(sv) vh
    p = student.config.phone_proj_dim
    r = min(p, sv.numel())
    proj, emb = student.enc_p.phone_proj, student.enc_p.emb_phone
    proj.weight.zero_()
    proj.bias.zero_()
    emb.weight.zero_()
    proj.weight[:r] = vh[:r]  # [P, D]
    emb.weight[:, :r] = u[:, :r] * sv[:r]  # [H_s, P]
