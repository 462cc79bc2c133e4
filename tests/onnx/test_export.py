"""ONNX export: the files a client loads, checked with onnxruntime against the issue's interface
lists and against torch on inputs built here.

Exports take ~15 s each on 2 cores, so the five files (tiny f0 teacher: wokada fp32 via the CLI,
wokada fp16, rvc at opset 18; a tiny v1 no-f0 student with a feature projection: wokada, rvc)
are made once per module and shared.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper

from distill_rvc import DistillRVCError, load_model, rvc_config
from distill_rvc.cli import cli
from distill_rvc.features import coarse_pitch
from distill_rvc.onnx.export import ExportResult, ExportSettings, export_onnx, to_opset_17
from distill_rvc.onnx.runtime import deterministic_variant
from tests.fixtures import ROOT, TINY_TEACHER
from examples.make_tiny_teacher import TINY_CONFIG, make_tiny_teacher

# A v1 no-f0 student: 256-d features projected to 32 inside enc_p, and few layers (a
# smaller graph exports faster).
NOF0_CONFIG = TINY_CONFIG.replace(f0=False, version="v1", phone_dim=256, phone_proj_dim=32, n_layers=1, n_flows=2,
                                  flow_wn_layers=2, resblock="2", resblock_kernel_sizes=(3,),
                                  resblock_dilation_sizes=((1, 3),))

CASES = {
    "wokada-f0": dict(model="f0", interface="wokada"),  # through the CLI, opset 17
    "wokada-f0-fp16": dict(model="f0", interface="wokada", fp16=True, timing_runs=0),
    "rvc-f0": dict(model="f0", interface="rvc", opset=18, timing_runs=0),
    "wokada-nof0": dict(model="nof0", interface="wokada", timing_runs=0),
    # refused for users (RVC's OnnxRVC cannot run it); compare's timing path makes such files
    "rvc-nof0": dict(model="nof0", interface="rvc", timing_runs=0, allow_no_f0_rvc=True),
}

# The interfaces as issue 5 lists them: name -> (dtype, rank).
WOKADA = {"feats": ("tensor(float)", 3), "p_len": ("tensor(int64)", 1), "pitch": ("tensor(int64)", 2),
          "pitchf": ("tensor(float)", 2), "sid": ("tensor(int64)", 1)}
RVC = {"phone": ("tensor(float)", 3), "phone_lengths": ("tensor(int64)", 1), "pitch": ("tensor(int64)", 2),
       "pitchf": ("tensor(float)", 2), "ds": ("tensor(int64)", 1), "rnd": ("tensor(float)", 3)}


@pytest.fixture(scope="module")
def models():
    return {"f0": load_model(TINY_TEACHER), "nof0": make_tiny_teacher(seed=7, config=NOF0_CONFIG)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, models):
    """case name -> (onnx path, card dict), exported on first use."""
    folder = tmp_path_factory.mktemp("export")
    done = {}

    def get(case: str):
        if case not in done:
            opts = dict(CASES[case])
            which = opts.pop("model")
            out = folder / f"{case}.onnx"
            if case == "wokada-f0":
                result = CliRunner().invoke(cli, ["export", str(TINY_TEACHER), "--out", str(out), "--timing-runs", "1"])
                assert result.exit_code == 0, result.output
                assert "parity" in result.output and "max_rel" in result.output
            else:
                opts.setdefault("timing_runs", 1)
                export_onnx(TINY_TEACHER if which == "f0" else models[which], out, ExportSettings(**opts))
            done[case] = out, json.loads(out.with_suffix(".json").read_text())
        return done[case]

    return get


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("case", CASES)
def test_inputs_and_outputs_are_exactly_the_interface(exported, case):
    path, _ = exported(case)
    spec = dict(WOKADA if CASES[case]["interface"] == "wokada" else RVC)
    if CASES[case]["model"] == "nof0":
        del spec["pitch"], spec["pitchf"]
    if CASES[case].get("fp16"):
        spec["feats"] = ("tensor(float16)", 3)
    sess = _session(path)
    got = {i.name: (i.type, len(i.shape)) for i in sess.get_inputs()}
    assert list(got) == list(spec)  # names and order
    assert got == spec
    (audio,) = sess.get_outputs()
    assert audio.name == "audio"
    assert len(audio.shape) == (1 if CASES[case]["interface"] == "wokada" else 3)
    assert audio.type == "tensor(float)"  # float32 in fp16 files too: w-okada's int16 conversion needs it
    # Batch 1, full-width features (a student's projection is inside), time axis dynamic.
    width = 768 if CASES[case]["model"] == "f0" else 256
    features = sess.get_inputs()[0]
    assert features.shape == [1, "T", width]
    if "rnd" in got:
        assert sess.get_inputs()[-1].shape == [1, 192, "T"]


@pytest.mark.parametrize("case", ["wokada-f0", "wokada-nof0"])
def test_metadata_json_is_what_the_wokada_client_reads(exported, case):
    path, card = exported(case)
    meta = json.loads(_session(path).get_modelmeta().custom_metadata_map["metadata"])  # as _setInfoByONNX does
    v2 = CASES[case]["model"] == "f0"
    assert meta == {
        "application": "VC_CLIENT", "version": "2.1",
        "modelType": "pyTorchRVCv2" if v2 else "pyTorchRVCNono",
        "samplingRate": 40000, "f0": v2, "embChannels": 768 if v2 else 256, "embedder": "hubert_base",
        "embOutputLayer": 12 if v2 else 9, "useFinalProj": not v2,
    }
    assert card["metadata_props"]["metadata"] == meta


@pytest.mark.parametrize("case", CASES)
def test_only_wokada_files_carry_the_wokada_metadata(exported, case):
    """w-okada takes any file with a `metadata` entry as a slot; an rvc-interface file would
    then fail at its first inference. Ours (`distill_rvc`) is in every file."""
    path, card = exported(case)
    props = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    wokada = CASES[case]["interface"] == "wokada"
    assert set(props) == ({"metadata", "distill_rvc"} if wokada else {"distill_rvc"})
    ours = props["distill_rvc"]
    assert (ours["interface"], ours["sample_rate"], ours["hop_length"], ours["f0"]) == \
        (CASES[case]["interface"], 40000, 400, CASES[case]["model"] == "f0")
    assert card["metadata_props"] == props
    if not wokada:
        assert any("not the w-okada client" in n for n in card["notes"])


def _reference_inputs(config, seconds: float, seed: int):
    """Inputs built independently of onnx/parity.py: a rising glide with an unvoiced start."""
    t = int(seconds * 100)
    g = torch.Generator().manual_seed(seed)
    phone = torch.randn(1, t, config.phone_dim, generator=g)
    f0 = np.linspace(90.0, 500.0, t)
    f0[:25] = 0.0
    noise = torch.randn(1, config.inter_channels, t, generator=g)
    return phone, torch.tensor([t]), torch.from_numpy(coarse_pitch(f0))[None], torch.tensor(f0, dtype=torch.float32)[None], noise


@pytest.mark.parametrize("case", CASES)
def test_parity_with_torch_at_1_and_10_seconds(exported, models, case):
    path, card = exported(case)
    opts = CASES[case]
    model = models[opts["model"]]
    f0 = model.config.f0
    tolerance = 1e-2 if opts.get("fp16") else 1e-4
    half = np.float16 if opts.get("fp16") else np.float32
    graph = deterministic_variant(onnx.load(str(path)), model.config.inter_channels)
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    for seconds in (1, 10):
        phone, lengths, pitch, pitchf, noise = _reference_inputs(model.config, seconds, seed=seconds)
        phone = torch.from_numpy(phone.numpy().astype(half).astype(np.float32))  # what an fp16 graph sees
        noise = torch.from_numpy(noise.numpy().astype(half).astype(np.float32))
        ref = model.infer(phone, lengths, pitch if f0 else None, pitchf if f0 else None, torch.tensor([0]),
                          noise=noise, source_noise=False)
        if opts["interface"] == "wokada":
            feed = {"feats": phone.numpy().astype(half), "p_len": lengths.numpy(), "sid": np.array([0]),
                    "rnd": noise.numpy().astype(half)}
            ref = ref[0, 0].clamp(-1, 1)
        else:
            feed = {"phone": phone.numpy(), "phone_lengths": lengths.numpy(), "ds": np.array([0]),
                    "rnd": noise.numpy() * np.float32(0.66666)}
        if f0:
            feed.update(pitch=pitch.numpy(), pitchf=pitchf.numpy())
        out = sess.run(None, feed)[0].astype(np.float64)
        ref = ref.double().numpy()
        assert out.shape == ref.shape
        max_rel = np.abs(out - ref).max() / np.abs(ref).max()
        assert max_rel <= tolerance, f"{seconds} s: max_rel {max_rel:.2e}"
    parity = card["parity"]
    assert parity["lengths_s"] == [1, 10] and parity["passed"]
    assert 0 <= parity["max_abs"] <= parity["max_rel"] <= tolerance  # |audio| <= 1, so abs <= rel


def test_fp32_parity_is_far_inside_the_tolerance(exported):
    # fp32 graphs follow torch to float32 rounding; the float64 phase sum keeps that at 10 s.
    for case in ("wokada-f0", "rvc-f0", "wokada-nof0"):
        assert exported(case)[1]["parity"]["max_rel"] < 1e-5


def test_shipped_wokada_graph_draws_its_noise_and_clips(exported, models):
    path, _ = exported("wokada-f0")
    sess = _session(path)
    t = 60
    phone, lengths, pitch, pitchf, _ = _reference_inputs(models["f0"].config, 0.6, seed=3)
    feed = {"feats": phone.numpy(), "p_len": lengths.numpy(), "pitch": pitch.numpy(),
            "pitchf": pitchf.numpy(), "sid": np.array([0])}
    a, b = sess.run(None, feed)[0], sess.run(None, feed)[0]
    assert a.shape == (t * 400,)
    assert not np.array_equal(a, b)  # prior and NSF noise are drawn in the graph
    assert np.abs(a).max() <= 1.0
    assert sum(n.op_type == "RandomNormalLike" for n in onnx.load(str(path)).graph.node) == 2


def test_shipped_noise_is_torchs_noise(exported, models):
    """The in-graph noise paths (0.66666 x N(0, 1) prior, NSF noise at torch's amplitudes):
    the graph's own RandomNormalLike nodes draw N(0, 1), and fed torch's draws they match torch."""
    path, _ = exported("wokada-f0")
    shipped = onnx.load(str(path))
    for node in shipped.graph.node:
        if node.op_type == "RandomNormalLike":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            assert attrs.get("mean", 0.0) == 0.0 and attrs.get("scale", 1.0) == 1.0
    model = models["f0"]
    phone, lengths, pitch, pitchf, noise = _reference_inputs(model.config, 2.0, seed=5)
    torch.manual_seed(123)
    ref = model.infer(phone, lengths, pitch, pitchf, torch.tensor([0]), noise=noise)[0, 0].clamp(-1, 1)
    torch.manual_seed(123)
    nsf = torch.randn(1, lengths.item() * 400, 1)  # the draw SineGen made inside infer
    variant = deterministic_variant(shipped, model.config.inter_channels, nsf_noise_input=True)
    sess = ort.InferenceSession(variant.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"feats": phone.numpy(), "p_len": lengths.numpy(), "pitch": pitch.numpy(),
                          "pitchf": pitchf.numpy(), "sid": np.array([0]), "rnd": noise.numpy(),
                          "nsf_noise": nsf.numpy()})[0]
    assert np.abs(out - ref.numpy()).max() / np.abs(ref.numpy()).max() < 1e-4


@pytest.mark.parametrize("frames", [1, 37, 250])
def test_time_axis_is_dynamic(exported, frames):
    path, _ = exported("rvc-f0")
    sess = _session(path)
    feed = {"phone": np.zeros((1, frames, 768), np.float32), "phone_lengths": np.array([frames]),
            "pitch": np.full((1, frames), 60), "pitchf": np.full((1, frames), 220, np.float32),
            "ds": np.array([0]), "rnd": np.zeros((1, 192, frames), np.float32)}
    assert sess.run(None, feed)[0].shape == (1, 1, frames * 400)


def test_model_card_describes_the_file(exported, models):
    path, card = exported("wokada-f0-fp16")
    assert card["latency"] is None  # timing_runs=0
    data = path.read_bytes()
    model = onnx.load(str(path))
    assert card["file_bytes"] == len(data) and card["sha256"] == hashlib.sha256(data).hexdigest()
    assert card["opset"] == 17 == next(o.version for o in model.opset_import if o.domain == "")
    assert card["ir_version"] == model.ir_version == 8  # loadable by older onnxruntime
    assert (card["interface"], card["precision"]) == ("wokada", "fp16")
    assert card["params"]["total"] == sum(p.numel() for p in models["f0"].parameters())
    lat = exported("wokada-f0")[1]["latency"]  # the CLI's export timed one run
    assert lat["seconds_of_audio"] == 10 and lat["runs"] == 1 and lat["threads"] >= 1
    assert lat["onnxruntime_s"] > 0 and lat["torch_s"] > 0
    assert lat["ratio"] == pytest.approx(lat["onnxruntime_s"] / lat["torch_s"])
    assert card["source"]["sha256"] == hashlib.sha256(TINY_TEACHER.read_bytes()).hexdigest()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert "CUDAExecutionProvider" in card["parity"]["cuda"]["skipped"]


def test_fp16_keeps_the_sine_phase_in_float32(exported):
    path, _ = exported("wokada-f0-fp16")
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.value_info, *model.graph.input]}
    sines = [n for n in model.graph.node if n.op_type == "Sin"]
    assert sines and all(types[n.input[0]] == TensorProto.FLOAT for n in sines)
    # the running phase sum is float64 (exact whatever the summation order)
    assert any(n.op_type == "CumSum" and types[n.input[0]] == TensorProto.DOUBLE for n in model.graph.node)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(types[n.input[0]] == TensorProto.FLOAT16 for n in convs)


def test_fp16_halves_the_file_and_opset_18_is_kept(exported):
    fp32, fp16 = exported("wokada-f0")[1], exported("wokada-f0-fp16")[1]
    assert 0.45 < fp16["file_bytes"] / fp32["file_bytes"] < 0.6
    path, card = exported("rvc-f0")
    assert card["opset"] == 18 == next(o.version for o in onnx.load(str(path)).opset_import if o.domain == "")


def test_no_trace_records_or_local_paths_in_the_file(exported):
    path, _ = exported("wokada-nof0")
    model = onnx.load(str(path))
    assert not any(n.metadata_props or n.doc_string for n in model.graph.node)
    assert str(ROOT).encode() not in path.read_bytes()
    onnx.checker.check_model(model, full_check=True)


def test_cli_refuses_bad_requests_with_one_line(tmp_path):
    runner = CliRunner()
    cases = [
        (["export", str(TINY_TEACHER), "--out", str(tmp_path / "a.onnx"), "--interface", "rvc", "--fp16"], "float32 only"),
        (["export", str(TINY_TEACHER), "--out", str(tmp_path / "a.pth")], ".onnx"),
        (["export", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "a.onnx")], "missing.pth"),
    ]
    for args, words in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: ") and words in result.output
        assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def _onnxrvc_style_run(path, phone, pitch, pitchf, ds, rnd):
    """As RVC's OnnxRVC feeds a file: six inputs by position, whatever the file's names."""
    sess = _session(path)
    ins = sess.get_inputs()
    feed = {ins[0].name: phone, ins[1].name: np.array([phone.shape[1]], np.int64), ins[2].name: pitch,
            ins[3].name: pitchf, ins[4].name: ds, ins[5].name: rnd}
    return sess.run(None, feed)[0]


def test_onnxrvc_style_runner_reads_f0_rvc_files_and_no_f0_ones_are_refused(exported, models, tmp_path):
    t = 50
    args = (np.random.default_rng(0).standard_normal((1, t, 768)).astype(np.float32), np.full((1, t), 60),
            np.full((1, t), 220.0, np.float32), np.array([0]), np.zeros((1, 192, t), np.float32))
    audio = _onnxrvc_style_run(exported("rvc-f0")[0], *args)
    assert audio.shape == (1, 1, t * 400) and np.isfinite(audio).all() and np.abs(audio).max() > 0
    # why the refusal: a no-f0 graph has four inputs, and the positional runner fails on it
    internal, _ = exported("rvc-nof0")
    assert len(_session(internal).get_inputs()) == 4
    with pytest.raises(IndexError):
        _onnxrvc_style_run(internal, args[0][..., :256], *args[1:])
    with pytest.raises(DistillRVCError, match="--interface wokada"):
        export_onnx(models["nof0"], tmp_path / "x.onnx", ExportSettings(interface="rvc", timing_runs=0))
    assert not list(tmp_path.iterdir())


def test_cli_refuses_a_no_f0_rvc_export(tmp_path):
    from distill_rvc.checkpoint import save_model

    src = tmp_path / "src"
    src.mkdir()
    nof0 = save_model(make_tiny_teacher(seed=7, config=NOF0_CONFIG), src / "nof0.pth").path
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(cli, ["export", str(nof0), "--out", str(out / "x.onnx"), "--interface", "rvc"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "OnnxRVC" in result.output and "--interface wokada" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not list(out.iterdir())


def test_fp16_wokada_audio_is_float32_and_int16_conversion_never_wraps(exported, models):
    """w-okada computes (audio * 32767.5).to(int16) in the output's dtype; in float16 that
    turns +1.0 into -32768. A model driven into clipping, exported fp16, run as the client does."""
    import copy

    from distill_rvc.onnx.export import build_graph, format_export

    loud = copy.deepcopy(models["f0"]).remove_weight_norm().eval()
    with torch.no_grad():
        loud.dec.conv_post.weight.mul_(50.0)  # the output now clips at +-1 much of the time
    graph, _ = build_graph(loud, ExportSettings(fp16=True, simplify=False))
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].type == "tensor(float16)"  # the client's fp16 detection
    assert sess.get_outputs()[0].type == "tensor(float)"
    phone, lengths, pitch, pitchf, _ = _reference_inputs(loud.config, 1.0, seed=11)
    audio = sess.run(None, {"feats": phone.numpy().astype(np.float16), "p_len": lengths.numpy(),
                            "pitch": pitch.numpy(), "pitchf": pitchf.numpy(), "sid": np.array([0])})[0]
    assert audio.dtype == np.float32
    assert (audio == 1.0).sum() > 100 and (audio == -1.0).sum() > 100
    pcm = (torch.from_numpy(audio) * 32767.5).to(torch.int16).numpy()  # in the output's dtype, as w-okada
    assert pcm[audio == 1.0].min() == 32767 and pcm[audio == -1.0].max() == -32767
    assert np.all(np.sign(pcm[np.abs(audio) > 0.01]) == np.sign(audio[np.abs(audio) > 0.01]))  # nothing wraps
    # the card and the summary say so
    path, card = exported("wokada-f0-fp16")
    assert [(o["name"], o["dtype"]) for o in card["outputs"]] == [("audio", "float32")]
    assert "audio float32" in format_export(ExportResult(path, path.with_suffix(".json"), card))


def test_failed_parity_writes_nothing(exported, monkeypatch, tmp_path):
    path, _ = exported("rvc-nof0")
    import distill_rvc.onnx.export as ox

    monkeypatch.setattr(ox, "trace", lambda *a, **k: onnx.load(str(path)))  # skip the slow trace
    nof0 = make_tiny_teacher(seed=7, config=NOF0_CONFIG)
    with pytest.raises(DistillRVCError, match="parity check failed"):
        export_onnx(nof0, tmp_path / "x.onnx", ExportSettings(interface="rvc", tolerance=1e-12, timing_runs=0,
                                                           allow_no_f0_rvc=True))
    assert not list(tmp_path.iterdir())
    # A different model's weights (same shapes) fail at the default tolerance too.
    other = make_tiny_teacher(seed=8, config=NOF0_CONFIG)
    with pytest.raises(DistillRVCError, match="exceeds the tolerance"):
        export_onnx(other, tmp_path / "x.onnx", ExportSettings(interface="rvc", timing_runs=0, allow_no_f0_rvc=True))
    assert not list(tmp_path.iterdir())


def test_embedder_name_follows_the_model_file():
    from types import SimpleNamespace

    from distill_rvc.onnx.export import _embedder

    def named(stored):
        return SimpleNamespace(checkpoint=SimpleNamespace(metadata={"embedder_model": stored} if stored else {}))

    assert _embedder(named(None), None) == "hubert_base"  # RVC's hubert_base.pt
    assert _embedder(named("contentvec"), None) == "hubert_base"  # Applio's name for the same network
    assert _embedder(named("japanese-hubert-base"), None) == "hubert-base-japanese"
    for other in ("spin", "spin-v2", "chinese-hubert-base", "korean-hubert-base", "custom"):
        with pytest.raises(DistillRVCError, match=f"{other!r} content features.*--embedder"):
            _embedder(named(other), None)  # no w-okada equivalent: refused ...
        assert _embedder(named(other), "contentvec") == "contentvec"  # ... unless named explicitly


def test_embedder_metadata_follows_an_applio_teachers_embedder_model(tmp_path):
    from tests.fixtures.rvc_files import write_applio

    from distill_rvc.onnx.export import build_graph

    config = TINY_CONFIG.replace(n_layers=1)  # an RVC-buildable layout, small enough to trace quickly
    path = write_applio(tmp_path / "applio.pth", config)
    raw = torch.load(path, weights_only=True)
    raw["embedder_model"] = "japanese-hubert-base"
    torch.save(raw, path)
    model = load_model(path)
    assert model.checkpoint.metadata["embedder_model"] == "japanese-hubert-base"
    graph, _ = build_graph(model, ExportSettings(simplify=False))
    props = {p.key: json.loads(p.value) for p in graph.metadata_props}
    assert props["metadata"]["embedder"] == "hubert-base-japanese"
    assert props["distill_rvc"]["embedder_model"] == "japanese-hubert-base"
    raw["embedder_model"] = "spin"
    torch.save(raw, path)
    with pytest.raises(DistillRVCError, match="'spin'"):
        export_onnx(path, tmp_path / "x.onnx", ExportSettings(timing_runs=0))
    assert not (tmp_path / "x.onnx").exists()


def test_onnxslim_simplification_keeps_the_graph_working():
    pytest.importorskip("onnxslim")
    from distill_rvc.onnx.export import simplify

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "T"])
    model = _graph([helper.make_node("Identity", ["x"], ["h"]), helper.make_node("Relu", ["h"], ["y"])], [x], [y])
    slim, tool = simplify(model)
    assert tool.startswith("onnxslim") and len(slim.graph.node) == 1
    out = ort.InferenceSession(slim.SerializeToString()).run(None, {"x": np.array([[-1.0, 2.0]], np.float32)})[0]
    np.testing.assert_array_equal(out, [[0.0, 2.0]])


# ------------------------------------------------------------------------ opset 17 rewrite
def _graph(nodes, inputs, outputs, opset=18, initializers=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def test_opset_17_rewrite_keeps_split_and_pad_meaning():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
            for n, shape in (("a", [1, 2, 3]), ("b", [1, 2, 3]), ("p", [1, 4, 6]))]
    pads = helper.make_tensor("pads", TensorProto.INT64, [6], [0, 0, 1, 0, 0, 2])
    model = _graph([helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2),
                    helper.make_node("Pad", ["x", "pads"], ["p"])], [x], outs, initializers=[pads])
    feed = {"x": np.arange(12, dtype=np.float32).reshape(1, 4, 3)}
    before = ort.InferenceSession(model.SerializeToString()).run(None, feed)
    to_opset_17(model)
    assert model.opset_import[0].version == 17
    onnx.checker.check_model(model, full_check=True)
    after = ort.InferenceSession(model.SerializeToString()).run(None, feed)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(after[0], feed["x"][:, :2])


def test_opset_17_rewrite_refuses_other_changed_ops():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    model = _graph([helper.make_node("ReduceMean", ["x", "axes"], ["y"])], [x], [y], initializers=[axes])
    with pytest.raises(DistillRVCError, match="--opset 18"):
        to_opset_17(model)


# ------------------------------------------------------------------------------ big ones
@pytest.mark.slow
@pytest.mark.parametrize("fp16", [False, True])
def test_real_size_v2_40k_teacher_exports_with_parity(tmp_path, fp16):
    from distill_rvc import Synthesizer

    torch.manual_seed(0)
    teacher = Synthesizer(rvc_config("v2", 40000, True)).eval()
    result = export_onnx(teacher, tmp_path / "teacher.onnx", ExportSettings(fp16=fp16, timing_runs=1))
    parity = result.card["parity"]
    assert parity["passed"] and parity["max_rel"] <= (1e-2 if fp16 else 1e-4)
    assert result.card["params"]["total"] == sum(p.numel() for p in teacher.parameters())


@pytest.mark.gpu
def test_parity_on_the_cuda_provider(exported):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed")
    _, card = exported("wokada-f0")
    cuda = card["parity"]["cuda"]
    assert cuda["provider"] == "CUDAExecutionProvider" and cuda["max_rel"] <= 1e-4
