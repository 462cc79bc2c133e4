"""Research: student inits that keep the teacher's *function*, not just its weight shapes.

`init_from_teacher` (student.py) picks channels by weight magnitude. On a trained teacher that
keeps shapes but not function (issue 13: log-mel L1 4.14 at step 0). Here:

- `activation_stats(teacher, items)`: per-module mean and mean square of each input channel
  (and mean square of each output channel) over real features, through forward hooks;
- `init_data_driven(student, teacher, stats)`: the same groups and copying as `init_from_teacher`,
  but a channel's importance is what its readers get from it: E[x_c^2] * ||W[:, c]||^2 for every
  layer that reads the channel (q/k channels: E[q_c^2] * E[k_c^2]); groups with no reader fall
  back to weight magnitude;
- `fold_dropped_means(student, teacher, stats, chosen)`: every layer that reads pruned channels
  gets their mean contribution added to its bias (exact for the speaker embedding, whose input
  is constant for speaker 0);
- the ridge-regression refits that follow (decoder, enc_p projection, flow `post`) are in refit.py;
- `function_init(student, teacher, cal)`: the whole chain bench_student_init.py measured best
  (activation choice, dropped-mean fold in the decoder, enc_p block + proj + flow post refits,
  decoder refit on the teacher's latent); `calibration_crops(dataset)` draws its input.

Not wired into `teach` yet: the default init is unchanged.
"""
from __future__ import annotations

import time
from collections import defaultdict
from types import SimpleNamespace

import torch
from torch import nn

from ..models import Synthesizer
from . import student as _st


