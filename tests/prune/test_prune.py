"""Pruning: the pruned network against a channel-masked copy of the original, parameter counts,
weight norm, Taylor importance, budgets, recovery distillation, the file, ONNX and the CLI.

The reference for every pruning test is independent of the pruning code: the kept channels
are found by matching the pruned weights against the original's, the removed ones are zeroed
in a copy of the original (their every producer's output), and the two networks must agree
to 1e-5. A wrong dependency mapping (a consumer keeping other channels than its producer)
breaks that agreement; a shape check would not see it.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from distill_rvc import DistillRVCError, load_model, save_model
from distill_rvc.checkpoint import FORMAT_PROJECT, FORMAT_STUDENT_RVC, read_checkpoint
from distill_rvc.cli import cli
from distill_rvc.distill.recipes import load_recipe
from distill_rvc.distill.student import build_student
from distill_rvc.inspect_model import inspect_model
from distill_rvc.models.arch import normalize, not_rvc_because, widths_of
from distill_rvc.models.weight_norm import apply_weight_norm
from distill_rvc.prune import PruneSettings, format_prune, prune, prune_synthesizer
from distill_rvc.prune.widths import (kept_width, params_of, planned_widths, ratio_for_target, rvc_conv_pre,
                                      scaled_widths)
from tests.fixtures import TINY_TEACHER
from tests.fixtures.distill_helpers import quick_recipe


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # tiny models; see tests/distill/conftest.py


@pytest.fixture(scope="module")
def example_data(tmp_path_factory):
    """8 speech-like utterances of 1.2 s (examples/make_example_dataset.py), v2 features, with F0."""
    from examples.make_example_dataset import make_example_dataset

    from distill_rvc.data.dataset import Dataset

    return Dataset(make_example_dataset(tmp_path_factory.mktemp("data") / "cache", utterances=8, seconds=1.2))


@pytest.fixture(scope="module")
def teacher():
    return load_model(TINY_TEACHER)


@pytest.fixture(scope="module")
def student(teacher):
    """The `tiny` recipe's student of the tiny teacher (ResBlock2, narrower enc_p), initialised
    from the teacher's weights as `teach` does."""
    torch.manual_seed(0)
    return build_student(teacher, load_recipe("tiny").student).eval()


@pytest.fixture(scope="module")
def nof0_teacher():
    """A v1 model without pitch: plain HiFi-GAN decoder (no NSF source, no noise convs)."""
    from examples.make_tiny_teacher import TINY_CONFIG, make_tiny_teacher

    return make_tiny_teacher(seed=7, config=TINY_CONFIG.replace(f0=False, version="v1", phone_dim=256))


