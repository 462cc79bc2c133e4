"""`convert`: RVC's chunking, retrieval and protection by hand, and wav -> wav end to end with the
tiny teacher and a small fairseq-layout content encoder."""
from __future__ import annotations

import errno
import math

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from distill_rvc import DistillRVCError
from distill_rvc.backends import ModelInfo, open_backend
from distill_rvc.cli import cli
from distill_rvc.chunking import ChunkSizes, chunk_sizes, conditioner, cut_points, stretch
from distill_rvc.convert import ChunkInput, Converter, ConvertSettings, render
from distill_rvc.features.retrieval import protect_mix, retrieve
from distill_rvc.features import coarse_pitch, condition_audio, extract_f0, load_content_encoder, resample
from distill_rvc.memory import ALLOCATOR_SLACK, CUDA_OVERHEAD_BYTES, GB, fake_peaks
from tests.fixtures import TINY_TEACHER
from examples.make_stand_in_hubert import write_hubert
from tests.fixtures.audio import speech_like

SMALL = ChunkSizes(pad=0.5, query=0.5, center=2.0, max=2.5)


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)  # tiny models: a second thread on shared cores only spin-waits


@pytest.fixture(scope="module")
def hubert(tmp_path_factory):
    return write_hubert(tmp_path_factory.mktemp("hubert") / "hubert_base.pt", embed_dim=768, layers=2)


@pytest.fixture(scope="module")
def converter(hubert):
    return Converter(open_backend(TINY_TEACHER), load_content_encoder(hubert),
                     ConvertSettings(f0_method="dio", chunks=SMALL))


# ---------------------------------------------------------------------------- chunking by hand
def test_cut_points_fall_in_the_quiet_gaps():
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(16000 * 9)).astype(np.float32)
    gaps = [(28_000, 29_000), (66_000, 67_000), (94_000, 95_000), (131_000, 132_000)]  # near 2, 4, 6 and 8 s
    for lo, hi in gaps:
        x[lo:hi] *= 1e-3
    cuts = cut_points(x, SMALL)
    assert len(cuts) == 4 and all(c % 320 == 0 for c in cuts)
    for cut, (lo, hi) in zip(cuts, gaps):  # RVC's 160-sample moving sum is smallest inside the gap
        assert lo - 320 <= cut < hi
    assert cut_points(x[: 16000 * 2], SMALL) == []  # 2 s + 10 ms <= x_max: one pass, as in RVC


def test_stretch_is_rvcs_conditioned_and_padded_input():
    x = np.arange(7.0)
    for pad in (3, 6, 15):  # within the input, up to its length, beyond it (reflections repeat)
        padded = np.pad(x, (pad, pad), mode="reflect")
        for start, stop in ((-pad, 4), (2, 7 + pad), (-pad, 7 + pad), (1, 5)):
            np.testing.assert_array_equal(stretch(x, start, stop), padded[start + pad: stop + pad])
    audio = speech_like(16000, 3.0)
    rvc = np.pad(condition_audio(audio), (8000, 8000), mode="reflect")  # the whole input, as RVC does
    condition = conditioner(audio)
    for start, stop in ((-8000, 20000), (12000, 40000), (30000, 56000)):
        np.testing.assert_allclose(stretch(audio, start, stop, condition), rvc[start + 8000: stop + 8000], atol=1e-6)


