"""`teach-many`: a queue of voices killed and resumed, its failures, its VOICES.toml checks (distill_rvc/queue/)."""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from tests.fixtures import ROOT, TINY_TEACHER
from distill_rvc.cli import cli
from distill_rvc.distill.train_state import checkpoints
from distill_rvc.errors import DistillRVCError
from distill_rvc.queue import QueueStopped, TeachManySettings, read_voices, teach_many
from distill_rvc.queue import run as queue_run

# The shipped tiny recipe shrunk to cheap CPU steps (as distill_helpers.quick_recipe), as a file:
# teach-many takes recipes by name or path.
QUICK_TRAIN = """[train]
steps = 4
batch_size = 2
segment_frames = 24
lr = 1e-3
warmup_steps = 2
eval_items = 2
eval_frames = 60
eval_fidelity = false
log_every = 1
eval_every = 1000
checkpoint_every = 1000
"""


@pytest.fixture
def folder(tmp_path, example_data):
    """tmp/q/: quick.toml (a recipe), good.pth (the tiny teacher), broken.pth (truncated), and a
    data path relative to tmp/q/."""
    q = tmp_path / "q"
    q.mkdir()
    tiny = (ROOT / "distill_rvc" / "recipes" / "tiny.toml").read_text()
    (q / "quick.toml").write_text(re.sub(r"\[train\].*?(?=\[loss\])", QUICK_TRAIN, tiny, flags=re.S))
    shutil.copy(TINY_TEACHER, q / "good.pth")
    (q / "broken.pth").write_bytes(TINY_TEACHER.read_bytes()[:5000])
    return SimpleNamespace(path=q, data=os.path.relpath(example_data.root, q))  # data: relative to the toml


def _voices_toml(q: Path, *voices: str, defaults: str = 'recipe = "quick.toml"\ndevice = "cpu"\n') -> Path:
    path = q / "voices.toml"
    path.write_text(f"[defaults]\n{defaults}\n" + "\n".join(f"[[voice]]\n{v}\n" for v in voices))
    return path


def _voice(name: str, teacher: str, data: str, extra: str = "") -> str:
    return f'name = "{name}"\nteacher = "{teacher}"\ndata = "{data}"\n{extra}'


