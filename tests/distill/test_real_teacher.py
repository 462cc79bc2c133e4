"""`teach --recipe 4gb` end to end on a real-size v2 40k teacher (random weights): slow, run with -m slow."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from distill_rvc import load_model, rvc_config
from distill_rvc.cli import cli
from tests.fixtures.rvc_files import write_inference


@pytest.mark.slow
def test_teach_4gb_on_a_real_size_teacher(tmp_path, example_data):
    teacher = write_inference(tmp_path / "big.pth", rvc_config("v2", 40000, True))
    out = tmp_path / "runs" / "real"
    result = CliRunner().invoke(cli, ["teach", "--teacher", str(teacher), "--recipe", "4gb", "--data",
                                      str(example_data.root), "--out", str(out), "--steps", "3", "--batch-size", "4",
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    assert "(distill-rvc model in RVC format)" in result.output
    assert "loads in   RVC, Applio, w-okada" in result.output
    student = load_model(out / "big_4gb.pth")  # the teacher's name first: RVC finds the voice's index
    assert student.config.hidden_channels == 72 and student.config.upsample_initial_channel == 224
    info = CliRunner().invoke(cli, ["inspect", str(out / "big_4gb.pth"), "--no-memory"])
    assert info.exit_code == 0 and "recipe     4gb" in info.output

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out), size_guidance={"audio": 0, "images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert tags["audio"] and tags["images"] and "loss/total" in tags["scalars"]
