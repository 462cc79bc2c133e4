"""The student's starting weights cut from the teacher's: a subset of its channels, layer by layer.

    init_from_teacher(student, teacher)    in place; student.config.hidden <= teacher's, layers <= teacher's

A smaller FCPE is the same network with fewer channels, so each student tensor is the
teacher's tensor restricted to chosen channels:

    residual stream R (hidden of 512)   ranked by how much the head and the layers' pre-norms
                                         weigh them (|norm.weight| x |output_proj column| + the
                                         layers' |LayerNorm gamma| / layers), hidden / 4 from
                                         each of the input GroupNorm's 4 groups
    input stack's middle S              ranked by the norm of input_stack.3's input columns,
                                         hidden / 4 per GroupNorm group (the groups stay groups)
    each layer's GLU pairs G (2 hidden of 2 x 512)   ranked by |net.6 column over R| x |net.2 row|;
                                         the gate rows G + 1024 go with them
    layers                               evenly spaced over the teacher's 6 when fewer

Measured on 28 held-out espeak-ng clips (bench numbers in teach.py's docstring), before any
training: hidden 256 x 6 gives a median F0 error of 11.5 cents against the teacher and BCE
0.0116 (the teacher's own targets' entropy is 0.0071); a random init with the prior bias
gives ~1300 cents and 0.0333, and 100 steps of training bring it to 25 cents. Voicing is the
part the cut loses (V/UV agreement 0.76): the peaks come out lower than the threshold, which
training restores. Not for: training (train.py).
"""
from __future__ import annotations

import torch

from ..errors import DistillRVCError
from ..features.fcpe import FCPE


def _top(score: torch.Tensor, k: int, groups: int = 1) -> torch.Tensor:
    """The indices of the k largest scores, k / groups from each of `groups` equal slices, sorted."""
    n = score.numel() // groups
    return torch.cat([torch.sort(torch.topk(score[g * n:(g + 1) * n], k // groups).indices).values + g * n
                      for g in range(groups)])


@torch.no_grad()
def init_from_teacher(student: FCPE, teacher: FCPE) -> None:
    """Copy into `student` the teacher's weights restricted to its most used channels (see above)."""
    s_cfg, t_cfg = student.config, teacher.config
    if s_cfg.hidden > t_cfg.hidden or s_cfg.layers > t_cfg.layers or s_cfg.bins != t_cfg.bins:
        raise DistillRVCError(f"a student of hidden {s_cfg.hidden} x {s_cfg.layers} layers cannot be cut from a "
                              f"teacher of {t_cfg.hidden} x {t_cfg.layers}: give --init random or a smaller student")
    t = teacher.state_dict()
    hidden, layers, inner = s_cfg.hidden, s_cfg.layers, 2 * t_cfg.hidden
    picked = [round(i * (t_cfg.layers - 1) / (layers - 1)) for i in range(layers)] if layers > 1 else [t_cfg.layers - 1]
    score = t["norm.weight"].abs() * t["output_proj.weight"].norm(dim=0)
    for i in picked:
        score = score + t[f"net.encoder_layers.{i}.conformer.net.0.weight"].abs() / layers
    R = _top(score, hidden, 4)
    S = _top(t["input_stack.3.weight"].norm(dim=(0, 2)), hidden, 4)
    s = {"input_stack.0.weight": t["input_stack.0.weight"][S], "input_stack.0.bias": t["input_stack.0.bias"][S],
         "input_stack.1.weight": t["input_stack.1.weight"][S], "input_stack.1.bias": t["input_stack.1.bias"][S],
         "input_stack.3.weight": t["input_stack.3.weight"][R][:, S], "input_stack.3.bias": t["input_stack.3.bias"][R],
         "norm.weight": t["norm.weight"][R], "norm.bias": t["norm.bias"][R],
         "output_proj.weight": t["output_proj.weight"][:, R], "output_proj.bias": t["output_proj.bias"],
         "cent_table": t["cent_table"]}
    for j, i in enumerate(picked):
        p, q = f"net.encoder_layers.{i}.", f"net.encoder_layers.{j}."
        up, down = t[p + "conformer.net.2.weight"], t[p + "conformer.net.6.weight"]  # [2 inner, C, 1], [C, inner, 1]
        G = _top(down[R].norm(dim=(0, 2)) * up[:inner].norm(dim=(1, 2)), 2 * hidden)
        GG = torch.cat([G, G + inner])  # GLU: value rows, then their gates
        for name in ("conformer.net.0", "norm"):
            s[q + name + ".weight"], s[q + name + ".bias"] = t[p + name + ".weight"][R], t[p + name + ".bias"][R]
        s[q + "conformer.net.2.weight"], s[q + "conformer.net.2.bias"] = up[GG][:, R], t[p + "conformer.net.2.bias"][GG]
        s[q + "conformer.net.4.conv.weight"] = t[p + "conformer.net.4.conv.weight"][G]
        s[q + "conformer.net.4.conv.bias"] = t[p + "conformer.net.4.conv.bias"][G]
        s[q + "conformer.net.6.weight"], s[q + "conformer.net.6.bias"] = down[R][:, G], t[p + "conformer.net.6.bias"][R]
    student.load_state_dict({k: v.clone() for k, v in s.items()})
