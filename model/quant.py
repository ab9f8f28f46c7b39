"""8-bit weights: symmetric int8 with one float32 scale per output channel.

A matrix W [in, out] is stored as q = round(W / s) (int8, |q| ≤ 127) and s [out] =
max|W[:, j]| / 127, so W ≈ q * s; the error of any weight is at most s/2. An
embedding [V, E] is scaled per row (each character its own scale) the same way with
axis=1. Half the bytes of float16; used to bring big models back from the GPU machine.
"""

from __future__ import annotations

import numpy as np

LEVELS = 127  # int8 range used: [-127, 127], symmetric so that 0 stays exact
SEVEN_BIT_LEVELS = 63  # [-63, 63]: two products with a uint8 (255 · 63 · 2 = 32,130) fit in int16


def quantize(w: np.ndarray, axis: int = 0, levels: int = LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """(q int8 like w, scale float32 over the other axis): w ≈ q * scale, reducing over `axis`,
    |q| ≤ levels."""
    w = np.asarray(w, np.float32)
    scale = np.abs(w).max(axis=axis) / levels
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)  # an all-zero channel stays zero
    q = np.rint(w / np.expand_dims(scale, axis)).clip(-levels, levels).astype(np.int8)
    return q, scale


def dequantize(q: np.ndarray, scale: np.ndarray, axis: int = 0) -> np.ndarray:
    return q.astype(np.float32) * np.expand_dims(scale, axis)
