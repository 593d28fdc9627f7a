"""Cosines of float32 vectors as the store keeps them (little-endian bytes).

A pair whose two texts are the same is 1 without a vector; an empty answer has no vector:
two empty answers are 1, one empty answer against text is 0 (nothing of it is said).
A vector of zeros (a server's placeholder) has no direction: its cosine is 0.
"""

from __future__ import annotations

import numpy as np

from replay.embeddings.texts import EMPTY_DIGEST


def pair_cosine(base_digest: str, cand_digest: str, vectors: dict[str, bytes]) -> float | None:
    """The cosine of one pair's answers (by their texts' digests), or None while a vector it needs is missing."""
    if base_digest == cand_digest:
        return 1.0
    if EMPTY_DIGEST in (base_digest, cand_digest):
        return 0.0
    if base_digest not in vectors or cand_digest not in vectors:
        return None
    return float(cosines([vectors[base_digest]], [vectors[cand_digest]])[0])


def cosines(left: list[bytes], right: list[bytes]) -> np.ndarray:
    """Row by row, the cosine of ``left[i]`` and ``right[i]`` (equal lengths), clipped to [-1, 1]."""
    a = _matrix(left)
    b = _matrix(right)
    if a.shape != b.shape:
        raise ValueError(f"vectors of {a.shape[1]} and {b.shape[1]} dimensions cannot be compared (the model changed?)")
    dot = np.einsum("ij,ij->i", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(norms > 0, dot / np.where(norms > 0, norms, 1), 0.0)
    return np.clip(out, -1.0, 1.0)


def _matrix(blobs: list[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, 0))
    sizes = {len(blob) for blob in blobs}
    if len(sizes) > 1:
        raise ValueError("vectors of different dimensions cannot be compared (the model changed?)")
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1).astype(np.float64)
