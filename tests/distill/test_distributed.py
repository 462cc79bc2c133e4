"""`teach` on several processes (distributed.py): torchrun's env, the shards, and a real
`torchrun --nproc-per-node 2 -m distill_rvc teach` on CPU (gloo) against one process."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from tests.fixtures import ROOT, TINY_TEACHER
from distill_rvc.distill.batches import Batches, split_eval
from distill_rvc.distill.distributed import World, joined, rank_micro, shard, world_from_env
from distill_rvc.distill.recipes import load_recipe
from distill_rvc.distill.teach import TeachSettings, teach
from distill_rvc.distill.train_state import checkpoints
from distill_rvc.errors import DistillRVCError


def test_a_single_process_never_starts_a_process_group():
    assert world_from_env({}) == World()
    assert world_from_env({"WORLD_SIZE": "1", "RANK": "0"}) == World()
    assert world_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}) == \
        World(rank=3, size=4, local_rank=1, local_size=2)
    with joined(World(), torch.device("cpu")) as group:
        assert group.is_main and group.any(True) and not group.any(False)
        assert group.on_main(lambda: 7) == 7
        assert not torch.distributed.is_initialized()
    for env, message in (({"WORLD_SIZE": "two"}, "must be integers"),
                         ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2, LOCAL_RANK=0, WORLD_SIZE=2: not a torchrun")):
        with pytest.raises(DistillRVCError, match=message):
            world_from_env(env)


def test_shards_split_the_global_batch_and_the_first_ranks_take_the_remainder():
    assert [shard(5, World(r, 2, r, 2)) for r in range(2)] == [range(0, 3), range(3, 5)]
    assert [len(shard(10, World(r, 4, r, 4))) for r in range(4)] == [3, 3, 2, 2]
    assert [shard(4, World(r, 2, r, 2)) for r in range(2)] == [range(0, 2), range(2, 4)]
    with pytest.raises(DistillRVCError, match="batch size 1 is smaller than the 2 processes"):
        shard(1, World(1, 2, 1, 2))
    assert rank_micro(8, 8, World(0, 2, 0, 2)) == 4  # the global micro-batch divided among the ranks
    assert rank_micro(2, 8, World(0, 4, 0, 4)) == 1
    assert rank_micro(8, 5, World(1, 2, 1, 2)) == 2  # never above the rank's share


def test_the_ranks_shards_together_are_the_batch_one_process_draws(example_data):
    cfg = load_recipe("tiny").replace(train=dict(batch_size=5, segment_frames=24, key_jitter=2.0)).train
    train_idx, _ = split_eval(example_data, 2, cfg.seed, cfg.segment_frames)
    batches = Batches(example_data, train_idx, cfg, 192, 400, True)
    whole = batches.draw(7)
    parts = [batches.draw(7, shard(5, World(r, 2, r, 2))) for r in range(2)]
    assert [len(p) for p in parts] == [3, 2]
    for name in ("phone", "pitch", "pitchf", "noise", "sid", "lengths", "audio"):
        assert torch.equal(torch.cat([getattr(p, name) for p in parts]), getattr(whole, name)), name
    assert not torch.equal(batches.draw(8).phone, whole.phone)


def _collectives(rank: int, port: int, results: str) -> None:
    """One of two gloo ranks: what Group does between them, written to results/<rank>.txt."""
    import json

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    found = {}
    with joined(World(rank, 2, rank, 2), torch.device("cpu"), threads=1) as group:
        found["flags"] = group.flags(rank == 1, False)
        a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
        a.grad = torch.full((3,), float(rank + 1))  # b has no gradient, on both ranks
        group.sum_gradients([a, b])
        found["summed"], found["b_grad"] = a.grad.tolist(), b.grad
        found["floats"] = group.broadcast_floats([rank + 0.5, None] if rank == 0 else [9.0, 9.0])

        def fail():
            raise DistillRVCError("disk full in OUT/checkpoints")
        try:
            group.on_main(fail)
        except DistillRVCError as e:
            found["error"] = str(e)
        found["after"] = group.any(True)  # the group still works after a failed write
    found["initialised_after"] = torch.distributed.is_initialized()
    Path(results, f"{rank}.txt").write_text(json.dumps(found))


def test_two_gloo_ranks_agree_sum_and_share_rank_0s_failure(tmp_path):
    import json
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_collectives, args=(port, str(tmp_path)), nprocs=2, start_method="spawn")
    r0, r1 = (json.loads((tmp_path / f"{r}.txt").read_text()) for r in (0, 1))
    assert r0["flags"] == r1["flags"] == [True, False]
    assert r0["summed"] == r1["summed"] == [3.0, 3.0, 3.0] and r0["b_grad"] is r1["b_grad"] is None
    assert r0["floats"] == r1["floats"] == [0.5, None]
    assert r0["error"] == "disk full in OUT/checkpoints"
    assert r1["error"] == "rank 0 failed: disk full in OUT/checkpoints"
    assert r0["after"] and r1["after"] and not r0["initialised_after"] and not r1["initialised_after"]


# ---------------------------------------------------------------------------- torchrun
# Records, on every rank, what the process does to files under PROBE_OUT (Python's audit
# events: opening for writing, renames, removals, new folders) in PROBE_DIR/writes_<RANK>.txt.
SITECUSTOMIZE = textwrap.dedent('''
    import os, sys
    _out, _dir, _busy = os.environ.get("PROBE_OUT"), os.environ.get("PROBE_DIR"), [False]
    _WRITES = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.move", "shutil.rmtree"}

    def _hook(event, args):
        if _busy[0] or not _out or not args:
            return
        if event == "open":
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        else:
            writing = event in _WRITES
        paths = [os.fsdecode(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
        if writing and any(os.path.abspath(p).startswith(_out) for p in paths):
            _busy[0] = True
            try:
                with open(os.path.join(_dir, "writes_" + os.environ.get("RANK", "single") + ".txt"), "a") as f:
                    f.write(event + " " + " ".join(paths) + "\\n")
            finally:
                _busy[0] = False

    if _out:
        sys.addaudithook(_hook)
''')


def _recipe_file(path: Path, **train) -> Path:
    """The tiny recipe with these [train] values, as a .toml the CLI reads."""
    text = (ROOT / "distill_rvc" / "recipes" / "tiny.toml").read_text()
    values = "".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}\n" for k, v in train.items())
    path.write_text(re.sub(r"\[train\]\n.*?\n\n", lambda _: f"[train]\n{values}\n", text, flags=re.S))
    return path


STEPS = 8
QUICK = dict(batch_size=4, segment_frames=24, steps=STEPS, lr=1e-3, warmup_steps=2, eval_items=2, eval_frames=60,
             checkpoint_every=1000, eval_every=1000, log_every=1, eval_fidelity="false", keep_checkpoints=20)
FAST = dict(progress=False, device="cpu", check_budget=False)


def test_torchrun_two_ranks_match_one_process_write_from_rank_0_and_resume_on_one(tmp_path, example_data):
    """`torchrun --nproc-per-node 2 -m distill_rvc teach` on CPU (gloo), stopped by SIGTERM after
    a few steps: its losses are one process's with the same global batch (4) and seed; only
    rank 0 wrote files or printed; the run resumed on ONE process continues from the saved step
    with one process's losses.

    Tolerance: the two ranks see the same micro-batches as one process with accumulation 2
    ([0, 1] and [2, 3]), so only the float order of the sums differs: measured 0 to 2e-6 on a
    loss of ~20 (at most 1e-7 relative) over the first steps; rtol 1e-5 leaves a 100x margin.
    It catches what breaks the equivalence: both ranks drawing rank 0's shard differ by 5e-2
    relative at step 1 (checked by breaking `shard`), and one process on batch 2 (a rank's
    share taken as the whole batch) by 2e-3 at step 1. (One process with micro-batch 4
    differs by 2e-4: the STFT's spectral convergence and the feature term are normalised
    over each micro-batch, as with any accumulation; so the micro-batches are kept alike.)
    """
    recipe = _recipe_file(tmp_path / "quick.toml", **QUICK)
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(SITECUSTOMIZE)
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(probe), str(ROOT)]), "PROBE_OUT": str(out),
           "PROBE_DIR": str(probe), "OMP_NUM_THREADS": "1"}
    logs = tmp_path / "rank-logs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
           "--log-dir", str(logs), "--redirects", "3", "-m", "distill_rvc", "teach", "--teacher", str(TINY_TEACHER),
           "--recipe", str(recipe), "--data", str(example_data.root), "--out", str(out), "--device", "cpu",
           "--checkpoint-every", "0s", "--no-budget-check", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not (out / "checkpoints" / "step_00000003.pt").exists() and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both ranks
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    k = int(checkpoints(out)[-1].stem.split("_")[1])
    assert 3 <= k < STEPS, err

    # rank 0 alone wrote (checkpoints, TensorBoard) and spoke; rank 1 wrote and said nothing
    written = (probe / "writes_0.txt").read_text()
    assert "checkpoints/step_00000003.pt" in written and "events.out.tfevents" in written
    assert not (probe / "writes_1.txt").exists(), (probe / "writes_1.txt").read_text()
    (rank0,), (rank1,) = (list(logs.rglob(f"attempt_0/{r}")) for r in (0, 1))
    assert "global batch 4 over 2 processes: 2 each, micro-batch 2" in (rank0 / "stderr.log").read_text()
    assert (rank1 / "stdout.log").read_text() == ""
    assert not re.search(r"^(INFO|WARNING)", (rank1 / "stderr.log").read_text(), flags=re.M)
    assert f"interrupted: stopped by SIGTERM after step {k} of {STEPS}" in (rank0 / "stderr.log").read_text()
    assert len(list(out.glob("events.out.tfevents.*"))) == 1 and not list(out.rglob("*.tmp"))

    # one process, the same global batch in the same micro-batches, the same seed
    one = teach(TINY_TEACHER, example_data.root, tmp_path / "one", TeachSettings(
        recipe=_recipe_file(tmp_path / "quick_acc.toml", **QUICK, accumulation=2), **FAST))
    reference = [h["total"] for h in one.train.history]
    assert _logged(out)[:k] == pytest.approx(reference[:k], rel=1e-5)
    halved = teach(TINY_TEACHER, example_data.root, tmp_path / "two", TeachSettings(
        recipe=recipe, batch_size=2, steps=1, **FAST))
    assert abs(halved.train.history[0]["total"] - reference[0]) > 20 * 1e-5 * reference[0]  # the tolerance tells

    # the 2-rank run resumed on one process continues from step k as if never stopped
    resumed = teach(TINY_TEACHER, example_data.root, out, TeachSettings(recipe=recipe, resume=True, **FAST))
    assert len(resumed.train.history) == STEPS - k and resumed.train.steps == STEPS
    assert [h["total"] for h in resumed.train.history] == pytest.approx(reference[k:], rel=1e-5)
    assert resumed.student_path.is_file()


def _logged(run: Path) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    return [e.value for e in sorted(events.Scalars("loss/total"), key=lambda e: e.step)]


@pytest.mark.slow
def test_a_write_failing_on_rank_0_stops_every_rank_with_one_line(tmp_path, example_data):
    """Rank 0 alone creates the run folder; when it cannot (--out under a file), rank 1 is told
    instead of waiting for it forever: both exit 2 with a one-line error and no traceback."""
    (tmp_path / "a-file").write_text("")
    logs = tmp_path / "rank-logs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
           "--log-dir", str(logs), "--redirects", "3", "-m", "distill_rvc", "teach", "--teacher", str(TINY_TEACHER),
           "--recipe", str(_recipe_file(tmp_path / "quick.toml", **QUICK)), "--data", str(example_data.root),
           "--out", str(tmp_path / "a-file" / "run"), "--device", "cpu", "--no-budget-check", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)  # a hang fails here
    assert done.returncode != 0
    (rank0,), (rank1,) = (list(logs.rglob(f"attempt_0/{r}")) for r in (0, 1))
    err0, err1 = (rank0 / "stderr.log").read_text(), (rank1 / "stderr.log").read_text()
    assert f"error: cannot create folder {tmp_path / 'a-file' / 'run'}" in err0
    assert "error: rank 0 failed: cannot create folder" in err1
    assert "Traceback" not in err0 + err1
    assert "exitcode  : 2" in done.stderr  # torchrun's summary: both ranks left with the CLI's exit code
