"""The distillation commands from the shell side: output, --help, one-line errors with exit code 2."""
from __future__ import annotations

from click.testing import CliRunner

from tests.fixtures import TINY_TEACHER
from distill_rvc.cli import cli


def test_recipes_lists_every_recipe_against_a_v2_40k_teacher():
    result = CliRunner().invoke(cli, ["recipes"])
    assert result.exit_code == 0, result.output
    assert "teacher: 27,514,690 params, 46.93 GMAC per second of audio" in result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[2:] if line and not line.startswith("*")}
    assert set(rows) == {"cpu", "2gb", "4gb", "6gb", "tiny"}
    assert "RVC" in rows["tiny"] and "2 GB" in rows["tiny"]


def test_plan_prints_the_breakdown():
    result = CliRunner().invoke(cli, ["plan", "--teacher", str(TINY_TEACHER), "--recipe", "tiny"])
    assert result.exit_code == 0, result.output
    for label in ("student weights", "teacher weights (frozen)", "gradients", "optimizer state (AdamW)",
                  "activations (held for backward)", "+ CUDA context + cuDNN (estimate)", "= planned peak"):
        assert label in result.output, label
    assert "budget 2048 MiB: fits" in result.output


def test_teach_errors_are_one_line(tmp_path):
    runner = CliRunner()
    for args, message in (
        (["--recipe", "3gb", "--data", str(tmp_path)], "error: no recipe named '3gb'"),
        (["--recipe", "tiny", "--data", str(tmp_path)], "not a prepared dataset"),
        (["--recipe", "tiny", "--data", str(tmp_path), "--checkpoint-every", "10d"],
         "--checkpoint-every '10d': give a number of steps (e.g. 500) or a time with its unit"),
    ):
        result = runner.invoke(cli, ["teach", "--teacher", str(TINY_TEACHER), "--out", str(tmp_path / "o"), *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    help_text = runner.invoke(cli, ["teach", "--help"]).output
    for option in ("--teacher", "--recipe", "--data", "--out", "--steps", "--batch-size", "--key", "--resume",
                   "--checkpoint-every", "10m", "90s", "SIGTERM",
                   "--device", "--no-budget-check", "--quiet"):
        assert option in help_text


def test_teach_refuses_a_damaged_cache_before_step_1(tmp_path, example_data):
    import shutil

    runner = CliRunner()
    for damage, message in (
        (lambda seg: (seg / "3_0.phone.npy").unlink(), "content features file 3_0.phone.npy is missing"),
        (lambda seg: (seg / "3_0.audio.npy").write_bytes((seg / "3_0.audio.npy").read_bytes()[:500]),
         "audio file 3_0.audio.npy is truncated"),
    ):
        data = tmp_path / f"data{len(message)}"
        shutil.copytree(example_data.root, data)
        damage(data / "segments")
        out = tmp_path / f"out{len(message)}"
        result = runner.invoke(cli, ["teach", "--teacher", str(TINY_TEACHER), "--recipe", "tiny", "--data", str(data),
                                     "--out", str(out), "--steps", "2", "--device", "cpu", "--quiet"])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert f"segment 3_0 (from " in result.output and message in result.output, result.output
        assert "distill-rvc prepare" in result.output
        assert not out.exists() or not any(out.rglob("*"))  # refused before step 1: nothing written


def test_teach_says_what_it_counts_and_quotes_the_logdir(tmp_path, example_data):
    out = tmp_path / "my runs" / "demo"
    result = CliRunner().invoke(cli, ["teach", "--teacher", str(TINY_TEACHER), "--recipe", "tiny", "--data",
                                      str(example_data.root), "--out", str(out), "--steps", "2", "--batch-size", "2",
                                      "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "weight norm folded: `inspect` counts a file's stored g and v" in result.output
    assert f"tensorboard --logdir '{tmp_path / 'my runs'}'" in result.output  # pastes into a shell as it is
    shown = CliRunner().invoke(cli, ["inspect", str(TINY_TEACHER), "--no-memory"]).output
    assert "as stored: weight norm's g and v both counted" in shown
