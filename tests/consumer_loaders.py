"""The three runtimes' `.pth` loading, as docs/consumers.md describes it, on our own modules.

Each loader does what that consumer does with a file, and nothing we would do for it:
- RVC (`VC.get_vc`): class from (`version`, `f0`), built from `*config` with `config[-3]`
  overwritten by the row count of `emb_g.weight`, `enc_q` deleted, `load_state_dict(strict=False)`.
- Applio (`setup_network`): reads `config`, `version`, `f0`, `vocoder` and the top-level
  `embedder_model`, but never `config[9]`: it always builds the ResBlock1 decoder; `enc_q`
  deleted; `strict=False`.
- w-okada (`_setInfoByPytorch`): `config`, `version`, `f0` choose the class; keeps `enc_q`
  (its keys are missing from the file, which `strict=False` tolerates).
The network is our `Synthesizer` with torch's weight-norm parametrization, whose load hook
takes RVC's `weight_g`/`weight_v` names, as the consumers' own modules do. A consumer's
failure is whatever it raises (a `KeyError` for a file without `config`, a `RuntimeError` for
a shape mismatch); the loaders return the model ready for `infer`, weight norm removed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from distill_rvc import SynthConfig, Synthesizer
from distill_rvc.models.weight_norm import apply_weight_norm, remove_weight_norm


def _read(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _build(cpt: dict[str, Any], *, resblock: str | None = None, with_posterior: bool = False) -> Synthesizer:
    config = list(cpt["config"])  # KeyError 'config' for a file that has none
    config[-3] = cpt["weight"]["emb_g.weight"].shape[0]
    if resblock is not None:
        config[9] = resblock
    cfg = SynthConfig.from_rvc_list(config, version=cpt.get("version", "v1"), f0=bool(cpt.get("f0", 1)))
    return apply_weight_norm(Synthesizer(cfg, with_posterior=with_posterior))


def _finish(net: Synthesizer, weight: dict[str, torch.Tensor]) -> Synthesizer:
    net.load_state_dict({k: v.float() for k, v in weight.items()}, strict=False)  # shape mismatches still raise
    return remove_weight_norm(net).float().eval()


def rvc(path: Path) -> Synthesizer:
    cpt = _read(path)
    return _finish(_build(cpt), cpt["weight"])


def applio(path: Path) -> Synthesizer:
    cpt = _read(path)
    if cpt.get("vocoder", "HiFi-GAN") != "HiFi-GAN":
        raise ValueError(f"this loader models the HiFi-GAN vocoder, not {cpt['vocoder']}")
    net = _build(cpt, resblock="1")  # config[9] is never read
    net.embedder_model = cpt.get("embedder_model", "contentvec")
    return _finish(net, cpt["weight"])


def wokada(path: Path) -> Synthesizer:
    cpt = _read(path)
    if len(cpt["config"]) != 18:
        raise ValueError("w-okada's RVC slot expects the 18-item config")
    return _finish(_build(cpt, with_posterior=True), cpt["weight"])


LOADERS: dict[str, Callable[[Path], Synthesizer]] = {"RVC": rvc, "Applio": applio, "w-okada": wokada}
