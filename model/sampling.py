"""The sampling policy, apart from the network: logits in, character ids out (NumPy).

    u = noise(seed, steps, batch)                       # float64 [len(steps), B] in (0, 1)
    ids = sample(logits, u[i], temperature, top_k, top_p, mask)   # int64 [B]

`probabilities` scales each row's logits [B, V] by 1/temperature, drops the ids that
`mask` sets to -inf ([UNK] and the novels' tokens), keeps each row's top-k and then its
nucleus (top-p); `draw` picks one id per row by inverting the cumulative distribution
at u. The int8 graph applies the same formula and `draw`'s rule inside itself, in
float32 (`model.int8.draw`, tested against this one), when no filter is asked for;
with top-k or top-p, NumPy applies the whole policy here. The noise of step i
comes from (seed, i) alone, so 200 characters and then 200 more with step=200 are
the same 400 as one call of 400. `top_k` ≤ 0 and `top_p` ≥ 1 turn those filters off.
"""

from __future__ import annotations

import numpy as np


def never_mask(chars: list[str]) -> np.ndarray:
    """[V] float32 added to logits: -inf for ids never drawn ([UNK], id 0, and the novels' tokens of a
    "token" world, which are private-use characters), else 0."""
    never = np.array([i == 0 or 0xE000 <= ord(c[0]) <= 0xF8FF for i, c in enumerate(chars)])
    return np.where(never, -np.inf, 0.0).astype(np.float32)


def char_ids(chars: list[str]) -> dict[str, int]:
    """Character -> id for reading text. A character listed twice (a text character that is also a
    novel's token) reads as its first id; [UNK] (id 0) is never read (unknown text maps to it)."""
    ids: dict[str, int] = {}
    for i, c in enumerate(chars[1:], start=1):
        ids.setdefault(c, i)
    return ids


def noise(seed: int, steps: np.ndarray, batch: int) -> np.ndarray:
    """[len(steps), batch] uniforms in (0, 1): SplitMix64 of (seed, step, row), so each value depends on those
    three alone (a call of 400 steps draws what two calls of 200 draw)."""
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
        x = (np.uint64(int(seed) % 2**64) * np.uint64(0x9E3779B97F4A7C15)
             + np.asarray(steps, np.uint64)[:, None] * np.uint64(0xD1B54A32D192ED03)
             + np.arange(batch, dtype=np.uint64)[None, :] * np.uint64(0xABC98388FB8FAC03))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def filter_logits(logits: np.ndarray, top_k: np.ndarray, top_p: np.ndarray) -> np.ndarray:
    """[B, V] -> [B, V] with -inf outside each row's top_k likeliest and then its nucleus of mass top_p."""
    v = logits.shape[1]
    ranked = -np.sort(-logits, axis=1)  # descending
    k = np.where(top_k > 0, np.minimum(top_k, v), v)
    ranked = np.where(np.arange(v)[None, :] < k[:, None], ranked, -np.inf)
    p = np.exp(ranked - ranked[:, :1])
    before = (np.cumsum(p, axis=1) - p) / p.sum(axis=1, keepdims=True)  # mass ranked above each
    keep = (before < top_p[:, None]) | (np.arange(v)[None, :] == 0)  # the likeliest always stays
    threshold = ranked[np.arange(len(ranked)), keep.sum(axis=1) - 1]
    return np.where(logits < threshold[:, None], -np.inf, logits)


BLOCK = 64  # ids per block of `draw`'s two-level search (NumPy's cumsum along a long row is slow)


def probabilities(logits: np.ndarray, temperature: np.ndarray, top_k: np.ndarray, top_p: np.ndarray,
                  mask: np.ndarray | None = None) -> np.ndarray:
    """[B, V] logits -> [B, V] float32 probabilities: softmax(logits / temperature + mask), then filtered.

    mask [V] is 0, or -inf for ids never drawn ([UNK], the novels' tokens)."""
    x = logits / np.asarray(temperature, np.float32)[:, None]
    if mask is not None:
        x += mask
    if np.any(top_k > 0) or np.any(top_p < 1.0):  # the sort costs more than the rest: only when asked
        x = filter_logits(x, np.asarray(top_k), np.asarray(top_p))
    p = np.exp(x - x.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def draw(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One id per row of probs [B, V] (need not sum to 1), at the uniforms u [B] in (0, 1): int64 [B].

    Inverts the cumulative distribution in two levels (which block of BLOCK ids, then which
    id in it), so only [B, V/BLOCK] and [B, BLOCK] are summed in order. An id of probability
    0 is never drawn, however u and rounding fall."""
    b, v = probs.shape
    if v % BLOCK:
        probs = np.pad(probs, ((0, 0), (0, -v % BLOCK)))
    blocks = probs.reshape(b, -1, BLOCK)  # [B, nb, BLOCK]
    ends = np.cumsum(blocks @ np.ones(BLOCK, probs.dtype), axis=1, dtype=np.float64)  # [B, nb] mass up to each end
    target = u * ends[:, -1]
    rows = np.arange(b)
    # The first block whose cumulative mass reaches the target (never past the last block with mass) ...
    blk = np.minimum((ends < target[:, None]).sum(axis=1), ends.argmax(axis=1))
    within = np.cumsum(blocks[rows, blk], axis=1, dtype=np.float64)  # [B, BLOCK]
    rest = np.maximum(target - (ends[rows, blk] - within[:, -1]), np.finfo(np.float64).tiny)
    # ... then the first id in it whose cumulative mass reaches what is left (never one of mass 0).
    j = np.minimum((within < rest[:, None]).sum(axis=1), within.argmax(axis=1))
    return blk * BLOCK + j


def sample(logits: np.ndarray, u: np.ndarray, temperature: np.ndarray, top_k: np.ndarray, top_p: np.ndarray,
           mask: np.ndarray | None = None) -> np.ndarray:
    """One id per row of logits [B, V], drawn at u [B]: `probabilities` then `draw`."""
    return draw(probabilities(logits, temperature, top_k, top_p, mask), u)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """[B, V] float32 -> log-probabilities [B, V] float64."""
    x = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))
