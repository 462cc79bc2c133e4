"""Training batches: a pure function of (seed, step), pitch shifts by RVC's rule, a stable held-out split."""
from __future__ import annotations

import numpy as np
import torch

from distill_rvc.distill.batches import Batches, micro_batches, split_eval
from distill_rvc.distill.recipes import TrainConfig
from distill_rvc.features import coarse_pitch


def _batches(data, **train):
    cfg = TrainConfig(**{"batch_size": 4, "segment_frames": 24, **train})
    train_idx, _ = split_eval(data, 2, cfg.seed, cfg.segment_frames)
    return Batches(data, train_idx, cfg, 192, 400, True)


def test_a_step_always_draws_the_same_batch(example_data):
    a, b = _batches(example_data), _batches(example_data)
    first, again, other = a.draw(7), b.draw(7), a.draw(8)
    for name in ("phone", "pitch", "pitchf", "noise", "audio"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert not torch.equal(first.phone, other.phone)
    assert first.phone.shape == (4, 24, 768) and first.noise.shape == (4, 192, 24)
    assert first.audio.shape == (4, 1, 24 * 400)
    parts = micro_batches(first, 3)
    assert [len(p) for p in parts] == [3, 1] and torch.equal(torch.cat([p.phone for p in parts]), first.phone)


def test_key_shifts_f0_like_rvc_transpose(example_data):
    plain, up = _batches(example_data).draw(3), _batches(example_data, key=12.0).draw(3)
    assert torch.allclose(up.pitchf, 2 * plain.pitchf)  # +12 semitones = one octave
    assert np.array_equal(up.pitch.numpy(), coarse_pitch(up.pitchf.numpy()))
    assert (up.pitch[plain.pitchf == 0] == 1).all()  # unvoiced stays unvoiced
    jitter = _batches(example_data, key_jitter=2.0).draw(3)
    ratio = jitter.pitchf[plain.pitchf > 0] / plain.pitchf[plain.pitchf > 0]
    assert ((ratio > 2 ** (-2 / 12) - 1e-4) & (ratio < 2 ** (2 / 12) + 1e-4)).all() and ratio.std() > 0


def test_mean_path_steps_have_no_prior_noise(example_data):
    cfg = TrainConfig(batch_size=2, segment_frames=24)
    train_idx, _ = split_eval(example_data, 2, cfg.seed, 24)
    always = Batches(example_data, train_idx, cfg, 192, 400, True, mean_path_fraction=1.0)
    assert all(always.draw(s).noise.abs().sum() == 0 for s in range(1, 4))


def test_held_out_split(example_data):
    train, held = split_eval(example_data, 2, 1234, 24)
    assert len(held) == 2 and not set(held) & set(train) and len(train) == len(example_data) - 2
    assert split_eval(example_data, 2, 1234, 24) == (train, held)
