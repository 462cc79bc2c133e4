"""The ONNX file format boundary: the two client signatures and the metadata, known here only.

    INTERFACES, input_names(interface, f0)   "wokada" / "rvc"; the graph's input names, in order
    INPUTS, ROLES, interface_of(names)      role -> input name per interface; name -> role; which one a file is
    NUMPY, ONNX_TYPE, OUTPUT_NAME, TIME_AXIS onnxruntime type string <-> numpy dtype; "audio"; "T"
    write_metadata / read_metadata          metadata_props entries, each value JSON
    wokada_metadata, our_metadata           the w-okada client's `metadata` entry; ours (`distill_rvc`)
    wokada_embedder(stored, requested)      the content encoder as the w-okada client names it
    rate_from_metadata(meta)                (sample rate, hop) from our entry or w-okada's
    ENCODER_INPUT, ENCODER_OUTPUT, ENCODER_KEYS  a content encoder's graph: audio [1, N] -> features [1, T, C]

The signatures (deploy-targets.md §1); every input has a role, what it carries whatever its name:

- `wokada` (w-okada VC Client and forks): feats [1, T, C] float32 (float16 in fp16 files),
  p_len [1], pitch [1, T] int64, pitchf [1, T] float32, sid [1] int64 -> audio [N], clipped to
  [-1, 1] and float32 even in fp16 files (the client converts it to int16 in the output's dtype,
  where float16 wraps +1.0 to -32768). The prior noise (x 0.66666) and the NSF noise are drawn
  inside the graph. A `metadata` JSON entry carries what the client reads (version 2.1).
- `rvc` (RVC's exporter, MoeSS, ailia): phone [1, T, C], phone_lengths [1], pitch, pitchf,
  ds [1], rnd [1, inter, T] (the already-scaled prior noise) -> audio [1, 1, N], not clipped;
  float32 only. No `metadata` entry: the w-okada client takes any file that has one as a slot
  and then fails at its first inference.

Both carry our entry (`distill_rvc`: interface, precision, rate, hop, ...). No-f0 models have no
pitch/pitchf inputs. T (frames, 100 per second) is the dynamic time axis.

A content encoder (`distill-rvc export-encoder`) is a third kind of file: audio [1, N] float32
at 16 kHz (N dynamic) -> features [1, T, C] float32 at 50 frames/s for one RVC version, with
the metadata entries ENCODER_KEYS (version, dim, min_samples, hop in samples, the source's
kind and sha256, precision). A file without them is not taken as an encoder.
Not here: writing graphs (export.py) or running them (runtime.py).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import SynthConfig
from ..errors import DistillRVCError

if TYPE_CHECKING:
    import onnx

INTERFACES = ("wokada", "rvc")
# role -> input name, in the graph's order. Roles: phone [1, T, C], lengths [1], pitch [1, T] (coarse
# bins), pitchf [1, T] (Hz), sid [1], noise [1, inter, T] (rvc only: the graph takes the prior noise).
INPUTS = {"wokada": {"phone": "feats", "lengths": "p_len", "pitch": "pitch", "pitchf": "pitchf", "sid": "sid"},
          "rvc": {"phone": "phone", "lengths": "phone_lengths", "pitch": "pitch", "pitchf": "pitchf", "sid": "ds",
                  "noise": "rnd"}}
PITCH_ROLES = ("pitch", "pitchf")  # absent in no-f0 graphs
ROLES = {name: role for names in INPUTS.values() for role, name in names.items()}  # input name -> role
OUTPUT_NAME = "audio"
TIME_AXIS = "T"
# onnxruntime's type strings (`NodeArg.type`) of the inputs above <-> numpy
NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}
ONNX_TYPE = {np.dtype(dtype): name for name, dtype in NUMPY.items()}

METADATA_VERSION = "2.1"
WOKADA_METADATA_KEY = "metadata"  # w-okada's JSON (`_setInfoByONNX`); wokada files only
OUR_METADATA_KEY = "distill_rvc"  # ours: interface, precision, sample rate, hop, ...; every file
# Content-encoder names as the model file stores them (Applio's `embedder_model`, or already
# w-okada's) -> as the w-okada client names them. w-okada's hubert_base is RVC's hubert_base.pt,
# the ContentVec network Applio calls contentvec. Anything else (Applio's spin, spin-v2,
# chinese-/korean-hubert-base, custom) has no w-okada equivalent.
WOKADA_EMBEDDERS = {"contentvec": "hubert_base", "hubert_base": "hubert_base",
                    "japanese-hubert-base": "hubert-base-japanese", "hubert-base-japanese": "hubert-base-japanese",
                    "whisper": "whisper"}
DEFAULT_EMBEDDER = "hubert_base"


ENCODER_INPUT, ENCODER_OUTPUT, ENCODER_SAMPLES_AXIS = "audio", "features", "N"
ENCODER_KEYS = {role: f"distill_rvc.encoder.{role}"
                for role in ("version", "dim", "min_samples", "hop", "kind", "sha256", "precision")}


def input_names(interface: str, f0: bool) -> list[str]:
    """The graph's input names, in order, for an interface and a pitch/no-pitch model."""
    return [name for role, name in INPUTS[interface].items() if f0 or role not in PITCH_ROLES]


