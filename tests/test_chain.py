"""`bench --chain`: the whole conversion chain timed stage by stage (distill_rvc/chain.py)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from distill_rvc.chain import Chain, ChainSettings, bench_chain, format_chain
from distill_rvc.cli import cli
from distill_rvc.errors import DistillRVCError
from examples.make_stand_in_hubert import write_hubert
from tests.features.test_fcpe import needs_weights
from tests.fixtures import TINY_TEACHER


@pytest.fixture(scope="module")
def hubert(tmp_path_factory):
    return write_hubert(tmp_path_factory.mktemp("hubert") / "hubert_base.pt", embed_dim=768, layers=2)


def test_two_chains_side_by_side(hubert):
    torch_chain = Chain.parse(f"model={TINY_TEACHER},encoder={hubert},f0=dio,name=torch")
    ort_chain = Chain.parse(f"model={TINY_TEACHER},encoder={hubert},f0=dio,runtime=onnxruntime,name=ort")
    result = bench_chain([torch_chain, ort_chain], ChainSettings(threads=(1,), runs=1, warmup=0, seconds=2.0))
    first, second = result["chains"]
    assert [r["stage"] for r in first["stages"]] == ["encoder", "f0", "synthesizer"]
    assert [r["runtime"] for r in second["stages"]] == ["onnxruntime", "pyworld", "onnxruntime"]
    # same networks: same params and counted FLOPs; dio is DSP (no params, no FLOP count)
    assert first["total"]["params"] == second["total"]["params"] == sum(r["params"] for r in first["stages"])
    assert first["stages"][1]["params"] == 0 and first["stages"][1]["gflop_per_s"] is None
    assert first["stages"][0]["gflop_per_s"] > 0 and first["stages"][2]["gflop_per_s"] > 0
    assert first["total"]["rtf"]["1"] == pytest.approx(sum(r["rtf"]["1"] for r in first["stages"]))
    ratio = result["ratios"][0]
    assert ratio["rtf"]["1"] == pytest.approx(first["total"]["rtf"]["1"] / second["total"]["rtf"]["1"])
    assert ratio["params"] == pytest.approx(1.0)
    text = format_chain(result)
    assert "torch (runtime torch)" in text and "ort (runtime onnxruntime)" in text and "faster on 1 thread" in text


@pytest.mark.parametrize("spec, message", [
    ("model=a.pth", "no encoder="),
    ("model=a.pth,encoder=b.pt,speed=3", "unknown key 'speed'"),
    (f"model={TINY_TEACHER},encoder={TINY_TEACHER},f0=crepe", "unknown F0 method 'crepe'"),
    (f"model={TINY_TEACHER},encoder={TINY_TEACHER},f0=rmvpe", "f0=rmvpe needs the model file"),
    (f"model={TINY_TEACHER},encoder=missing.pt,f0=dio", "encoder missing.pt: no such file"),
    (f"model={TINY_TEACHER},encoder={TINY_TEACHER},runtime=tpu", "runtime must be torch or onnxruntime"),
])
def test_bad_chain_specs(spec, message):
    with pytest.raises(DistillRVCError, match=message):
        Chain.parse(spec)


def test_cli_bench_chain(hubert):
    ok = CliRunner().invoke(cli, ["bench", "--chain", f"model={TINY_TEACHER},encoder={hubert},f0=dio",
                                  "--runs", "1", "--warmup", "0"])
    assert ok.exit_code == 0, ok.output
    assert "synthesizer" in ok.output and "total" in ok.output
    bad = CliRunner().invoke(cli, ["bench", "--chain", "model=x.pth"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "no encoder=" in bad.output


@needs_weights
def test_fcpe_runs_on_onnxruntime_log_mel_included(hubert):
    chain = Chain.parse(f"model={TINY_TEACHER},encoder={hubert},f0=fcpe,runtime=onnxruntime")
    result = bench_chain([chain], ChainSettings(threads=(1,), runs=1, warmup=0, seconds=2.0))
    f0 = result["chains"][0]["stages"][1]
    assert f0["runtime"] == "onnxruntime" and 10.7e6 < f0["params"] < 10.9e6
    assert 40e6 < f0["bytes"] < 50e6  # the exported graph (fcpe_c_v001.pt is 43 MB)
    assert f0["gflop_per_s"] > 0 and f0["rtf"]["1"] > 0