def test_chunks_match_rvcs_whole_input_analysis(converter):
    """RVC conditions and reflect-pads the whole input and runs F0 on all of it; each chunk's own
    analysis gives the same F0 and content features on the frames it keeps."""
    x = speech_like(16000, 5.3, f0=170)
    t_pad = int(SMALL.pad * 16000)
    padded = np.pad(condition_audio(x), (t_pad, t_pad), mode="reflect")
    f0_whole = extract_f0(padded, "dio")
    cuts = converter.cuts(x)
    assert len(cuts) == 2
    bounds = [0, *cuts, len(x)]
    p = t_pad // 160
    for chunk, a, b in zip(converter.chunks(x), bounds[:-1], bounds[1:]):
        t = chunk.pitchf.shape[1]
        kept = slice(p, p + (b - a) // 160)  # the context frames around them are dropped
        ours, rvc = chunk.pitchf[0, kept], f0_whole[a // 160: a // 160 + t][kept]
        np.testing.assert_allclose(ours, rvc, atol=1e-3)
        np.testing.assert_array_equal(chunk.pitch[0], coarse_pitch(chunk.pitchf[0]))
        piece = padded[a: b + 2 * t_pad + 160] if b < len(x) else padded[a:]
        feats = np.repeat(converter.encoder.extract(piece, "v2"), 2, axis=0)[:t]
        np.testing.assert_allclose(chunk.phone[0, kept], feats[kept], atol=1e-3)


def test_chunk_sizes_keep_rvc_proportions():
    s = ChunkSizes.for_chunk(40.0, pad=1.0)
    assert (s.pad, s.center) == (1.0, 38.0) and s.query == pytest.approx(38 / 6) and s.max == pytest.approx(38 + 38 / 12)
    assert ChunkSizes.for_chunk(500.0).center == 60.0  # no longer than RVC's largest chunk
    with pytest.raises(DistillRVCError, match="memory-gb"):
        ChunkSizes.for_chunk(2.5, pad=1.0)


def test_chunk_sizes_fit_the_budget(converter):
    """The chosen chunk (centre + both pads), traced independently, fits the budget with the content
    encoder's weights resident."""
    small = chunk_sizes(converter.backend, converter.encoder, budget_gb=0.75)
    assert 1.0 < small.center < 60
    seconds = small.center + 2 * small.pad
    model = converter.backend.model
    t = int(seconds * 100)

    def run(m):
        import torch
        m.infer(torch.zeros(1, t, 768), torch.tensor([t]), torch.ones(1, t, dtype=torch.long),
                torch.full((1, t), 200.0), torch.tensor([0]), noise=torch.zeros(1, 192, t), source_noise=False)

    from distill_rvc import Synthesizer
    peak = fake_peaks(lambda: Synthesizer(model.config).eval(), [run])[0]["total"]
    encoder_weights = sum(p.numel() * 4 for p in converter.encoder.parameters())
    assert peak + encoder_weights <= 0.75 * GB / ALLOCATOR_SLACK - CUDA_OVERHEAD_BYTES


def test_retrieve_is_rvcs_weighted_mean_of_8_nearest():
    class BruteForce:  # faiss's IndexFlatL2.search: squared L2, nearest first
        def __init__(self, v):
            self.v = v

        def search(self, q, k):
            d = ((q[:, None, :] - self.v[None]) ** 2).sum(-1)
            idx = np.argsort(d, axis=1)[:, :k]
            return np.take_along_axis(d, idx, 1).astype(np.float32), idx

    vectors = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]], dtype=np.float32)
    feats = np.array([[1.0, 0.0]], dtype=np.float32)  # squared distances 1, 1, 17
    w = np.array([1.0, 1.0, 1 / 17 ** 2])
    expect = (w[:, None] * vectors).sum(0) / w.sum()
    out = retrieve(feats, BruteForce(vectors), vectors, rate=0.75)
    np.testing.assert_allclose(out[0], 0.75 * expect + 0.25 * feats[0], rtol=1e-6)
    exact = retrieve(vectors[1:2], BruteForce(vectors), vectors, rate=1.0)  # distance 0 dominates, no NaN
    np.testing.assert_allclose(exact, vectors[1:2], atol=1e-6)

    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    many = rng.standard_normal((50, 8)).astype(np.float32)
    index = faiss.IndexFlatL2(8)
    index.add(many)
    q = rng.standard_normal((5, 8)).astype(np.float32)
    np.testing.assert_allclose(retrieve(q, index, many, 0.5), retrieve(q, BruteForce(many), many, 0.5), rtol=1e-4)


def test_protect_keeps_features_where_voiced():
    feats = np.full((3, 2), 10.0, dtype=np.float32)
    feats0 = np.zeros((3, 2), dtype=np.float32)
    out = protect_mix(feats, feats0, np.array([0.0, 0.5, 180.0]), protect=0.33)
    np.testing.assert_allclose(out[:, 0], [3.3, 3.3, 10.0], rtol=1e-6)  # RVC: pitchf < 1 Hz counts as unvoiced


