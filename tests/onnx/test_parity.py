"""The parity machinery on hand-made graphs and hand computations (no export needed)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from distill_rvc import rvc_config
from distill_rvc.features import coarse_pitch
from distill_rvc.onnx.parity import errors, parity_inputs
from distill_rvc.onnx.runtime import deterministic_variant


def test_parity_inputs_follow_their_description():
    cfg = rvc_config("v1", 48000, True)
    x = parity_inputs(cfg, 1.5)
    t = 150  # 100 frames per second at every RVC rate (48000 / 480)
    assert x["phone"].shape == (1, t, 256) and x["phone"].dtype == np.float32
    assert x["noise"].shape == (1, 192, t)
    assert x["lengths"].tolist() == [t] and x["sid"].tolist() == [0]
    f0 = x["pitchf"][0]
    unvoiced = (np.arange(t) % 100) >= 80
    assert (f0[unvoiced] == 0).all() and (f0[~unvoiced] >= 110).all() and (f0[~unvoiced] <= 440).all()
    assert f0[0] == pytest.approx(220.0)
    assert np.array_equal(x["pitch"][0], coarse_pitch(f0))
    again = parity_inputs(cfg, 1.5)
    assert all(np.array_equal(again[k], x[k]) for k in x)  # reproducible


def test_errors_by_hand():
    ref = np.array([0.5, -0.25, 0.0])
    out = np.array([0.5, -0.20, 0.01])
    max_abs, max_rel = errors(out, ref)
    assert max_abs == pytest.approx(0.05)
    assert max_rel == pytest.approx(0.05 / 0.5)
    assert errors(np.zeros(3), np.zeros(3)) == (0.0, 0.0)


def _noisy_graph(elem=TensorProto.FLOAT, extra_random=False):
    """prior: m [1, 4, T] -> m + RandomNormalLike(m); source: s [1, N, 1] -> s + RandomNormalLike(s)."""
    m = helper.make_tensor_value_info("m", elem, [1, 4, "T"])
    s = helper.make_tensor_value_info("s", elem, [1, "N", 1])
    outs = [helper.make_tensor_value_info(n, elem, None) for n in ("prior", "source")]
    nodes = [helper.make_node("RandomNormalLike", ["m"], ["eps"]), helper.make_node("Add", ["m", "eps"], ["prior"]),
             helper.make_node("RandomNormalLike", ["s"], ["nsf"]), helper.make_node("Add", ["s", "nsf"], ["source"])]
    if extra_random:
        nodes.append(helper.make_node("RandomNormalLike", ["m"], ["eps2"], dtype=elem))
        outs.append(helper.make_tensor_value_info("eps2", elem, None))
    graph = helper.make_graph(nodes, "g", [m, s], outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("elem, dtype", [(TensorProto.FLOAT, np.float32), (TensorProto.FLOAT16, np.float16)])
def test_deterministic_variant_makes_the_prior_an_input_and_silences_the_source(elem, dtype):
    model = _noisy_graph(elem)
    variant = deterministic_variant(model, inter_channels=4)
    assert [i.name for i in variant.graph.input] == ["m", "s", "rnd"]
    assert not any(n.op_type.startswith("Random") for n in variant.graph.node)
    assert sum(n.op_type == "RandomNormalLike" for n in model.graph.node) == 2  # the original is untouched
    sess = ort.InferenceSession(variant.SerializeToString(), providers=["CPUExecutionProvider"])
    rnd_input = sess.get_inputs()[2]
    assert rnd_input.shape == [1, 4, "T"] and rnd_input.type == ("tensor(float16)" if dtype == np.float16 else "tensor(float)")
    rng = np.random.default_rng(0)
    m, s, rnd = (rng.standard_normal(shape).astype(dtype) for shape in ((1, 4, 7), (1, 9, 1), (1, 4, 7)))
    prior, source = sess.run(None, {"m": m, "s": s, "rnd": rnd})
    np.testing.assert_array_equal(prior, m + rnd)
    np.testing.assert_array_equal(source, s)


def test_nsf_noise_can_become_an_input():
    variant = deterministic_variant(_noisy_graph(), inter_channels=4, nsf_noise_input=True)
    sess = ort.InferenceSession(variant.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["m", "s", "rnd", "nsf_noise"]
    rng = np.random.default_rng(1)
    m, rnd, s, nsf = (rng.standard_normal(shape).astype(np.float32) for shape in ((1, 4, 5), (1, 4, 5), (1, 8, 1), (1, 8, 1)))
    prior, source = sess.run(None, {"m": m, "s": s, "rnd": rnd, "nsf_noise": nsf})
    np.testing.assert_array_equal(source, s + nsf)


def test_deterministic_variant_refuses_a_random_node_it_cannot_place():
    with pytest.raises(RuntimeError, match="prior noise twice"):
        deterministic_variant(_noisy_graph(extra_random=True), inter_channels=4)
    with pytest.raises(RuntimeError, match="unexpected random node"):
        deterministic_variant(_noisy_graph(), inter_channels=6)
