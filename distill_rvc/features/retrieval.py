"""RVC's retrieval from the voice's faiss index, and the consonant protection that tempers it.

    import_faiss()                          faiss, without its loader's INFO lines
    RetrievalIndex(path)                    a voice's added_IVF*.index and its vectors [N, C]
    retrieve(feats, index, vectors, rate)   [T, C] -> [T, C]: the k nearest training vectors blended in
    protect_mix(feats, feats0, pitchf, p)   [T, C]: all of the retrieval where voiced, p of it elsewhere

`convert` applies these per chunk (rvc-format.md §5.3, §5.4). Not here: the content features
themselves (content.py) or building an index (RVC's train_index).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import DistillRVCError


def import_faiss():
    """`import faiss` without its loader's INFO lines ("Loading faiss with AVX2 support", a
    ModuleNotFoundError for the AVX512 build it tried first, ...), which it logs even when it works.
    They stay visible with -v (the root logger at DEBUG)."""
    loggers = [logging.getLogger(name) for name in ("faiss", "faiss.loader")]
    levels = [lg.level for lg in loggers]
    quiet = logging.getLogger().getEffectiveLevel() > logging.DEBUG
    try:
        for lg in loggers:
            if quiet:
                lg.setLevel(logging.WARNING)
        import faiss
    except ImportError:
        raise DistillRVCError("--index needs faiss: pip install 'distill-rvc[faiss]' (faiss-cpu)") from None
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    return faiss


class RetrievalIndex:
    """A faiss index of the voice's training features (RVC's added_IVF*.index) and its vectors."""

    def __init__(self, path: str | Path):
        faiss = import_faiss()
        path = Path(path)
        if not path.is_file():
            raise DistillRVCError(f"{path}: no such index file")
        try:
            self.index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise DistillRVCError(f"{path}: not a faiss index ({str(e).splitlines()[0][:100]})") from None
        if self.index.ntotal == 0:
            raise DistillRVCError(f"{path}: the index is empty")
        self.vectors = self.index.reconstruct_n(0, self.index.ntotal)  # [N, C]
        self.dim = self.index.d
        self.path = path


def retrieve(feats: np.ndarray, index, vectors: np.ndarray, rate: float, k: int = 8) -> np.ndarray:
    """RVC's retrieval on 50 Hz features [T, C]: the k nearest training vectors (squared L2)
    weighted by 1 / distance^2, blended in at `rate`: rate * retrieved + (1 - rate) * feats."""
    k = min(k, len(vectors))
    query = np.ascontiguousarray(feats, dtype=np.float32)
    dist, idx = index.search(query, k)  # [T, k] each; idx -1 where fewer than k were found
    # An exact match has distance 0: keep it finite, so it simply dominates.
    weight = np.where(idx >= 0, 1.0 / np.maximum(dist.astype(np.float64), 1e-12) ** 2, 0.0)
    weight /= weight.sum(axis=1, keepdims=True)
    retrieved = np.einsum("tk,tkc->tc", weight, vectors[np.maximum(idx, 0)].astype(np.float64))
    return (rate * retrieved + (1.0 - rate) * feats).astype(np.float32)


def protect_mix(feats: np.ndarray, feats0: np.ndarray, pitchf: np.ndarray, protect: float) -> np.ndarray:
    """RVC's consonant protection on 100 Hz frames: keep the retrieved features where voiced
    (pitchf >= 1 Hz) and only `protect` of them elsewhere: w * feats + (1 - w) * feats0."""
    w = np.where(pitchf >= 1.0, 1.0, protect).astype(np.float32)[:, None]
    return feats * w + feats0 * (1.0 - w)