class PhaseResetSine:
    """Stands in for the NSF decoder: a 220 Hz sine whose phase restarts with every pass."""

    accepts_noise, deterministic, name = True, True, "fake"
    info = ModelInfo(path=None, format="torch", sr=40000, hop=400, f0=True, phone_dim=768, inter_channels=192,
                     params=0, file_bytes=None)

    def run(self, phone, pitch, pitchf, sid=0, noise=None):
        n = phone.shape[1] * 400
        return (0.5 * np.sin(2 * np.pi * 220 * np.arange(n) / 40000))[None].astype(np.float32)


def _passes(spans_frames, pad_frames=50):
    """ChunkInputs for spans (in frames) with `pad_frames` of context on each side."""
    out = []
    for a, b in spans_frames:
        t = b - a + 2 * pad_frames
        out.append(ChunkInput(phone=np.zeros((1, t, 768), np.float32), pitch=None, pitchf=None, noise=None,
                              offset=(a - pad_frames) * 400, span=(a * 400, b * 400)))
    return out


def test_render_crossfade_removes_the_phase_click():
    spans = [(0, 137), (137, 301), (301, 450)]
    hard = np.concatenate(list(render(_passes(spans), PhaseResetSine(), fade=0)))
    soft = np.concatenate(list(render(_passes(spans), PhaseResetSine(), fade=800)))
    assert len(hard) == len(soft) == 450 * 400
    steady = 0.5 * 2 * math.sin(math.pi * 220 / 40000)  # the largest step of an unbroken sine
    seams = [137 * 400, 301 * 400]
    jump_hard = max(abs(hard[s] - hard[s - 1]) for s in seams)
    assert jump_hard > 3 * steady  # a restarted phase clicks (the test can fail) ...
    assert np.abs(np.diff(soft)).max() <= 1.05 * steady  # ... the cross-fade does not


# ----------------------------------------------------------------------------- end to end
def _jumps_at_seams(y, seams, width):
    d = np.abs(np.diff(y))
    near = np.zeros(len(d), bool)
    for s in seams:
        near[max(s - width, 0): s + width] = True
    return d[near].max(), d[~near].max()