def interface_of(names: list[str]) -> str | None:
    """Which interface a graph with these input names has (None: neither)."""
    if INPUTS["wokada"]["phone"] in names:
        return "wokada"
    if INPUTS["rvc"]["phone"] in names and INPUTS["rvc"]["noise"] in names:
        return "rvc"
    return None


# ------------------------------------------------------------------------------ metadata
def write_metadata(model: "onnx.ModelProto", entries: dict[str, Any]) -> None:
    """Add each entry to the file's metadata_props, its value as JSON. In place."""
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, json.dumps(value)


def read_metadata(model: "onnx.ModelProto") -> dict[str, Any]:
    """The file's metadata_props, each JSON value parsed (a value that is not JSON kept as text)."""
    out: dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            out[prop.key] = json.loads(prop.value)
        except ValueError:
            out[prop.key] = prop.value
    return out


def wokada_metadata(config: SynthConfig, embedder: str | None = None) -> dict[str, Any]:
    """The `metadata` JSON the w-okada client reads (`_setInfoByONNX`, deploy-targets.md §1.1).

    Without it the client silently treats the file as v1 48 kHz with 256-d features.
    """
    v2 = config.phone_dim == 768
    return {
        "application": "VC_CLIENT",
        "version": METADATA_VERSION,
        "modelType": "pyTorchRVC" + ("v2" if v2 else "") + ("" if config.f0 else "Nono"),
        "samplingRate": config.sr,
        "f0": bool(config.f0),
        "embChannels": config.phone_dim,
        "embedder": embedder or DEFAULT_EMBEDDER,
        "embOutputLayer": 12 if v2 else 9,
        "useFinalProj": not v2,
    }


def our_metadata(config: SynthConfig, interface: str, precision: str, embedder_model: str | None) -> dict[str, Any]:
    """Our `distill_rvc` entry, in every file: what `OrtBackend` and the card need to know."""
    return {
        "interface": interface, "precision": precision, "sample_rate": config.sr,
        "hop_length": config.hop_length, "f0": bool(config.f0), "content_dim": config.phone_dim,
        "inter_channels": config.inter_channels, "embedder_model": embedder_model, "audio": "float32",
        "prior_noise": "drawn in the graph, x 0.66666" if interface == "wokada" else "rnd = 0.66666 * N(0, 1)"}


def wokada_embedder(stored: str | None, requested: str | None) -> str:
    """The `embedder` for w-okada's metadata: `requested` (--embedder) as given, else the model
    file's `stored` name in w-okada's naming, else hubert_base. A model trained on features
    w-okada has no encoder for is refused: the client would convert with wrong ones."""
    if requested:
        return requested
    if stored is None:
        return DEFAULT_EMBEDDER
    if stored.lower() not in WOKADA_EMBEDDERS:
        raise DistillRVCError(f"the model was trained on {stored!r} content features, which the w-okada client "
                              "has no embedder for (it knows hubert_base, contentvec, hubert-base-japanese, "
                              "whisper); pass --embedder NAME if your client has a matching one")
    return WOKADA_EMBEDDERS[stored.lower()]


def rate_from_metadata(meta: dict[str, Any]) -> tuple[int | None, int | None]:
    """(sample rate, hop) from `read_metadata`'s entries: our `distill_rvc` entry (every file we
    write; the only one in rvc-interface files) or else the w-okada `metadata` entry (w-okada's
    own exports). (None, None) when neither tells."""
    try:
        ours = meta.get(OUR_METADATA_KEY, {})
        if ours.get("sample_rate") and ours.get("hop_length"):
            return int(ours["sample_rate"]), int(ours["hop_length"])
        sr = meta.get(WOKADA_METADATA_KEY, {}).get("samplingRate")
        return (int(sr), int(sr) // 100) if sr else (None, None)
    except (ValueError, TypeError, AttributeError):
        return None, None
