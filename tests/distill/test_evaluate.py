"""evaluate.fidelity: the voice metrics the trainer logs, on items whose answer is known."""
import numpy as np
import torch

from distill_rvc.distill.evaluate import EvalItem, fidelity
from tests.fixtures.audio import speech_like

SR = 16000


def _item(teacher: np.ndarray, student: np.ndarray) -> EvalItem:
    empty = torch.zeros(1, 1)
    return EvalItem(torch.from_numpy(teacher), torch.from_numpy(student), empty, empty)


def test_a_student_that_is_the_teacher_scores_zero():
    x = speech_like(SR, 1.5, f0=150.0)
    f = fidelity([_item(x, x.copy())], SR)
    assert f["mcd_db"] == 0 and f["vuv_error"] == 0 and f["f0_gross_error"] == 0
    assert f["f0_rmse_cents"] == 0 and f["f0_rmse_fine_cents"] == 0
    assert "log_mel_l1" not in f  # the trainer logs its own (RVC's mel) as eval/mel_l1


def test_an_octave_up_is_a_gross_error_of_1200_cents():
    x, up = speech_like(SR, 1.5, f0=150.0), speech_like(SR, 1.5, f0=300.0)
    f = fidelity([_item(x, up)], SR)
    assert f["f0_gross_error"] > 0.9 and abs(f["f0_rmse_cents"] - 1200) < 60
    assert f["mcd_db"] > 1