def test_convert_file_rate_length_and_seams(converter, tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, speech_like(44100, 5.3, channels=2), 44100, subtype="PCM_16")
    result = converter.convert_file(src, tmp_path / "out.wav")
    out, sr = sf.read(tmp_path / "out.wav", dtype="float32")
    n16 = len(resample(np.zeros(round(5.3 * 44100), np.float32), 44100, 16000))
    assert sr == 40000 and out.ndim == 1 and len(out) == round(n16 * 40000 / 16000)
    assert np.isfinite(out).all() and np.sqrt(np.mean(out ** 2)) > 0.01
    assert result.chunks == 3  # cut near 2 and 4 s

    cuts = converter.cuts(resample(speech_like(44100, 5.3, channels=2).mean(axis=1), 44100, 16000))
    at_seams, elsewhere = _jumps_at_seams(out, [c * 40000 // 16000 for c in cuts], width=400)
    assert at_seams <= elsewhere


def test_transpose_and_sid(converter, hubert):
    audio = speech_like(16000, 2.0)
    up = Converter(converter.backend, converter.encoder, ConvertSettings(f0_method="dio", chunks=SMALL, transpose=12))
    a, b = next(converter.chunks(audio)), next(up.chunks(audio))
    voiced = a.pitchf > 0
    np.testing.assert_allclose(b.pitchf[voiced], 2 * a.pitchf[voiced], rtol=1e-5)
    np.testing.assert_array_equal(a.phone, b.phone)
    with pytest.raises(DistillRVCError, match="109 speaker slots"):
        Converter(converter.backend, converter.encoder, ConvertSettings(sid=109))


def test_convert_with_a_faiss_index(converter, tmp_path):
    faiss = pytest.importorskip("faiss")
    audio = speech_like(16000, 2.0, f0=200)
    vectors = converter.encoder.extract(condition_audio(audio), "v2")
    index = faiss.index_factory(768, "IVF2,Flat")  # RVC's "IVF{n},Flat", n = min(16 sqrt(N), N // 39)
    index.train(vectors)
    index.add(vectors)
    faiss.write_index(index, str(tmp_path / "voice.index"))
    settings = ConvertSettings(f0_method="dio", chunks=SMALL, index=tmp_path / "voice.index", index_rate=1.0,
                               protect=0.5)
    with_index = next(Converter(converter.backend, converter.encoder, settings).chunks(audio))
    plain = next(converter.chunks(audio))
    assert not np.allclose(with_index.phone, plain.phone)
    # every retrieved frame is a weighted mean of the index's vectors: inside their bounding box
    assert (with_index.phone[0] >= vectors.min(0) - 1e-4).all() and (with_index.phone[0] <= vectors.max(0) + 1e-4).all()
    with pytest.raises(DistillRVCError, match="not a faiss index"):
        (tmp_path / "bad.index").write_bytes(b"nonsense")
        Converter(converter.backend, converter.encoder, ConvertSettings(index=tmp_path / "bad.index"))


def test_cli_convert_folder(hubert, tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    sf.write(tmp_path / "in" / "sub" / "a.flac", speech_like(22050, 1.5), 22050)
    sf.write(tmp_path / "in" / "silent.wav", np.zeros(16000, np.float32), 16000)
    args = ["convert", "--model", str(TINY_TEACHER), "--hubert", str(hubert), "--f0", "dio",
            "--chunk-seconds", "1"]
    r = CliRunner().invoke(cli, args + ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    out, sr = sf.read(tmp_path / "out" / "sub" / "a.wav")
    assert sr == 40000 and len(out) == round(len(resample(np.zeros(round(1.5 * 22050), np.float32), 22050, 16000))
                                             * 2.5)
    assert "silent.wav" in r.output and "converted 1 file" in r.output
    r = CliRunner().invoke(cli, args + ["--input", str(tmp_path / "in" / "silent.wav"), "--output",
                                        str(tmp_path / "x.wav")])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "silent" in r.output
    assert not (tmp_path / "x.wav").exists()


def test_cuda_refused_without_a_gpu():
    import torch

    from distill_rvc.backends import resolve_device
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DistillRVCError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(DistillRVCError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu:x")
    assert resolve_device("auto") == "cpu"


@pytest.mark.gpu
def test_convert_on_cuda_matches_the_length(hubert, tmp_path):
    conv = Converter(open_backend(TINY_TEACHER, "cuda"), load_content_encoder(hubert, "cuda"),
                     ConvertSettings(f0_method="dio", chunks=SMALL))
    sf.write(tmp_path / "in.wav", speech_like(16000, 4.1), 16000)
    conv.convert_file(tmp_path / "in.wav", tmp_path / "out.wav")
    out, sr = sf.read(tmp_path / "out.wav")
    assert sr == 40000 and len(out) == round(4.1 * 16000) * 40000 // 16000 and np.isfinite(out).all()


# ---- issue 11.8: write failures while converting are one line; the previous output stays
def test_wav_write_failure_keeps_the_previous_file(converter, tmp_path, monkeypatch):
    sf.write(tmp_path / "in.wav", speech_like(16000, 1.0), 16000)
    target = tmp_path / "out.wav"
    target.write_bytes(b"previous take")

    def full_disk(self, data):
        raise sf.LibsndfileError(2, "Error writing ")  # what libsndfile says when the disk is full

    monkeypatch.setattr(sf.SoundFile, "write", full_disk)
    with pytest.raises(DistillRVCError, match=r"out\.wav"):
        converter.convert_file(tmp_path / "in.wav", target)
    assert target.read_bytes() == b"previous take"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.wav"]


def test_cli_convert_into_a_read_only_folder_is_one_line(hubert, tmp_path, monkeypatch):
    import tempfile

    sf.write(tmp_path / "in.wav", speech_like(16000, 1.0), 16000)

    def read_only(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    r = CliRunner().invoke(cli, ["convert", "--model", str(TINY_TEACHER), "--hubert", str(hubert), "--f0", "dio",
                                 "--chunk-seconds", "1", "--input", str(tmp_path / "in.wav"), "--output",
                                 str(tmp_path / "out.wav")])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert r.output.strip().splitlines()[-1] == f"error: cannot write {tmp_path / 'out.wav'}: Permission denied; " \
                                                "the previous file (if any) is untouched"


def test_long_input_shows_a_progress_bar(converter, tmp_path, capsys):
    sf.write(tmp_path / "long.wav", speech_like(16000, 4 * SMALL.center + 1), 16000)
    converter.convert_file(tmp_path / "long.wav", tmp_path / "out.wav", progress=True)
    err = capsys.readouterr().err
    assert "long.wav" in err and "s of audio" in err