def _cli(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "distill_rvc", "teach-many", *args, "--quiet"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_while_training(proc: subprocess.Popen, run: Path, sig: int) -> tuple[str, str]:
    """Send `sig` once `run` (a voice's folder) has a checkpoint, i.e. while it trains."""
    try:
        while not checkpoints(run) and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        return proc.communicate(timeout=120)
    finally:
        proc.kill()


def _state(out: Path) -> dict:
    return json.loads((out / "queue.json").read_text())["voices"]


def test_a_killed_queue_resumes_where_it_stopped_and_reports_the_broken_voice(folder, tmp_path):
    """Done-when of issue 15, item 2: three tiny voices, the third broken; SIGTERM while the second
    trains; the rerun skips the first, continues the second from its checkpoint, reports the third."""
    toml = _voices_toml(folder.path, _voice("one", "good.pth", folder.data),
                        _voice("two", "good.pth", folder.data, "steps = 20\ncheckpoint_every = 1\n"),
                        _voice("three", "broken.pth", folder.data))
    out = tmp_path / "out"
    proc = _cli([str(toml), "--out", str(out)], cwd=tmp_path)
    _, err = _kill_while_training(proc, out / "two", signal.SIGTERM)
    assert proc.returncode == 143, err
    assert "interrupted: voice two (2/3): stopped by SIGTERM after step" in err and "run the same command to continue" in err, err
    assert "Traceback" not in err
    state = _state(out)
    assert [state[v]["status"] for v in ("one", "two", "three")] == ["done", "running", "pending"]
    first = Path(state["one"]["result"]["student"])
    first_mtime = first.stat().st_mtime_ns
    saved = int(checkpoints(out / "two")[-1].stem.split("_")[1])
    assert 1 <= saved < 20
    assert "| two | running |" in (out / "summary.md").read_text()  # the table is there after a stop too

    proc = _cli([str(toml), "--out", str(out)], cwd=tmp_path)
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err  # ran to the end, one voice failed
    assert "Traceback" not in err
    assert f"voice one (1/3): skipped, done: {first}" in err
    assert first.stat().st_mtime_ns == first_mtime  # not redone
    assert f"resuming {out / 'two'} at step {saved}" in err and "nothing to resume" not in err, err
    assert "voice three (3/3): failed: " in err and "broken.pth: not a readable PyTorch file" in err

    rows = {line.split()[0]: line for line in stdout.splitlines()[1:4]}
    assert list(rows) == ["one", "two", "three"], stdout
    assert re.search(r"^one +done +4/4 +\d\.\d{3} -> \d\.\d{3} .* one/good_quick\.pth$", rows["one"]), stdout
    assert re.search(r"^two +done +20/20 +\d\.\d{3} -> \d\.\d{3} .* two/good_quick\.pth$", rows["two"]), stdout
    assert re.search(r"^three +failed +0/4 .*broken\.pth: not a readable PyTorch file", rows["three"]), stdout
    assert "2 of 3 voices done, 1 failed" in stdout
    state = _state(out)
    assert state["two"]["result"]["steps"] == 20 and state["two"]["attempts"] == 2
    assert state["one"]["attempts"] == 1
    summary = json.loads((out / "summary.json").read_text())["voices"]
    assert [(v["voice"], v["status"]) for v in summary] == [("one", "done"), ("two", "done"), ("three", "failed")]
    assert "not a readable PyTorch file" in summary[2]["error"]
    assert summary[1]["mel_l1"] < summary[1]["mel_l1_init"]  # 20 steps bring the student closer


def test_sigkill_then_resume_and_a_deleted_student_is_written_again(folder, tmp_path, caplog):
    """SIGKILL leaves the voice `running` and a stale lock: the rerun takes the lock over and
    continues from the newest checkpoint. A done voice whose student is gone is written again."""
    toml = _voices_toml(folder.path, _voice("one", "good.pth", folder.data),
                        _voice("two", "good.pth", folder.data, "steps = 20\ncheckpoint_every = 1\n"))
    out = tmp_path / "out"
    proc = _cli([str(toml), "--out", str(out)], cwd=tmp_path)
    _kill_while_training(proc, out / "two", signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert _state(out)["two"]["status"] == "running" and (out / "queue.lock").exists()
    saved = int(checkpoints(out / "two")[-1].stem.split("_")[1])

    student = Path(_state(out)["one"]["result"]["student"])
    student.unlink()
    with caplog.at_level(logging.INFO):
        result = teach_many(toml, out, TeachManySettings(progress=False))
    assert [r.status for r in result.rows] == ["done", "done"] and result.rows[1].steps == 20
    assert f"voice one (1/2): its student {student} is missing: writing it again" in caplog.text
    assert student.is_file() and _state(out)["one"]["attempts"] == 2
    assert f"resuming {out / 'two'} at step {saved}" in caplog.text
    assert not (out / "queue.lock").exists()


def test_a_failing_voice_is_recorded_and_the_queue_goes_on(folder, tmp_path, monkeypatch, caplog):
    """Any exception inside teach fails that voice alone (with a traceback file for a bug);
    Ctrl-C stops the queue; failed voices stay failed unless retry_failed."""
    toml = _voices_toml(folder.path, *(_voice(n, "good.pth", folder.data) for n in ("bug", "user", "ctrl")))
    calls = []

    def fake_teach(teacher, data, out, settings):
        calls.append(out.name)
        assert not settings.resume and settings.steps is None and str(settings.recipe).endswith("quick.toml")
        if out.name == "bug":
            raise ValueError("boom\nsecond line")
        if out.name == "user":
            raise DistillRVCError("the loss became nan at step 3: lower [train] lr")
        raise KeyboardInterrupt

    monkeypatch.setattr(queue_run, "teach", fake_teach)
    out = tmp_path / "out"
    with pytest.raises(QueueStopped) as stopped:
        teach_many(toml, out, TeachManySettings(progress=False))
    assert stopped.value.exit_code == 130 and calls == ["bug", "user", "ctrl"]
    assert str(stopped.value) == "voice ctrl (3/3): stopped by SIGINT"
    state = _state(out)
    assert state["bug"]["error"] == f"ValueError: boom (traceback in {out / 'bug' / 'error.txt'})"
    assert "second line" in (out / "bug" / "error.txt").read_text()
    assert state["user"]["error"] == "the loss became nan at step 3: lower [train] lr"
    assert [state[v]["status"] for v in ("bug", "user", "ctrl")] == ["failed", "failed", "running"]

    calls.clear()
    with pytest.raises(QueueStopped), caplog.at_level(logging.INFO):
        teach_many(toml, out, TeachManySettings(progress=False))
    assert calls == ["ctrl"]  # failed voices are not retried by default
    assert "voice bug (1/3): skipped, failed before: ValueError: boom" in caplog.text
    calls.clear()
    with pytest.raises(QueueStopped):
        teach_many(toml, out, TeachManySettings(progress=False, retry_failed=True))
    assert calls == ["bug", "user", "ctrl"] and _state(out)["bug"]["attempts"] == 2


@pytest.mark.parametrize("voices, message", [
    (['teacher = "a.pth"\ndata = "d"\nstep = 3'], "voice #1: unknown key 'step' (known: name, teacher, data, recipe"),
    (['name = "x"\nteacher = "a.pth"\ndata = "d"\nsteps = "3"'], "voice 'x': `steps` must be a whole number"),
    (['name = "x"\nteacher = "a.pth"\ndata = "d"\nsteps = 0'], "voice 'x': `steps` must be at least 1, got 0"),
    (['name = "x"\ndata = "d"'], "voice 'x': missing `teacher`"),
    (['name = "x"\nteacher = "a.pth"\ndata = "d"\nrecipe = "3gb"'], "voice 'x': no recipe named '3gb'"),
    (['name = "x"\nteacher = "a.pth"\ndata = "d"\ndevice = "gpu"'], "voice 'x': --device 'gpu'"),
    (['name = "../x"\nteacher = "a.pth"\ndata = "d"'], "`name` '../x' cannot be a folder name"),
    (['teacher = "a.pth"\ndata = "d"', 'teacher = "b/a.pth"\ndata = "e"'], "two voices are named 'a'"),
    ([], "no voices: add one [[voice]] table per voice"),
])
def test_mistakes_in_the_voices_file_are_one_line_before_anything_runs(tmp_path, voices, message):
    toml = _voices_toml(tmp_path, *voices, defaults="")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["teach-many", str(toml), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {toml}: ") and message in result.output, result.output
    assert result.output.count("\n") == 1 and not out.exists()


def test_a_broken_toml_or_defaults_is_one_line(tmp_path):
    for text, message in (("[[voice]\n", "not valid TOML"),
                          ('[defaults]\nbatch = 2\n[[voice]]\nteacher = "a"\ndata = "d"\n',
                           "[defaults]: unknown key 'batch'"),
                          ('[voices]\nteacher = "a"\n', "unknown table or key 'voices'")):
        (tmp_path / "v.toml").write_text(text)
        result = CliRunner().invoke(cli, ["teach-many", str(tmp_path / "v.toml"), "--out", str(tmp_path / "o")])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "queue.json").write_text("{half")
    (tmp_path / "v.toml").write_text(f'[[voice]]\nteacher = "{TINY_TEACHER}"\ndata = "d"\n')
    result = CliRunner().invoke(cli, ["teach-many", str(tmp_path / "v.toml"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "queue.json: not a readable queue state" in result.output, result.output


def test_paths_are_relative_to_the_file_and_the_command_line_replaces_defaults(tmp_path, monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    toml = _voices_toml(sub, _voice("a", "t/a.pth", "../d", "batch_size = 3"),
                        'teacher = "/abs/b.pth"\ndata = "d"\nrecipe = "r/my.toml"',
                        defaults='recipe = "tiny"\nsteps = 9\nbatch_size = 5\n')
    (sub / "r").mkdir()
    shutil.copy(ROOT / "distill_rvc" / "recipes" / "tiny.toml", sub / "r" / "my.toml")
    monkeypatch.chdir(tmp_path)
    a, b = read_voices("sub/voices.toml", {"steps": 7})
    assert (a.teacher, a.data, b.teacher, b.data) == (sub / "t/a.pth", sub / "../d", Path("/abs/b.pth"), sub / "d")
    assert (a.name, a.settings.recipe, a.settings.steps, a.settings.batch_size) == ("a", "tiny", 7, 3)
    assert (b.name, b.settings.recipe, b.settings.batch_size, b.steps) == ("b", str(sub / "r/my.toml"), 5, 7)

    example = read_voices(ROOT / "examples" / "voices.toml")
    assert [(v.name, v.teacher, v.data, v.settings.key) for v in example] == [
        ("tiny", TINY_TEACHER, ROOT / "examples" / "data", None),
        ("tiny-low", TINY_TEACHER, ROOT / "examples" / "data", -2.0)]


def test_a_folder_of_teachers_and_datasets_and_the_lock(tmp_path):
    for name in ("bob", "ann"):
        shutil.copy(TINY_TEACHER, tmp_path / f"{name}.pth")
    voices = read_voices(tmp_path, {"recipe": "tiny", "steps": 3})
    assert [(v.name, v.data, v.steps) for v in voices] == [("ann", tmp_path / "ann", 3), ("bob", tmp_path / "bob", 3)]
    result = CliRunner().invoke(cli, ["teach-many", str(tmp_path / "ann"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2  # no such folder: click's own one-line refusal

    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "queue.lock").write_text(f"{os.getppid()}\n")  # a live process holds it
    with pytest.raises(DistillRVCError, match=f"another teach-many \\(pid {os.getppid()}\\) is running"):
        teach_many(tmp_path, tmp_path / "o", TeachManySettings(recipe="tiny"))


def test_missing_files_fail_their_voice_not_the_queue(folder, tmp_path):
    toml = _voices_toml(folder.path, _voice("nodata", "good.pth", "no-such-data"),
                        _voice("noteacher", "gone.pth", folder.data))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["teach-many", str(toml), "--out", str(out), "--quiet"])
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:3]}
    assert "not a prepared dataset (no manifest.json)" in rows["nodata"], result.output
    assert f"{folder.path / 'gone.pth'}: no such file" in rows["noteacher"], result.output
    assert "0 of 2 voices done, 2 failed" in result.output


def test_sigterm_outside_training_stops_the_queue(folder, tmp_path, monkeypatch):
    """SIGTERM while a voice loads (teach's own handler is not yet on) still stops the queue
    with 143, the voice left running for the rerun, and the summary written."""
    toml = _voices_toml(folder.path, _voice("one", "good.pth", folder.data), _voice("two", "good.pth", folder.data))

    def loading(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not stop the queue")

    monkeypatch.setattr(queue_run, "teach", loading)
    out = tmp_path / "out"
    with pytest.raises(QueueStopped) as stopped:
        teach_many(toml, out, TeachManySettings(progress=False))
    assert stopped.value.exit_code == 143 and str(stopped.value) == "voice one (1/2): stopped by SIGTERM"
    assert [v["status"] for v in _state(out).values()] == ["running", "pending"]
    assert "| one | running |" in (out / "summary.md").read_text()
    assert signal.getsignal(signal.SIGTERM) is not queue_run._sigterm_stops._stop  # handler put back
