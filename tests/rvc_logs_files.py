"""Writer of RVC experiment folders (`logs/<exp>/`) as RVC's preprocess, extraction and
training start leave them (rvc-format.md §7), with random but consistent contents.

    0_gt_wavs/<i>_<j>.wav        float32 WAV at the model's rate (scipy.io.wavfile, as RVC writes)
    1_16k_wavs/<i>_<j>.wav       float32 WAV at 16 kHz
    2a_f0/<i>_<j>.wav.npy        int64 coarse pitch, 2b-f0nsf/<i>_<j>.wav.npy float64 F0 (f0 only)
    3_feature256|768/<i>_<j>.npy float32 [T_h, C], T_h = (N_16k - 400) // 320 + 1
    filelist.txt                 shuffled `gt|feature|2a|2b|speaker` lines (`gt|feature|speaker`
                                 without f0), absolute paths, plus the two `logs/mute` lines
    config.json

`prefix` fakes the machine the experiment was made on (e.g. a Colab or Windows path), so
the paths in filelist.txt need not exist here.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly


def _coarse(f0: np.ndarray) -> np.ndarray:  # RVC's extract_f0_print formula, f0_bin 256
    mel = 1127 * np.log(1 + f0 / 700)
    lo, hi = 1127 * np.log(1 + 50 / 700), 1127 * np.log(1 + 1100 / 700)
    mel[mel > 0] = (mel[mel > 0] - lo) * 254 / (hi - lo) + 1
    mel[mel <= 1] = 1
    mel[mel > 255] = 255
    return np.rint(mel).astype(int)


def write_rvc_experiment(logs: Path, exp: str = "myvoice", *, version: str = "v2", sr: int = 40000, f0: bool = True,
                         files: int = 2, windows: int = 2, seconds: float = 0.8, prefix: str | None = None,
                         windows_paths: bool = False, seed: int = 0) -> Path:
    """Write logs/<exp> and return its path. Segment (i, j) is `seconds * (1 + 0.25 j)` long."""
    rng = np.random.default_rng(seed)
    root = Path(logs) / exp
    dim = 256 if version == "v1" else 768
    dirs = {"gt": "0_gt_wavs", "16k": "1_16k_wavs", "feat": f"3_feature{dim}", "2a": "2a_f0", "2b": "2b-f0nsf"}
    for key, name in dirs.items():
        if f0 or key not in ("2a", "2b"):
            (root / name).mkdir(parents=True, exist_ok=True)
    base = prefix or str(Path(logs).resolve().parent)  # RVC's now_dir; logs/ lives in it
    sep = "\\\\" if windows_paths else "/"  # RVC doubles Windows backslashes in filelist.txt

    def far(folder: str, name: str) -> str:
        return sep.join([base, "logs", exp, folder]) + "/" + name

    lines = []
    for i in range(files):
        for j in range(windows):
            name = f"{i}_{j}"
            n = int(sr * seconds * (1 + 0.25 * j))
            hz = 120.0 + 40 * i + 10 * j
            t = np.arange(n) / sr
            audio = (0.4 * np.sin(2 * np.pi * hz * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)
            wavfile.write(root / dirs["gt"] / f"{name}.wav", sr, audio)
            audio16 = resample_poly(audio, 16000, sr).astype(np.float32)
            wavfile.write(root / dirs["16k"] / f"{name}.wav", 16000, audio16)
            t_h = (len(audio16) - 400) // 320 + 1
            np.save(root / dirs["feat"] / f"{name}.npy", rng.standard_normal((t_h, dim)).astype(np.float32),
                    allow_pickle=False)
            if f0:
                f0_hz = np.full(len(audio16) // 160 + 1, hz, dtype=np.float64)
                f0_hz[:3] = 0.0  # onset frames unvoiced
                np.save(root / dirs["2b"] / f"{name}.wav.npy", f0_hz, allow_pickle=False)
                np.save(root / dirs["2a"] / f"{name}.wav.npy", _coarse(f0_hz), allow_pickle=False)
                lines.append("|".join([far(dirs["gt"], f"{name}.wav"), far(dirs["feat"], f"{name}.npy"),
                                       far(dirs["2a"], f"{name}.wav.npy"), far(dirs["2b"], f"{name}.wav.npy"), "0"]))
            else:
                lines.append("|".join([far(dirs["gt"], f"{name}.wav"), far(dirs["feat"], f"{name}.npy"), "0"]))
    random.Random(seed).shuffle(lines)
    mute = f"{base}/logs/mute"
    for _ in range(2):
        if f0:
            lines.append(f"{mute}/0_gt_wavs/mute{sr // 1000}k.wav|{mute}/3_feature{dim}/mute.npy|"
                         f"{mute}/2a_f0/mute.wav.npy|{mute}/2b-f0nsf/mute.wav.npy|0")
        else:
            lines.append(f"{mute}/0_gt_wavs/mute{sr // 1000}k.wav|{mute}/3_feature{dim}/mute.npy|0")
    (root / "filelist.txt").write_text("\n".join(lines), encoding="utf-8")  # RVC writes no final newline
    (root / "config.json").write_text(json.dumps({"data": {"sampling_rate": sr}, "model": {}}), encoding="utf-8")
    return root