# ----------------------------------------------------------------------------- statistics
@torch.no_grad()
def activation_stats(teacher: Synthesizer, items: list, noise_seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """{module name: {"in_mean", "in_sq", "out_sq"}} per channel, over `items` (Batch-like with
    phone, lengths, pitch, pitchf; speaker 0, fixed prior noise, NSF noise off)."""
    sums: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    counts: dict[str, int] = defaultdict(int)
    hooks = []

    def per_channel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach().float().transpose(0, 1).reshape(x.shape[1], -1)
        return x.sum(1), x.pow(2).sum(1)

    for name, mod in teacher.named_modules():
        if not isinstance(mod, (nn.Conv1d, nn.ConvTranspose1d)):
            continue

        def hook(m, args, out, name=name):
            s, sq = per_channel(args[0])
            _, osq = per_channel(out)
            n = args[0].shape[0] * args[0].shape[2]
            d = sums[name]
            for k, v in (("in_mean", s), ("in_sq", sq), ("out_sq", osq * n / (out.shape[0] * out.shape[2]))):
                d[k] = d.get(k, 0) + v
            counts[name] += n
        hooks.append(mod.register_forward_hook(hook))
    try:
        teacher.eval()
        for i, it in enumerate(items):
            g = torch.Generator().manual_seed(noise_seed + i)
            noise = torch.randn(it.phone.shape[0], teacher.config.inter_channels, it.phone.shape[1], generator=g)
            teacher.infer(it.phone, it.lengths, it.pitch, it.pitchf, torch.zeros(it.phone.shape[0], dtype=torch.long),
                          noise=noise, source_noise=False)
    finally:
        for h in hooks:
            h.remove()
    return {name: {k: v / counts[name] for k, v in d.items()} for name, d in sums.items()}


# ----------------------------------------------------------------------------- selection
_IN_DIM = {nn.Conv1d: 1, nn.ConvTranspose1d: 0}


def _reader_score(teacher: Synthesizer, t_sd, stats, t_key: str, dim: int, off: int, size: int) -> torch.Tensor | None:
    if not t_key.endswith(".weight"):
        return None
    mod_name = t_key[:-len(".weight")]
    try:
        mod = teacher.get_submodule(mod_name)
    except AttributeError:
        return None
    st = stats.get(mod_name)
    if st is None:
        return None
    w = t_sd[t_key]
    in_dim = _IN_DIM.get(type(mod))
    if in_dim == dim:
        col = w.narrow(dim, off, size).pow(2).transpose(0, dim).reshape(size, -1).sum(1)
        return col * st["in_sq"][off:off + size]
    if dim == 0 and mod_name.endswith(("conv_q", "conv_k")):  # q/k channels: the energy they carry
        other = mod_name[:-1] + ("k" if mod_name.endswith("q") else "q")
        if other in stats:
            return st["out_sq"][off:off + size] * stats[other]["out_sq"][off:off + size]
    return None


@torch.no_grad()
def data_driven_choice(student: Synthesizer, teacher: Synthesizer, stats) -> dict[str, torch.Tensor]:
    """The kept teacher channels per selection group, by activation-weighted reader importance."""
    t_cfg, s_cfg = teacher.config, student.config
    t_sd = {k: v.detach().float() for k, v in teacher.state_dict().items()}
    key_map, _ = _st._key_map(t_cfg, s_cfg)
    plan = _st._selection_plan(t_cfg, s_cfg)
    scores: dict[str, torch.Tensor] = {}
    fallback: dict[str, torch.Tensor] = {}
    for m, t_key, t_size in _st.scored_members(plan, key_map, t_sd):
        fallback[m.group] = fallback.get(m.group, 0) + _st._importance(t_sd[t_key], m.dim, m.t_off, t_size)
        r = _reader_score(teacher, t_sd, stats, t_key, m.dim, m.t_off, t_size)
        if r is not None:
            scores[m.group] = scores.get(m.group, 0) + r / r.sum().clamp_min(1e-12)
    for g, f in fallback.items():
        scores.setdefault(g, f)
    return {name: torch.topk(score, plan.groups[name][1]).indices.sort().values for name, score in scores.items()}


@torch.no_grad()
def init_with_choice(student: Synthesizer, teacher: Synthesizer, chosen: dict[str, torch.Tensor]) -> None:
    """`init_from_teacher` (same key map, groups, copying and scaling) with the channel choice `chosen`."""
    assert not student.config.phone_proj_dim, "research code: no phone projection"
    _st.init_from_teacher(student, teacher, chosen)


def magnitude_choice(student: Synthesizer, teacher: Synthesizer) -> dict[str, torch.Tensor]:
    """The choice `init_from_teacher` makes (weight magnitude)."""
    t_sd = {k: v.detach().float() for k, v in teacher.state_dict().items()}
    key_map, _ = _st._key_map(teacher.config, student.config)
    return _st.magnitude_choice(_st._selection_plan(teacher.config, student.config), key_map, t_sd)


# ----------------------------------------------------------------------------- bias folding
@torch.no_grad()
def fold_dropped_means(student: Synthesizer, teacher: Synthesizer, stats, chosen: dict[str, torch.Tensor],
                       prefixes: tuple[str, ...] = ("",)) -> int:
    """Add each reader's mean contribution from its pruned input channels to its bias.

    Covers Conv1d readers whose student input is a channel subset of the teacher's (same kernel).
    Returns the number of layers changed."""
    t_cfg, s_cfg = teacher.config, student.config
    key_map, _ = _st._key_map(t_cfg, s_cfg)
    plan = _st._selection_plan(t_cfg, s_cfg)
    t_sd = {k: v.detach().float() for k, v in teacher.state_dict().items()}
    changed = 0
    done = set()
    for m in plan.members:
        if m.group not in chosen or not m.s_key.endswith(".weight") or m.s_key in done \
                or not m.s_key.startswith(prefixes):
            continue
        t_key = key_map.get(m.s_key)
        if t_key is None:
            continue
        name = t_key[:-len(".weight")]
        try:
            t_mod = teacher.get_submodule(name)
            s_mod = student.get_submodule(m.s_key[:-len(".weight")])
        except AttributeError:
            continue
        if type(t_mod) is not nn.Conv1d or m.dim != 1 or name not in stats or s_mod.bias is None:
            continue
        if m.s_off or m.t_off or plan.groups[m.group][0] != t_mod.in_channels:
            continue
        if t_mod.kernel_size != s_mod.kernel_size:
            continue
        keep = torch.zeros(t_mod.in_channels, dtype=torch.bool)
        keep[chosen[m.group]] = True
        w = t_sd[t_key][:, ~keep].sum(-1)  # [out_t, dropped]
        delta = w @ stats[name]["in_mean"][~keep]  # [out_t]
        out_idx = _out_index(plan, chosen, m.s_key, s_mod.out_channels, t_mod.out_channels)
        if out_idx is None:
            continue
        s_mod.bias.add_(delta[out_idx].to(s_mod.bias.dtype))
        done.add(m.s_key)
        changed += 1
    return changed


def _out_index(plan, chosen, s_key: str, s_out: int, t_out: int) -> torch.Tensor | None:
    idx = torch.full((s_out,), -1, dtype=torch.long)
    if s_out == t_out:
        idx = torch.arange(t_out)
    for m in plan.members:
        if m.s_key == s_key and m.dim == 0 and m.group in chosen:
            c = chosen[m.group]
            idx[m.s_off:m.s_off + len(c)] = c + m.t_off
    return idx if (idx >= 0).all() else None


# ----------------------------------------------------------------------------- the whole chain
def calibration_crops(dataset, n_items: int = 48, frames: int = 64, seed: int = 1,
                      indices: list[int] | None = None) -> list[SimpleNamespace]:
    """Random crops of `frames` frames from up to `n_items` segments of `dataset` (shorter ones are
    skipped), each with phone [1, T, C], lengths [1], pitch [1, T], pitchf [1, T] (and student_phone
    [1, T, C] where the segments carry the student's own features, student_features.py); `indices`:
    the segments to draw from (default: all; teach passes the training split, never the held-out one)."""
    g = torch.Generator().manual_seed(seed)
    pool = list(range(len(dataset))) if indices is None else list(indices)
    crops = []
    for i in [pool[k] for k in torch.randperm(len(pool), generator=g)[:n_items].tolist()]:
        seg = dataset[i]
        n = seg.phone.shape[0]
        if n < frames:
            continue
        s = int(torch.randint(0, n - frames + 1, (1,), generator=g))
        sl = slice(s, s + frames)
        crop = SimpleNamespace(phone=seg.phone[None, sl].float(), lengths=torch.tensor([frames]),
                               pitch=seg.pitch[None, sl].long(), pitchf=seg.pitchf[None, sl].float())
        if getattr(seg, "student_phone", None) is not None:  # teach --encoder: what the student will hear
            crop.student_phone = seg.student_phone[None, sl].float()
        crops.append(crop)
    return crops


@torch.no_grad()
def prior_latent(model: Synthesizer, item, noise: torch.Tensor, speaker: int = 0) -> torch.Tensor:
    """The decoder input z [1, inter, T] of `model` for `item` and standard-normal prior `noise`."""
    from ..models import NOISE_SCALE
    sid = torch.full((item.phone.shape[0],), speaker, dtype=torch.long)
    m_p, logs_p, mask = model.enc_p(item.phone, item.pitch, item.lengths)
    z_p = (m_p + torch.exp(logs_p) * noise * NOISE_SCALE) * mask
    return model.flow(z_p, mask, g=model.emb_g(sid).unsqueeze(-1), reverse=True) * mask


def refittable(student: Synthesizer, teacher: Synthesizer) -> dict[str, bool]:
    """Which parts refit.py can refit layer by layer: those whose layers pair one to one with
    the teacher's (same depth; for the decoder, NSF and the teacher's upsampling: resblocks that
    do not pair are fitted stage by stage). A part that cannot keeps the data-driven channel choice."""
    s, t = student.config, teacher.config
    return {
        "enc_p": s.n_layers == t.n_layers,
        "flow": s.n_flows == t.n_flows and s.flow_wn_layers == t.flow_wn_layers,
        "dec": bool(s.f0 and t.f0 and tuple(s.upsample_rates) == tuple(t.upsample_rates)),
    }


@torch.no_grad()
def function_init(student: Synthesizer, teacher: Synthesizer, cal: list, lam: float = 1e-3, enc_lam: float = 1e-2,
                  noise_seed: int = 100, anchor: bool = False, embed: bool = True) -> dict[str, torch.Tensor]:
    """Initialise `student` (any weights; overwritten) so it computes what `teacher` does on `cal`.

    Speaker 0, NSF noise off. Items with `student_phone` (teach --encoder) calibrate the student
    on those, its own features, and the teacher on `phone`; `embed` then refits emb_phone too
    (refit.refit_embedding). Returns the channel choice. bench_student_init.py: 0.431 log-mel L1
    at step 0 on the shared teacher with 45 crops of 64 frames (magnitude init: 3.90)."""
    from . import refit as rf
    stats = activation_stats(teacher, cal)
    chosen = data_driven_choice(student, teacher, stats)
    init_with_choice(student, teacher, chosen)
    if embed:  # teach --encoder: the layer that reads the student's own features, fitted to the teacher's
        rf.refit_embedding(student, cal, lam=enc_lam)
    fits = refittable(student, teacher)
    if fits["dec"]:
        fold_dropped_means(student, teacher, stats, chosen, prefixes=("dec.",))
    if fits["enc_p"]:
        rf.refit_encoder(student, teacher, cal, chosen, lam=enc_lam, anchor=anchor)
    if fits["flow"]:
        rf.refit_enc_flow(student, teacher, cal, lam=enc_lam, anchor=anchor)
    if not fits["dec"]:
        return chosen
    inter = teacher.config.inter_channels
    zs = []
    for i, c in enumerate(cal):
        noise = torch.randn(1, inter, c.phone.shape[1], generator=torch.Generator().manual_seed(noise_seed + i))
        zs.append((prior_latent(teacher, c, noise), c.pitchf))
    rf.refit_decoder(student, teacher, zs, chosen, lam=lam, anchor=anchor)
    return chosen


def init_on_data(student: Synthesizer, teacher: Synthesizer, dataset, spec, indices: list[int] | None = None) -> str:
    """The recipe's student init (`spec`: its StudentSpec) on `dataset`'s segments `indices`;
    returns the line teach prints. "magnitude" leaves `build_student`'s init as it is."""
    if spec.init != "function":
        return "init       magnitude (init_from_teacher)"
    if student.config.phone_proj_dim:
        return "init       magnitude: the function init does not cover a phone projection yet"
    cal = calibration_crops(dataset, spec.init_crops, indices=indices)
    if not cal:
        return "init       magnitude: no training segment has 64 frames for the function init"
    began = time.perf_counter()
    with torch.no_grad():
        function_init(student, teacher, cal, lam=spec.init_ridge, enc_lam=spec.init_encoder_ridge)
    skipped = [part for part, ok in refittable(student, teacher).items() if not ok]
    note = (f"; {' and '.join(skipped)} {'keeps' if len(skipped) == 1 else 'keep'} the data's channel choice "
            "without refits (not the teacher's depth)" if skipped else "")
    return f"init       function-preserving on {len(cal)} crops of the data in {time.perf_counter() - began:.0f} s{note}"


__all__ = ["init_on_data", "activation_stats", "calibration_crops", "prior_latent", "function_init",
           "data_driven_choice", "magnitude_choice", "init_with_choice", "fold_dropped_means"]
