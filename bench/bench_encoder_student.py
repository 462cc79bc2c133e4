"""The student encoder beside its teacher, in one run: size, FLOPs, speed and feature fidelity.

    python bench/bench_encoder_student.py --encoder encoder_v2.pt --hubert hubert_a.pt \
        --held /work/fid-data/wav_held [--seconds 10] [--runs 3] [--threads 1]

Speed: one input of --seconds of speech-like audio (the first held-out file, looped),
best of --runs after a warm-up, at --threads; HuBERT (torch), the student (torch) and the
student in ONNX Runtime (exported here with the TorchScript exporter at opset 17, dynamic
length), all timed in this one process so their ratio holds on a shared machine.
FLOPs: torch's FlopCounterMode on 10 s of input (convs and matmuls, 2 per multiply-add).
Fidelity: every --held file whole, conditioned as RVC conditions input, through teacher and
student: the mean per-frame cosine similarity and mean |difference| of the features, and
the same for a constant prediction (the teacher's mean feature over the held files, an
optimistic baseline) to show what "similar" is worth here; then the cosine of the
deviations from that mean and the share of the variance explained (R^2), which a constant
cannot fake.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def best_time(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    from distill_rvc.encoder import count_cost, load_encoder
    from distill_rvc.encoder.data import find_audio
    from distill_rvc.features.audio import condition_audio, load_audio
    from distill_rvc.features.content import load_content_encoder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--hubert", required=True)
    ap.add_argument("--held", required=True, help="folder of held-out speech")
    ap.add_argument("--version", default="v2")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    student = load_encoder(args.encoder)
    teacher = load_content_encoder(args.hubert)
    files = find_audio(args.held, "--held")
    held = [condition_audio(load_audio(f, 16000)) for f in files]

    # fidelity, whole files
    cos_sum, l1_sum, frames, targets, preds = 0.0, 0.0, 0, [], []
    with torch.no_grad():
        for audio in held:
            want = teacher.extract(audio, args.version)
            got = student.extract(audio, args.version)
            cos = np.sum(got * want, -1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1))
            cos_sum += float(cos.sum())
            l1_sum += float(np.abs(got - want).mean(-1).sum())
            frames += want.shape[0]
            targets.append(want)
            preds.append(got)
    target, pred = np.concatenate(targets), np.concatenate(preds)
    mean = target.mean(0, keepdims=True)
    # what the constant part of the features hides: cosine of the deviations from the mean,
    # and the share of the features' variance the student explains (R^2)
    dt, dp = target - mean, pred - mean
    centred = float(np.mean(np.sum(dt * dp, -1) / (np.linalg.norm(dt, axis=-1) * np.linalg.norm(dp, axis=-1) + 1e-12)))
    r2 = 1.0 - float(((pred - target) ** 2).sum() / (dt ** 2).sum())
    base_cos = float(np.mean(np.sum(mean * target, -1) / (np.linalg.norm(mean) * np.linalg.norm(target, axis=-1))))
    base_l1 = float(np.abs(target - mean).mean())

    # cost
    s_cost = count_cost(student)
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        teacher(torch.zeros(1, 160000), args.version)
    t_flops = counter.get_total_flops() / 10
    t_params = sum(p.numel() for p in teacher.parameters())

    # speed, side by side
    n = int(args.seconds * 16000)
    clip = np.resize(held[0], n).astype(np.float32)
    x = torch.from_numpy(clip)[None]
    with torch.no_grad():
        t_teacher = best_time(lambda: teacher(x, args.version), args.runs)
        t_student = best_time(lambda: student(x), args.runs)
    t_onnx = None
    try:
        import onnxruntime as ort
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "student.onnx"
            torch.onnx.export(student, (x[:, :16000],), str(path), dynamo=False, opset_version=17,
                              input_names=["audio"], output_names=["features"],
                              dynamic_axes={"audio": {1: "samples"}, "features": {1: "frames"}})
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            got = sess.run(None, {"audio": x.numpy()})[0]
            onnx_err = float(np.abs(got - student(x).detach().numpy()).max())
            t_onnx = best_time(lambda: sess.run(None, {"audio": x.numpy()}), args.runs)
    except ImportError:
        pass

    print(f"held-out speech   {len(files)} files, {frames / 50:.1f} s, {frames} frames ({args.version})")
    print(f"feature cosine    student {cos_sum / frames:.4f}   constant mean feature {base_cos:.4f}")
    print(f"feature L1        student {l1_sum / frames:.4f}   constant mean feature {base_l1:.4f}")
    print(f"centred cosine    student {centred:.4f}   (deviations from the held-out mean feature; constant: 0)")
    print(f"variance explained R^2 {r2:.4f}   (constant mean feature: 0)")
    print(f"params            teacher {t_params / 1e6:.2f} M   student {s_cost.params / 1e6:.3f} M   "
          f"ratio {t_params / s_cost.params:.1f}x")
    print(f"GFLOP per s       teacher {t_flops / 1e9:.2f}   student {s_cost.gflops:.3f}   "
          f"ratio {t_flops / s_cost.flops_per_second:.1f}x")
    print(f"file              student {student.file_bytes / 1e6:.2f} MB")
    print(f"RTF ({args.threads} thread{'s' if args.threads > 1 else ''}, {args.seconds:g} s, best of {args.runs})")
    print(f"  teacher torch   {t_teacher / args.seconds:.4f}")
    print(f"  student torch   {t_student / args.seconds:.4f}   ({t_teacher / t_student:.1f}x faster)")
    if t_onnx is not None:
        print(f"  student ONNX RT {t_onnx / args.seconds:.4f}   ({t_teacher / t_onnx:.1f}x faster; "
              f"max |ONNX - torch| {onnx_err:.1e})")


if __name__ == "__main__":
    main()
