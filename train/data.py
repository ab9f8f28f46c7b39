"""NumPy batching: training windows (random, or parallel streams for truncated BPTT)
and carried-state scoring for validation.

No TensorFlow here (the GPU machine has none): windows are plain int32 arrays that
`keras.Model.fit` takes under any backend.
"""

from __future__ import annotations

import math

import numpy as np

from train.config import TrainConfig


def steps_per_epoch(n_chars: int, cfg: TrainConfig) -> int:
    """Steps so that an epoch covers every training character once (on average, for random windows)."""
    if cfg.carry_state:  # whole windows of every stream, whatever the epoch's offset (< seq_len)
        return max(1, stream_length(n_chars, cfg) // cfg.seq_len)
    return max(1, n_chars // (cfg.batch_size * cfg.seq_len))


def stream_length(n_chars: int, cfg: TrainConfig) -> int:
    """Characters in each of the batch_size parallel streams of a carried-state epoch."""
    return (n_chars - cfg.seq_len - 1) // cfg.batch_size


def epoch_batches(ids: np.ndarray, cfg: TrainConfig, epoch: int, books: np.ndarray | None = None,
                  token_base: int = 0) -> tuple:
    """One epoch's (inputs, y, weight) in the order `fit` must see them (shuffle=False).

    inputs is x [N, T]; with cfg.world "state" or "input" it is [x, book [N]]; with "token" each
    window is x with its novel's token in front ([N, 1+T], y and weight grow alike).
    `books` [len(ids)] gives every training character's novel (1..K); `token_base` is
    the id of the "no novel" token, novel k's token is token_base + k.
    """
    if cfg.carry_state:
        return epoch_streams(ids, cfg, epoch)
    starts = window_starts(len(ids), cfg, epoch, books)
    x, y, w = windows_at(ids, cfg, starts)
    if cfg.world == "none":
        return x, y, w
    book = window_books(books, starts, cfg, epoch)
    if cfg.world in ("state", "input"):
        return [x, book], y, w
    token = (token_base + book)[:, None].astype(np.int32)
    join = lambda a, b: np.concatenate([a, b], axis=1)  # noqa: E731
    return join(token, x), join(x[:, :1], y), join(w[:, :1], w)


def window_books(books: np.ndarray, starts: np.ndarray, cfg: TrainConfig, epoch: int) -> np.ndarray:
    """int32 [N]: the novel each window starts in, or 0 ("no novel") for a book_drop share of them."""
    book = books[starts].astype(np.int32)
    dropped = np.random.default_rng([cfg.seed, epoch, 1]).random(len(book)) < cfg.book_drop
    return np.where(dropped, 0, book).astype(np.int32)


def epoch_streams(ids: np.ndarray, cfg: TrainConfig, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch for truncated BPTT: (x, y, weight), each [steps*batch, seq_len].

    The text (from a random offset below seq_len, so window edges move between
    epochs) is cut into batch_size streams laid side by side; batch t holds window t
    of every stream, so row i of batch t+1 continues row i of batch t and the
    model's carried state (see network.CarriedStateModel) follows each stream.
    """
    b, t = cfg.batch_size, cfg.seq_len
    length = stream_length(len(ids), cfg)
    if length < t:
        raise ValueError(f"training text has {len(ids)} characters, too few for {b} streams of one "
                         f"{t}-character window")
    steps = steps_per_epoch(len(ids), cfg)
    offset = int(np.random.default_rng([cfg.seed, epoch]).integers(0, t))
    starts = offset + np.arange(b) * length  # [B], where each stream begins
    # index[step, row, j] = starts[row] + step*t + j, for j in 0..t (t+1 ids: x and y overlap by t)
    index = starts[None, :, None] + (np.arange(steps) * t)[:, None, None] + np.arange(t + 1)[None, None, :]
    windows = ids[index].reshape(steps * b, t + 1)
    return windows[:, :-1], windows[:, 1:], np.ones((steps * b, t), dtype=np.float32)


def epoch_windows(ids: np.ndarray, cfg: TrainConfig, epoch: int,
                  books: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of random windows: (x, y, weight), each [steps*batch, burn_in+seq_len].

    y is x shifted by one character; weight is 0 on the burn-in prefix and 1 on the
    seq_len characters that count. Windows depend only on (seed, epoch), so a
    resumed run sees exactly the windows an uninterrupted one would.
    """
    return windows_at(ids, cfg, window_starts(len(ids), cfg, epoch, books))


def windows_at(ids: np.ndarray, cfg: TrainConfig, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, weight), each [len(starts), burn_in+seq_len], for windows beginning at `starts`."""
    span = cfg.burn_in + cfg.seq_len
    windows = ids[starts[:, None] + np.arange(span + 1)[None, :]]
    weight = np.ones((len(starts), span), dtype=np.float32)
    weight[:, : cfg.burn_in] = 0.0
    return windows[:, :-1], windows[:, 1:], weight


def window_starts(n_ids: int, cfg: TrainConfig, epoch: int, books: np.ndarray | None = None) -> np.ndarray:
    """Where each of an epoch's random windows begins; depends on (seed, epoch) alone.

    With book_balance < 1 (and `books`, the novel of every character, in runs), a
    window first draws its novel with probability ∝ length**book_balance, then a start
    inside that novel, so no window straddles two novels and short novels are seen more.
    """
    span = cfg.burn_in + cfg.seq_len
    if n_ids < span + 2:
        raise ValueError(f"training text has {n_ids} characters, fewer than one window ({span + 1})")
    rng = np.random.default_rng([cfg.seed, epoch])
    n = steps_per_epoch(n_ids, cfg) * cfg.batch_size
    if cfg.book_balance == 1.0 or books is None:
        return rng.integers(0, n_ids - span - 1, size=n)
    first = np.flatnonzero(np.r_[True, books[1:] != books[:-1]])  # where each novel begins
    lengths = np.diff(np.r_[first, n_ids]) - span - 1  # window starts available in each
    usable = lengths > 0
    if not usable.any():
        raise ValueError(f"no novel is longer than one window ({span + 1} characters)")
    weight = np.where(usable, np.maximum(lengths, 1), 0).astype(np.float64) ** cfg.book_balance * usable
    which = rng.choice(len(first), size=n, p=weight / weight.sum())
    return first[which] + (rng.random(n) * lengths[which]).astype(np.int64)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def score_streams(stepper, logits_layer, streams: list[np.ndarray], n_states: int, top: int, units: int,
                  chunk: int, start: np.ndarray | None = None,
                  books: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Negative log-likelihood (nats) and counts per stream, the state carried across chunks.

    All streams run side by side as one batch [S, chunk]. Every character is
    predicted: the first from the zero state (as a fresh reader would), each later
    one from the state after the characters before it — the same convention as the
    SavedModel's `score`. `top` is the index of the top layer's output h in the states.
    `start` [S_streams, ≥ n_states, units] is each stream's starting state (default zeros);
    `books` [S_streams], each stream's novel, goes to a stepper of an "input" world.
    """
    s = len(streams)
    longest = max(len(x) for x in streams)
    total = max(chunk, math.ceil(longest / chunk) * chunk)
    ids = np.zeros((s, total), dtype=np.int32)
    mask = np.zeros((s, total), dtype=bool)
    for i, x in enumerate(streams):
        ids[i, : len(x)] = x
        mask[i, : len(x)] = True
    states = ([np.zeros((s, units), dtype=np.float32) for _ in range(n_states)] if start is None
              else [np.ascontiguousarray(start[:, j], dtype=np.float32) for j in range(n_states)])
    nll = np.zeros(s, dtype=np.float64)
    # Logits for the first character of a chunk come from the previous step's output.
    prev = np.asarray(logits_layer(states[top]), dtype=np.float32)
    for start in range(0, total, chunk):
        x = ids[:, start:start + chunk]
        out = stepper.predict_on_batch([x, *states] + ([] if books is None else [books]))
        logits, states = np.asarray(out[0], dtype=np.float32), [np.asarray(a) for a in out[1:]]
        preds = np.concatenate([prev[:, None, :], logits[:, :-1, :]], axis=1)  # [S, chunk, V]
        lp = log_softmax(preds)
        picked = np.take_along_axis(lp, x[..., None], axis=-1)[..., 0]
        nll -= np.where(mask[:, start:start + chunk], picked, 0.0).sum(axis=1)
        prev = logits[:, -1, :]
    return nll, mask.sum(axis=1)

