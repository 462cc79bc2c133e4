"""What the benches on the shared trained teacher (../shared/teachers) have in common.

    parse_args(ap) -> args       --data, --held, --teacher, --recipe added to `ap`, parsed, and the
                                 run skipped (exit 0, "SKIP: ...") when ../shared or a cache is absent

A user's clone has no ../shared, so these benches skip there rather than fail.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEACHER = ROOT.parent / "shared" / "teachers" / "ref_v2_40k.pth"
if not TEACHER.is_file():
    TEACHER = Path("/work/shared/teachers/ref_v2_40k.pth")


def skip(why: str) -> None:
    print(f"SKIP: {why}")
    sys.exit(0)


def parse_args(ap: argparse.ArgumentParser) -> argparse.Namespace:
    """`ap` with the shared inputs: DATA (training/calibration cache) and HELD (held-out cache),
    both `distill-rvc prepare` caches of voices the teacher never heard, features from
    `make_hubert.py --variant a`."""
    ap.add_argument("--data", type=Path, required=True, help="the training / calibration cache")
    ap.add_argument("--held", type=Path, required=True, help="the held-out cache")
    ap.add_argument("--teacher", type=Path, default=TEACHER)
    ap.add_argument("--recipe", default="4gb")
    args = ap.parse_args()
    for p in (args.teacher, args.data / "manifest.json", args.held / "manifest.json"):
        if not p.is_file():
            skip(f"{p} is absent (the shared teacher and prepared caches are needed)")
    return args
