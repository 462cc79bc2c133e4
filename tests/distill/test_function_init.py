"""The function-preserving init (function_init.py + refit.py) on a small *trained* teacher.

A random teacher spreads its function over every channel, so weight magnitude picks channels
about as well as anything (issue 13: magnitude init 0.40 log-mel L1 on a random v2 teacher,
4.14 on a trained one). Here a tiny teacher twice the bundled one's width (so the student's
decoder is really pruned) is trained for 30 steps on the synthetic example speech, which
concentrates its function the way training does; both inits are then compared with it at
step 0 on utterances neither saw.
"""
from __future__ import annotations

import pytest
import torch

from distill_rvc.data.dataset import Dataset
from distill_rvc.distill import function_init as fi
from distill_rvc.distill.batches import eval_items
from distill_rvc.distill.fidelity import HeldOut
from distill_rvc.distill.recipes import StudentSpec
from distill_rvc.distill.spectral import MelSpectrogram
from distill_rvc.distill.student import build_student

SPEC = StudentSpec(hidden_channels="0.5x", filter_channels="0.5x", gin_channels="0.5x",
                   upsample_initial_channel="0.5x")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(a tiny teacher trained on synthetic speech, its training cache, a held-out cache)."""
    from examples.make_example_dataset import make_example_dataset
    from examples.make_tiny_teacher import TINY_CONFIG, make_tiny_teacher

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("function_init")
    data = Dataset(make_example_dataset(root / "train", utterances=8, seconds=1.2, seed=0))
    held = Dataset(make_example_dataset(root / "held", utterances=4, seconds=1.2, seed=1))
    config = TINY_CONFIG.replace(hidden_channels=32, filter_channels=64, upsample_initial_channel=64)
    model = make_tiny_teacher(config=config).train()
    mel = MelSpectrogram.for_model(config)
    items = eval_items(data, list(range(len(data))), 120, True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.8, 0.99))
    g = torch.Generator().manual_seed(0)
    frames, hop, losses = 48, config.hop_length, []
    for step in range(30):  # RVC's generator loss without the KL: mel L1 against the real audio
        k = step % len(items)
        it, audio = items[k], data[k].audio
        s = int(torch.randint(0, it.phone.shape[1] - frames + 1, (1,), generator=g))
        crop = slice(s, s + frames)
        out = model(it.phone[:, crop], torch.tensor([frames]), it.pitch[:, crop], it.pitchf[:, crop],
                    torch.zeros(1, dtype=torch.long), source_noise=False).audio[:, 0]
        loss = torch.mean(torch.abs(mel(out) - mel(audio[None, s * hop:(s + frames) * hop])))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses  # it learned: a trained teacher, not a random one
    return model.eval().requires_grad_(False), data, held


def test_function_init_beats_magnitude_init_on_a_trained_teacher(trained):
    teacher, data, held_data = trained
    held = HeldOut(teacher, held_data, items=4, frames=100)
    torch.manual_seed(0)
    magnitude = build_student(teacher, SPEC).eval()
    assert magnitude.config.upsample_initial_channel < teacher.config.upsample_initial_channel
    function = build_student(teacher, SPEC, init=False).eval()
    # The chain the shared teacher measured best, with ridge strengths for this scale: the shared
    # teacher's (1e-3, 1e-2) over-shrink layers this narrow (measured here: 1.17, worse than the
    # magnitude init; 1e-5/1e-4: 0.45; 1e-7/1e-6: 0.40).
    fi.function_init(function, teacher, fi.calibration_crops(data, n_items=8, frames=64), lam=1e-5, enc_lam=1e-4)
    old = held.measure(magnitude, full=False)["log_mel_l1"]
    new = held.measure(function, full=False)["log_mel_l1"]
    assert new < 0.6 * old, (new, old)  # measured: 0.45 against 1.07
