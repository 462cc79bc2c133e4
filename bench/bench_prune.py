"""Pruning RVC's real decoder: params, MACs per second of audio and CPU latency, before and after,
measured side by side in one run; plus each part's share of the whole synthesizer (why the
flow is not pruned).

    python bench/bench_prune.py                      # v2 40k teacher, ratios 0.3 and 0.5, 5 s, 2 threads
    python bench/bench_prune.py --threads 1 --runs 5 --seconds 3

Random weights drawn as RVC initialises them (speed and counts do not depend on them). The
decoder is pruned as `distill-rvc prune --parts dec --round-to 8` prunes it (magnitude
importance, torch-pruning's dependency graph). Each decoder runs `dec(z, f0, g)` on the same
input, median of --runs after a warm-up, interleaved so a busy machine slows every model alike.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill_rvc import Synthesizer, rvc_config  # noqa: E402
from distill_rvc.checkpoint import build_model  # noqa: E402
from distill_rvc.models.arch import widths_of  # noqa: E402
from distill_rvc.prune import prune_synthesizer  # noqa: E402
from distill_rvc.prune.widths import scaled_widths  # noqa: E402
from distill_rvc.timing import side_by_side, timed  # noqa: E402


def part_macs(config, arch, frames: int) -> dict[str, int]:
    """MACs of enc_p, flow and dec for `frames` frames (fake tensors: nothing is computed)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
        model = build_model(config, arch).eval()
        for part, run in _part_runs(model, frames).items():
            with FlopCounterMode(display=False) as counter:
                run()
            out[part] = int(counter.get_total_flops() / 2)
    return out


def _part_runs(model: Synthesizer, frames: int, seed: int = 0) -> dict:
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    phone = torch.randn(1, frames, cfg.phone_dim, generator=g)
    pitch = torch.randint(1, 256, (1, frames), generator=g)
    pitchf = torch.full((1, frames), 180.0)
    lengths = torch.tensor([frames])
    spk = model.emb_g(torch.zeros(1, dtype=torch.long)).unsqueeze(-1)
    z = torch.randn(1, cfg.inter_channels, frames, generator=g)
    mask = torch.ones(1, 1, frames)
    return {"enc_p": lambda: model.enc_p(phone, pitch, lengths),
            "flow": lambda: model.flow(z, mask, g=spk, reverse=True),
            "dec": lambda: model.dec(z, pitchf, g=spk, source_noise=False)}


def medians(runs: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each callable, interleaved, after one warm-up each (timing.py)."""
    with torch.no_grad():
        return dict(zip(runs, side_by_side([timed(run) for run in runs.values()], repeats, warmup=1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="v2", choices=["v1", "v2"])
    ap.add_argument("--sr", type=int, default=40000)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5])
    ap.add_argument("--round-to", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = rvc_config(args.version, args.sr, True)
    teacher = Synthesizer(cfg).eval()
    frames = int(args.seconds * 100)

    models = {"teacher": teacher}
    prune_s = {}
    for ratio in args.ratios:
        model = copy.deepcopy(teacher)
        start = time.perf_counter()
        prune_synthesizer(model, scaled_widths(widths_of(teacher), ratio, args.round_to, parts=("dec",)))
        prune_s[f"p={ratio:g}"] = time.perf_counter() - start
        models[f"p={ratio:g}"] = model

    runs = {name: _part_runs(model, frames)["dec"] for name, model in models.items()}
    dec_s = medians(runs, args.runs)
    rows = []
    for name, model in models.items():
        macs = part_macs(cfg, widths_of(model), 100)["dec"]
        rows.append({"decoder": name, "params": sum(p.numel() for p in model.dec.parameters()),
                     "gmac_per_s": round(macs / 1e9, 2), "median_s": round(dec_s[name], 3),
                     "rtf": round(dec_s[name] / args.seconds, 4),
                     "speedup": round(dec_s["teacher"] / dec_s[name], 2),
                     "stages": widths_of(model)["dec"]["ups"], "conv_pre": widths_of(model)["dec"]["conv_pre"],
                     "prune_s": round(prune_s.get(name, 0.0), 2)})

    # Each part's share of the unpruned synthesizer: what pruning the flow could still buy.
    shares_s = medians(_part_runs(teacher, frames), args.runs)
    shares_macs = part_macs(cfg, None, 100)
    params = teacher.param_counts()
    parts = {part: {"params": params[part], "gmac_per_s": round(shares_macs[part] / 1e9, 3),
                    "mac_share": round(shares_macs[part] / sum(shares_macs.values()), 4),
                    "median_s": round(shares_s[part], 3),
                    "time_share": round(shares_s[part] / sum(shares_s.values()), 4)}
             for part in ("enc_p", "flow", "dec")}
    print(json.dumps({"teacher": f"{args.version} {args.sr} f0", "seconds_of_audio": args.seconds,
                      "threads": args.threads, "runs": args.runs, "round_to": args.round_to,
                      "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                      "decoders": rows, "teacher_parts": parts}, indent=1))


if __name__ == "__main__":
    main()