def _inputs(config, t: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    args = (torch.randn(1, t, config.phone_dim, generator=g), torch.tensor([t]),
            torch.randint(1, 256, (1, t), generator=g), 90 + 200 * torch.rand(1, t, generator=g), torch.tensor([0]))
    return args, torch.randn(1, config.inter_channels, t, generator=g)


def _outputs(model, seed: int = 0):
    args, noise = _inputs(model.config, seed=seed)
    with torch.no_grad():
        out = model(*args, noise=noise[:, :model.config.inter_channels], source_noise=False)
    return {"audio": out.audio, "z": out.z, "m_p": out.m_p, "logs_p": out.logs_p}


# ----------------------------------------------------------------- the masked reference
def _match(original: torch.Tensor, pruned: torch.Tensor) -> list[int]:
    """Which original row (dim 0) each pruned row is: increasing indices, rows equal."""
    o, p = original.detach().flatten(1).float(), pruned.detach().flatten(1).float()
    idx = torch.cdist(p, o).argmin(1)
    torch.testing.assert_close(p, o[idx], rtol=1e-5, atol=1e-7)
    assert idx.tolist() == sorted(set(idx.tolist())), "kept channels must keep their order"
    return idx.tolist()


def kept_channels(original, pruned) -> dict:
    """Kept channels of every pruned width, read off the weights, walking the decoder forward."""
    o, p = original.dec, pruned.dec
    kept = {"pre": _match(o.conv_pre.weight, p.conv_pre.weight)}
    prev, nk = kept["pre"], o.num_kernels
    for i, (ou, pu) in enumerate(zip(o.ups, p.ups)):
        # ConvTranspose1d weight [in, out, k]: select the kept inputs, then match the outputs.
        stage = _match(ou.weight[prev].transpose(0, 1), pu.weight.transpose(0, 1))
        kept[("ups", i)] = stage
        for b in range(i * nk, (i + 1) * nk):
            inner = zip(getattr(o.resblocks[b], "convs1", []), getattr(p.resblocks[b], "convs1", []))
            for j, (oc, pc) in enumerate(inner):  # ResBlock1: each convs1.j has its own inner width
                kept[("res", b, j)] = _match(oc.weight[:, stage], pc.weight)
        prev = stage
    for i, (of, pf) in enumerate(zip(original.enc_p.encoder.ffn_layers, pruned.enc_p.encoder.ffn_layers)):
        kept[("ffn", i)] = _match(of.conv_1.weight, pf.conv_1.weight)
    return kept


@torch.no_grad()
def masked_copy(original, kept: dict):
    """The original with every removed channel zeroed at each layer that produces it."""
    m = copy.deepcopy(original)

    def zero(conv, keep, dim=0):
        drop = [c for c in range(conv.weight.shape[dim]) if c not in set(keep)]
        conv.weight.index_fill_(dim, torch.tensor(drop, dtype=torch.long), 0.0)
        if conv.bias is not None:
            conv.bias[drop] = 0.0

    d, nk = m.dec, m.dec.num_kernels
    zero(d.conv_pre, kept["pre"])
    zero(d.cond, kept["pre"])
    for i, up in enumerate(d.ups):
        stage = kept[("ups", i)]
        zero(up, stage, dim=1)
        if d.nsf:
            zero(d.noise_convs[i], stage)
        for b in range(i * nk, (i + 1) * nk):
            block = d.resblocks[b]
            for j, conv in enumerate(getattr(block, "convs2", getattr(block, "convs", None))):
                zero(conv, stage)  # the residual adds into the stage's channels
            for j, conv in enumerate(getattr(block, "convs1", [])):
                zero(conv, kept[("res", b, j)])
    for i, ffn in enumerate(m.enc_p.encoder.ffn_layers):
        zero(ffn.conv_1, kept[("ffn", i)])
    return m


def assert_matches_masked_original(original, pruned):
    reference = _outputs(masked_copy(original, kept_channels(original, pruned)))
    got = _outputs(pruned)
    for name in reference:
        torch.testing.assert_close(got[name], reference[name], rtol=0, atol=1e-5, msg=name)


# ------------------------------------------------------------------------------- widths
def test_kept_width_rounds_to_hardware_multiples():
    assert kept_width(256, 0.3, 8) == 176  # 179.2 -> nearest multiple of 8
    assert kept_width(512, 0.3, 8) == 360  # 358.4
    assert kept_width(256, 0.5, 8) == 128
    assert kept_width(12, 0.5, 8) == 8
    assert kept_width(8, 0.5, 8) == 8  # at most round_to channels: kept whole
    assert kept_width(16, 0.99, 8) == 8  # never below round_to
    assert kept_width(16, 0.99) == 1
    assert kept_width(2, 0.3) == 1
    assert kept_width(10, 0.0, 8) == 10
    widths = widths_of(load_model(TINY_TEACHER))
    only_ffn = scaled_widths(widths, 0.5, 1, parts=("ffn",))
    assert only_ffn["dec"] == widths["dec"] and only_ffn["enc_p"]["ffn"] == [16, 16]


# ----------------------------------------------------------------- pruning, exactness
@pytest.mark.parametrize("which", ["teacher", "student", "nof0_teacher"])
@pytest.mark.parametrize("ratio", [0.3, 0.5])
def test_pruned_model_runs_and_equals_the_channel_masked_original(request, which, ratio):
    original = request.getfixturevalue(which)
    model = copy.deepcopy(original)
    target = scaled_widths(widths_of(model), ratio, 1)
    assert prune_synthesizer(model, target) == "magnitude"
    assert widths_of(model) == target
    assert_matches_masked_original(original, model)
    # The test can fail: pruning does change the output.
    assert (_outputs(model)["audio"] - _outputs(original)["audio"]).abs().max() > 1e-3

    # What stays: the latent (conv_pre's input, the flow), enc_p's hidden width, conv_post's output.
    assert model.dec.conv_pre.in_channels == original.config.inter_channels
    assert model.dec.conv_post.out_channels == 1
    assert model.enc_p.encoder.ffn_layers[0].conv_2.out_channels == original.config.hidden_channels
    for part in ("flow", "emb_g"):
        assert sum(p.numel() for p in getattr(model, part).parameters()) == \
            sum(p.numel() for p in getattr(original, part).parameters())

    # Layers pruned on both sides (ups, resblocks) keep about (1 - p)^2 of their weights; the
    # tiny widths (16/8/4/2) round, so "about" is +-0.06 here.
    def both_sides(m):
        return sum(p.numel() for n, p in m.dec.named_parameters() if n.startswith(("ups.", "resblocks.")))
    assert abs(both_sides(model) / both_sides(original) - (1 - ratio) ** 2) < 0.06
    # FFN weights are pruned on one side (the filter width): about 1 - p of them stay.
    ffn = sum(p.numel() for n, p in model.enc_p.named_parameters() if ".ffn_layers." in n)
    ffn0 = sum(p.numel() for n, p in original.enc_p.named_parameters() if ".ffn_layers." in n)
    assert abs(ffn / ffn0 - (1 - ratio)) < 0.06


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")
@pytest.mark.parametrize("style", ["parametrizations", "legacy"])
def test_weight_norm_is_folded_for_pruning_and_restored(teacher, style):
    def normed():
        # Built afresh each time: deep copies of a parametrized module share its generated class,
        # and removing the parametrization from one copy (as pruning does) breaks the others.
        model = copy.deepcopy(teacher)
        if style == "parametrizations":
            return apply_weight_norm(model)
        for name, module in model.dec.named_modules():
            convs = (torch.nn.Conv1d, torch.nn.ConvTranspose1d)
            if name.startswith(("ups.", "resblocks.")) and isinstance(module, convs):
                torch.nn.utils.weight_norm(module)
        return model

    before = _outputs(normed())["audio"]
    # Ratio 0 is a no-op on the output: the fold and the re-application are exact.
    noop = normed()
    prune_synthesizer(noop, widths_of(teacher))
    torch.testing.assert_close(_outputs(noop)["audio"], before, rtol=0, atol=1e-6)

    # At 0.5 it prunes exactly what the folded model would, and keeps the norm for training.
    pruned, folded = normed(), copy.deepcopy(teacher)
    target = scaled_widths(widths_of(teacher), 0.5, 1)
    prune_synthesizer(pruned, target)
    prune_synthesizer(folded, target)
    torch.testing.assert_close(_outputs(pruned)["audio"], _outputs(folded)["audio"], rtol=0, atol=1e-5)
    ups0 = pruned.dec.ups[0]
    if style == "parametrizations":
        assert torch.nn.utils.parametrize.is_parametrized(ups0, "weight")
        assert ups0.parametrizations.weight.original1.shape == (16, 8, 16)
    else:
        assert ups0.weight_v.shape == (16, 8, 16) and ups0.weight_g.shape == (16, 1, 1)


def test_taylor_importance_ranks_by_the_loss_gradient(student):
    """Give the lowest-magnitude FFN channels a large loss gradient: Taylor keeps exactly them,
    magnitude drops them."""
    conv = student.enc_p.encoder.ffn_layers[0].conv_1
    norms = conv.weight.detach().flatten(1).norm(dim=1)
    keep = 4
    weakest = sorted(torch.argsort(norms)[:keep].tolist())

    def gradients(model):
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        c = model.enc_p.encoder.ffn_layers[0].conv_1
        c.weight.grad[weakest] = 1e3 * torch.sign(c.weight[weakest].detach())

    target = scaled_widths(widths_of(student), 0.5, 1, parts=("ffn",))
    assert target["enc_p"]["ffn"] == [keep]
    taylor, magnitude = copy.deepcopy(student), copy.deepcopy(student)
    assert prune_synthesizer(taylor, target, "taylor", gradients) == "taylor"
    prune_synthesizer(magnitude, target, "magnitude")
    assert kept_channels(student, taylor)[("ffn", 0)] == weakest
    assert not set(kept_channels(student, magnitude)[("ffn", 0)]) & set(weakest)
    assert_matches_masked_original(student, taylor)

    # A model at its teacher has no loss gradient: Taylor falls back to magnitude.
    fallback = copy.deepcopy(student)
    assert prune_synthesizer(fallback, target, "taylor", lambda m: None) == "magnitude"
    assert kept_channels(student, fallback) == kept_channels(student, magnitude)


# --------------------------------------------------------------------------- budgets
@pytest.mark.parametrize("mode", ["rvc", "free"])
def test_target_params_and_macs_pick_the_smallest_sufficient_ratio(teacher, mode):
    from distill_rvc.memory import macs_per_second

    cfg, widths = teacher.config, widths_of(teacher)

    def plan(ratio):
        return planned_widths(widths, ratio, 1, mode=mode)

    full = params_of(cfg, widths)
    goal = int(full * 0.8)
    ratio = ratio_for_target(cfg, widths, params=goal, mode=mode)
    assert params_of(cfg, plan(ratio)) <= goal < params_of(cfg, plan(ratio - 2e-4))

    macs = macs_per_second(cfg)
    ratio = ratio_for_target(cfg, widths, macs=macs / 2, mode=mode)
    assert macs_per_second(cfg, arch=plan(ratio)) <= macs / 2
    assert macs_per_second(cfg, arch=plan(ratio - 2e-4)) > macs / 2
    if mode == "rvc":  # the budget's widths are ones RVC can build
        assert normalize(cfg, plan(ratio))[1] is None

    assert ratio_for_target(cfg, widths, params=full, mode=mode) == 0.0
    with pytest.raises(DistillRVCError, match="pruning cannot reach 1,000 parameters"):
        ratio_for_target(cfg, widths, params=1000, mode=mode)  # the flow alone is larger


# ------------------------------------------------------------------- the whole command
@pytest.fixture(scope="module")
def student_file(tmp_path_factory, student):
    path = tmp_path_factory.mktemp("student") / "student.pth"
    save_model(student, path)
    return path


def test_recovery_distillation_brings_the_pruned_student_back_toward_the_teacher(tmp_path, student_file,
                                                                                 example_data):
    settings = PruneSettings(ratio=0.5, round_to=1, recover_steps=10, recipe=quick_recipe("tiny"), latency_seconds=0.5,
                             latency_runs=1)
    report = prune(student_file, tmp_path / "pruned.pth", settings, teacher=TINY_TEACHER, data=example_data,
                   run_dir=tmp_path / "run", report=tmp_path / "report.json", progress=False)
    step = report.schedule[0]
    assert step["mel_l1_recovered"] < 0.8 * step["mel_l1_pruned"], step
    assert report.fidelity["unpruned"] < step["mel_l1_pruned"]  # pruning moved it away first
    assert report.fidelity["final"] == step["mel_l1_recovered"]
    assert report.after["params"]["total"] < report.before["params"]["total"]
    assert report.after["macs_per_s"] < report.before["macs_per_s"]
    assert report.after["file_bytes"] < report.before["file_bytes"]
    assert report.before["latency_s"] > 0 and report.after["latency_s"] > 0
    assert json.loads((tmp_path / "report.json").read_text())["schedule"][0] == step
    assert (tmp_path / "run" / "step_1" / "checkpoints").is_dir()  # the teach trainer ran there
    loaded = load_model(tmp_path / "pruned.pth")
    assert widths_of(loaded) == report.widths["after"]
    assert loaded.checkpoint.metadata["prune"]["recover_steps"] == 10


def test_iterative_schedule_reaches_the_ratio_in_steps(tmp_path, example_data):
    settings = PruneSettings(ratio=0.5, steps=2, round_to=1, recover_steps=2, importance="taylor",
                             recipe=quick_recipe("tiny"), latency_seconds=0)
    report = prune(TINY_TEACHER, tmp_path / "p.pth", settings, data=example_data, run_dir=tmp_path / "run",
                   progress=False)
    assert [s["ratio"] for s in report.schedule] == [0.25, 0.5]
    assert report.schedule[0]["params"] > report.schedule[1]["params"]
    # Pruning the teacher against itself: no gradient at first, then Taylor after recovery.
    assert [s["importance"] for s in report.schedule] == ["magnitude", "taylor"]
    assert report.fidelity["unpruned"] == 0.0
    assert report.widths["after"] == scaled_widths(report.widths["before"], 0.5, 1)


@pytest.fixture(scope="module")
def pruned_file(tmp_path_factory, teacher):
    """The tiny teacher pruned at 0.3 with free widths: non-uniform, so the project format."""
    folder = tmp_path_factory.mktemp("pruned")
    report = prune(TINY_TEACHER, folder / "pruned.pth",
                   PruneSettings(ratio=0.3, round_to=1, widths_mode="free", latency_seconds=0, half=False),
                   progress=False)
    assert report.written == str(folder / "pruned.drvc.pt")  # the project format is not named *.pth
    return Path(report.written), report


def test_pruned_file_round_trips_and_inspect_reads_it(pruned_file, teacher):
    path, report = pruned_file
    assert report.format == FORMAT_PROJECT
    ckpt = read_checkpoint(path)
    assert ckpt.arch == report.widths["after"] and ckpt.format == FORMAT_PROJECT
    model = load_model(path)
    reference = copy.deepcopy(teacher)
    prune_synthesizer(reference, report.widths["after"])  # the same (deterministic) pruning, in memory
    for name, value in _outputs(reference).items():
        torch.testing.assert_close(_outputs(model)[name], value, rtol=0, atol=1e-6, msg=name)
    info = inspect_model(path, memory=False)
    assert info["arch"] == report.widths["after"] and info["params"]["dec"] < 98_802
    result = CliRunner().invoke(cli, ["inspect", str(path), "--no-memory"])
    assert result.exit_code == 0, result.output
    assert "pruned     dec conv_pre 22, stages 11/6/3/1; enc_p ffn 22/22" in result.output


def test_free_widths_say_at_the_end_that_no_runtime_loads_the_file(pruned_file):
    path, report = pruned_file
    assert report.written == str(path) and report.widths_mode == "free"
    assert report.not_rvc_because == "decoder stages 11/6/3/1 do not halve from conv_pre 22 (RVC builds 11/5/2/1)"
    last = format_prune(report).splitlines()[-1]
    assert last.startswith("format     this model is in distill-rvc's project format: RVC, Applio and w-okada "
                           "cannot load it (decoder stages 11/6/3/1")
    assert f"written as {path}" in last and "--widths rvc" in last


def test_ratio_zero_without_recovery_writes_the_same_model(tmp_path, teacher):
    report = prune(TINY_TEACHER, tmp_path / "same.pth", PruneSettings(ratio=0.0, latency_seconds=0, half=False),
                   progress=False)
    assert report.widths["after"] == report.widths["before"]
    for name, value in _outputs(teacher).items():
        torch.testing.assert_close(_outputs(load_model(tmp_path / "same.pth"))[name], value, rtol=0, atol=1e-6)


def test_uniform_pruning_stays_in_rvc_format(tmp_path):
    report = prune(TINY_TEACHER, tmp_path / "p.pth", PruneSettings(ratio=0.5, round_to=1, latency_seconds=0),
                   progress=False)
    assert report.format == FORMAT_STUDENT_RVC  # 32 -> 16: stages 8/4/2/1 still halve
    raw = torch.load(tmp_path / "p.pth", weights_only=True)
    assert raw["config"][13] == 16 and raw["config"][4] == 16 and "arch" not in raw["distill_rvc"]


def test_pruned_model_exports_to_onnx_with_parity(tmp_path, pruned_file):
    from distill_rvc.onnx.export import ExportSettings, export_onnx

    result = export_onnx(pruned_file[0], tmp_path / "pruned.onnx", ExportSettings(lengths_s=(1.0,), timing_runs=0))
    assert result.card["parity"]["passed"] and result.card["parity"]["max_rel"] <= 1e-4
    assert result.card["params"]["dec"] == pruned_file[1].after["params"]["dec"]


def test_cli_prune_prints_the_report(tmp_path):
    out = tmp_path / "p.pth"
    result = CliRunner().invoke(cli, ["prune", "--model", str(TINY_TEACHER), "--out", str(out), "--ratio", "0.3",
                                      "--round-to", "1", "--parts", "dec", "--latency-seconds", "0", "--quiet",
                                      "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    for line in ("params ", "GMAC/s", "file ", "fidelity   not measured (no --data)", "widths     dec conv_pre 22"):
        assert line in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["widths"]["after"]["enc_p"] == report["widths"]["before"]["enc_p"]  # --parts dec
    assert report["widths_mode"] == "rvc" and "project format" not in result.output
    assert "widths     dec conv_pre 22, stages 11/5/2/1" in result.output  # halving (floored, as RVC does)
    assert report["written"] == str(out) and load_model(out).dec.conv_pre.out_channels == 22

    free = CliRunner().invoke(cli, ["prune", "--model", str(TINY_TEACHER), "--out", str(tmp_path / "f.pth"),
                                    "--ratio", "0.3", "--round-to", "1", "--widths", "free", "--parts", "dec",
                                    "--latency-seconds", "0", "--quiet"])
    assert free.exit_code == 0, free.output
    assert "free widths" in free.output
    assert free.output.rstrip().splitlines()[-1].startswith(
        "format     this model is in distill-rvc's project format: RVC, Applio and w-okada cannot load it")


@pytest.mark.parametrize("args, message", [
    (["--ratio", "0.3", "--target-params", "1M"], "give either --ratio or a target"),
    (["--recover-steps", "5"], "need data: pass --data"),
    (["--target-params", "1k"], "pruning cannot reach 1,000 parameters"),
    (["--out", "x.onnx"], "--out must name a .pth file"),
    (["--device", "gpu0"], "--device 'gpu0': expected"),  # refused even when nothing would run there
])
def test_cli_refuses_bad_options_in_one_line(tmp_path, args, message):
    argv = ["prune", "--model", str(TINY_TEACHER), "--out", str(tmp_path / "p.pth"), "--latency-seconds", "0",
            "--quiet", *args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_sigterm_during_recovery_exits_143(tmp_path, monkeypatch):
    """A stop signal in recovery's training loop (which saves a checkpoint first) leaves with the
    shell's code for the signal, as `teach` does: 143 for SIGTERM, not a generic 130."""
    import signal

    import distill_rvc.cli as cli_module
    from distill_rvc.distill.train_state import Interrupted

    def stopped(*args, **kwargs):
        raise Interrupted(signal.SIGTERM, 3, 10, tmp_path / "step3.pt")
    monkeypatch.setattr(cli_module, "run_prune", stopped)
    result = CliRunner().invoke(cli, ["prune", "--model", str(TINY_TEACHER), "--out", str(tmp_path / "p.pth"),
                                      "--quiet"])
    assert result.exit_code == 143, result.output
    assert "interrupted: stopped by SIGTERM after step 3 of 10" in result.output


@pytest.mark.parametrize("settings, message", [
    (PruneSettings(ratio=1.0), "--ratio must be in [0, 1)"),
    (PruneSettings(target_params=1, target_macs=1.0), "give one target: --target-params or --target-macs"),
    (PruneSettings(steps=0), "--steps must be at least 1"),
    (PruneSettings(batch_size=0), "--batch-size must be at least 1"),
    (PruneSettings(importance="random"), "unknown importance 'random' (expected magnitude or taylor)"),
    (PruneSettings(parts=("flow",)), "parts to prune must be among dec, ffn"),
    (PruneSettings(widths_mode="even"), "--widths must be rvc or free, not 'even'"),
])
def test_settings_are_refused_before_any_file_is_read(tmp_path, settings, message):
    with pytest.raises(DistillRVCError) as raised:
        settings.check()
    assert str(raised.value).startswith(message)
    with pytest.raises(DistillRVCError) as raised:  # the model file does not exist: never opened
        prune(tmp_path / "missing.pth", tmp_path / "p.pth", settings, progress=False)
    assert str(raised.value).startswith(message)
    assert PruneSettings().target is None and PruneSettings(target_macs=2e9).target == {"macs_per_s": 2e9}


# -------------------------------------------------------------- RVC-buildable widths
def _uniform(pre: int, stages: int = 4, kernels: int = 3) -> dict:
    ups = [pre // 2 ** (i + 1) for i in range(stages)]
    return {"conv_pre": pre, "ups": ups, "resblocks": [[ups[k // kernels]] * 3 for k in range(stages * kernels)]}


@pytest.mark.parametrize("pre, ratio, round_to, want", [
    (224, 0.5, 8, 112),  # the 4gb student: 56/28/14/7
    (224, 0.3, 8, 160),  # 156.8 -> 160 (multiple of 32): 80/40/20/10
    (512, 0.3, 8, 352),  # 358.4 -> 352 (multiple of 32): 176/88/44/22
    (512, 0.5, 8, 256),  # on the coarsest grid (128): every stage a multiple of 8
    (160, 0.5, 8, 80),   # the 2gb student: 40/20/10/5
    (224, 0.3, 1, 157),  # round_to 1: the nearest width, halvings floored as RVC does (78/39/19/9)
    (32, 0.3, 8, 16),    # the tiny teacher: 8/4/2/1
    (32, 0.0, 8, 32),
])
def test_rvc_decoder_width_rule(pre, ratio, round_to, want):
    assert rvc_conv_pre(_uniform(pre), ratio, round_to) == want


def test_rvc_widths_halve_never_grow_and_give_one_ffn_width():
    base = {"dec": _uniform(224), "enc_p": {"ffn": [288] * 3}}
    plan = planned_widths(base, 0.5, 8)
    assert plan["dec"] == _uniform(112) and plan["enc_p"]["ffn"] == [144] * 3
    # A model already pruned per layer (stage 3 is 10 wide, one inner width 20): the decoder
    # width is capped so that no layer would have to grow, and the result halves again.
    free = {"dec": copy.deepcopy(_uniform(224)), "enc_p": {"ffn": [288, 200, 288]}}
    free["dec"]["ups"][3], free["dec"]["resblocks"][7][1] = 10, 20
    plan = planned_widths(free, 0.05, 8)
    assert plan["dec"] == _uniform(160) and plan["enc_p"]["ffn"] == [192] * 3
    assert not_rvc_because(TINY_CONFIG_128, {"dec": plan["dec"], "enc_p": plan["enc_p"]}) is None
    # Nothing fits when a stage is already 0-wide in RVC's terms: per-layer widths instead.
    blocks = [[w] * 3 for w in (4,) * 3 + (2,) * 3 + (1,) * 6]
    narrow = {"dec": {"conv_pre": 8, "ups": [4, 2, 1, 1], "resblocks": blocks}, "enc_p": {"ffn": [32]}}
    assert rvc_conv_pre(narrow["dec"], 0.5, 8) is None
    assert planned_widths(narrow, 0.5, 1)["dec"] == scaled_widths(narrow, 0.5, 1)["dec"]
    with pytest.raises(DistillRVCError, match="unknown widths mode"):
        planned_widths(base, 0.5, 8, mode="even")


TINY_CONFIG_128 = None  # set below (the tiny teacher's shape with a 128-wide decoder)


def _wide_config():
    from examples.make_tiny_teacher import TINY_CONFIG

    return TINY_CONFIG.replace(upsample_initial_channel=128, filter_channels=64)


TINY_CONFIG_128 = _wide_config()
VOICE_METADATA = {"embedder_model": "japanese-hubert-base", "vocoder": "HiFi-GAN", "speakers_id": 1,
                  "recipe": "4gb", "teacher_sha256": "ab" * 32}


@pytest.fixture(scope="module")
def wide_file(tmp_path_factory):
    """A model of the tiny teacher's shape with a 128-wide decoder (stages 64/32/16/8): wide
    enough for the default round_to 8, with a student's voice metadata."""
    from examples.make_tiny_teacher import make_tiny_teacher

    path = tmp_path_factory.mktemp("wide") / "voice.pth"
    save_model(make_tiny_teacher(seed=3, config=TINY_CONFIG_128), path, metadata=VOICE_METADATA)
    return path


def _rvc_style_audio(path):
    """Build the file as RVC's loader does (class from the 18-item config, emb_g rows as config[-3],
    strict=False) and run it; returns (missing keys, unexpected keys, audio)."""
    from distill_rvc.config import SynthConfig
    from distill_rvc.models import Synthesizer
    from distill_rvc.models.weight_norm import fold_state_dict

    cpt = torch.load(path, weights_only=True)
    config = list(cpt["config"])
    config[-3] = cpt["weight"]["emb_g.weight"].shape[0]
    model = Synthesizer(SynthConfig.from_rvc_list(config, version=cpt["version"], f0=bool(cpt["f0"]))).eval()
    weights = {k: v.float() for k, v in fold_state_dict(cpt["weight"]).items()}
    result = model.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("enc_q.")]
    args, noise = _inputs(model.config)
    with torch.no_grad():
        audio = model.infer(*args, noise=noise, source_noise=False)
    return missing, result.unexpected_keys, audio


def test_default_prune_writes_a_file_rvc_builds(tmp_path, wide_file):
    out = tmp_path / "pruned.pth"
    report = prune(wide_file, out, PruneSettings(ratio=0.5, latency_seconds=0), progress=False)  # round_to 8, rvc
    assert report.widths_mode == "rvc" and report.round_to == 8
    assert report.widths["after"]["dec"] == _uniform(64) and report.widths["after"]["enc_p"]["ffn"] == [32, 32]
    assert report.format == FORMAT_STUDENT_RVC and report.not_rvc_because is None and report.written == str(out)
    assert "project format" not in format_prune(report)
    missing, unexpected, audio = _rvc_style_audio(out)
    assert missing == [] and unexpected == []
    ours = load_model(out)
    args, noise = _inputs(ours.config)
    with torch.no_grad():
        expected = ours.infer(*args, noise=noise, source_noise=False)
    assert expected.abs().max() > 1e-3  # not silence
    torch.testing.assert_close(audio, expected, rtol=0, atol=1e-4)
    # The voice's metadata travels; prune's own settings are added.
    meta = ours.checkpoint.metadata
    assert {k: meta.get(k) for k in VOICE_METADATA} == VOICE_METADATA
    assert meta["prune"]["widths"] == "rvc" and meta["prune"]["round_to"] == 8


def test_free_widths_at_round_to_8_are_the_project_format(tmp_path, wide_file):
    report = prune(wide_file, tmp_path / "free.pth", PruneSettings(ratio=0.5, widths_mode="free", latency_seconds=0),
                   progress=False)
    assert report.widths["after"]["dec"]["ups"] == [32, 16, 8, 8]  # 8 stays whole: no halving
    assert report.format == FORMAT_PROJECT
    assert report.written == str(tmp_path / "free.drvc.pt") and not (tmp_path / "free.pth").exists()
    assert "config" not in torch.load(report.written, weights_only=True)
    assert format_prune(report).splitlines()[-1].startswith(
        "format     this model is in distill-rvc's project format: RVC, Applio and w-okada cannot load it "
        "(decoder stages 32/16/8/8 do not halve from conv_pre 64 (RVC builds 32/16/8/4))")
    assert load_model(report.written).checkpoint.metadata["embedder_model"] == "japanese-hubert-base"


def test_an_applio_teachers_voice_metadata_travels_to_the_pruned_file(tmp_path):
    from examples.make_tiny_teacher import TINY_CONFIG
    from tests.fixtures.rvc_files import write_applio

    source = write_applio(tmp_path / "applio.pth", TINY_CONFIG)
    report = prune(source, tmp_path / "p.pth", PruneSettings(ratio=0.5, latency_seconds=0), progress=False)
    assert report.format == FORMAT_STUDENT_RVC
    meta = load_model(tmp_path / "p.pth").checkpoint.metadata
    assert {k: meta.get(k) for k in ("embedder_model", "speakers_id", "vocoder", "model_name", "author")} == \
        {"embedder_model": "contentvec", "speakers_id": 1, "vocoder": "HiFi-GAN", "model_name": "someone",
         "author": "someone"}
    assert meta["info"] == "distill-rvc pruned (0.50) from applio.pth"
