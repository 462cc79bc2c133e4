"""Step-0 fidelity of `teach --encoder` on the shared trained teacher: where the init calibrates (issue 14, item 4).

    python bench/bench_teach_encoder.py --data CACHE --encoder encoder.pt [--recipes tiny,4gb] [--crops 16]

CACHE: a `distill-rvc prepare` cache (v2, 40 kHz, with audio, features from `../shared/tools/
make_hubert.py --variant a`); encoder.pt: a `teach-encoder` student of that HuBERT. For each
recipe, four students are initialised (function_init, --crops calibration crops) and scored by
`teach`'s held-out evaluation at step 0 (log-mel L1 against the teacher, 8 clips of 3 s, fixed
prior noise, NSF noise off):

    HuBERT in            no --encoder: the student hears what the teacher hears (the reference)
    calibrated on HuBERT --encoder, but the init's fits read the teacher's features (what `teach`
                         would do if the init ignored the student's features)
    own, no emb refit    the enc_p / flow refits read the student's features, emb_phone is the copy
    own (the default)    and emb_phone refitted on them (refit.refit_embedding)

Skips (exit 0) when ../shared or the inputs are absent.

Measured 2026-12-03 on ../shared/teachers/ref_v2_40k.pth, CPU fp32, 1 thread, nice 10 on a busy
2-core box. Data: 40 of the teacher's own training sentences (espeak-ng en-us+f3 -p 70, 169 s, 61
segments, `prepare --f0 harvest`), held-out clips drawn from them by `teach`'s split. Encoder:
`teach-encoder --steps 600` on the same 40 sentences (held-out cosine 0.890; the mean feature
alone: 0.887, so it has learnt little beyond the mean, as the README's encoder has).

    recipe  student hears / init calibrated on       step-0 log-mel L1 vs teacher
    tiny    HuBERT / HuBERT                          0.947
            encoder / HuBERT                         0.964
            encoder / encoder, no emb refit          0.904
            encoder / encoder (default)              0.891
    4gb     HuBERT / HuBERT                          0.514
            encoder / HuBERT                         0.719
            encoder / encoder, no emb refit          0.727
            encoder / encoder (default)              0.647
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared_teacher import TEACHER  # noqa: E402  (../shared, or /work/shared from a worktree)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--encoder", type=Path, required=True)
    ap.add_argument("--recipes", default="tiny,4gb")
    ap.add_argument("--crops", type=int, default=16, help="calibration crops of the init (recipes: 48)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    for need in (TEACHER, args.data, args.encoder):
        if not need.exists():
            print(f"skipped: {need} is absent")
            return 0
    torch.set_num_threads(args.threads)
    from distill_rvc.distill import function_init as fi
    from distill_rvc.distill.recipes import load_recipe
    from distill_rvc.distill.teach import TeachSettings, teach

    crops, init = fi.calibration_crops, fi.function_init

    def hubert_crops(*a, **k):
        out = crops(*a, **k)
        for c in out:
            c.__dict__.pop("student_phone", None)
        return out

    variants = (("HuBERT / HuBERT", None, crops, init),
                ("encoder / HuBERT", args.encoder, hubert_crops, init),
                ("encoder / encoder, no emb refit", args.encoder, crops, lambda *a, **k: init(*a, embed=False, **k)),
                ("encoder / encoder (default)", args.encoder, crops, init))
    work = Path(tempfile.mkdtemp(prefix="bench_teach_encoder_"))
    try:
        for name in args.recipes.split(","):
            for k, (label, encoder, crop_fn, init_fn) in enumerate(variants):
                fi.calibration_crops, fi.function_init = crop_fn, init_fn
                recipe = load_recipe(name).replace(
                    student={"init_crops": args.crops},
                    train=dict(steps=1, batch_size=2, eval_items=8, eval_frames=300, eval_fidelity=False,
                               teacher_cache=False))
                began = time.perf_counter()
                result = teach(TEACHER, args.data, work / f"{name}-{k}", TeachSettings(
                    recipe=recipe, encoder=encoder, progress=False, device="cpu", check_budget=False))
                print(f"{name:6}  {label:36} {result.train.fidelity['mel_l1_init']:.3f}  "
                      f"({time.perf_counter() - began:.0f} s)", flush=True)
    finally:
        fi.calibration_crops, fi.function_init = crops, init
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
