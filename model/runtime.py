"""Generation and scoring as a Python loop over one compiled step (the int8 ONNX Runtime step).

    rt = StepRuntime(Int8Step(weights, cell, never_mask(chars)), chars)
    texts, states = rt.generate(prompts, states, length, temperature, top_k, top_p, seed, step)
    nll, chars, states = rt.score(texts, states)

The same contract as the SavedModel's `generate` and `score` (see `model.onestep`),
NumPy in and out. A step feeds one character to the rows that have one and returns
what comes next for every row, so each loop makes one step call per character; the
draw is `model.sampling`'s. Per character of the shipped model: one step (~15 MB of
int8 weights) and a few NumPy operations on [B, V].
"""

from __future__ import annotations

import numpy as np

from model import sampling


class StepRuntime:
    def __init__(self, step, chars: list[str]):
        # step(ids int64 [B], feed bool [B], states: S arrays [B, H], inv_temperature [B], outputs)
        #   -> ([the named outputs: "logits" and/or "probs", each [B, V']], new states)
        self.step = step
        self.chars = np.array(chars + [""] * (-len(chars) % sampling.BLOCK), dtype=object)  # [V'] (padded)
        self.ids = sampling.char_ids(chars)
        self.mask = np.pad(sampling.never_mask(chars), (0, len(self.chars) - len(chars)))

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Texts -> ids [B, T] (0-padded; an unknown character reads as [UNK]) and lengths [B]."""
        lengths = np.array([len(t) for t in texts], np.int64)
        ids = np.zeros((len(texts), int(lengths.max(initial=0))), np.int64)
        for row, text in enumerate(texts):
            ids[row, :len(text)] = [self.ids.get(c, 0) for c in text]
        return ids, lengths

    def generate(self, prompts: list[str], states: np.ndarray, length: int, temperature: np.ndarray,
                 top_k: np.ndarray, top_p: np.ndarray, seed: int, step: int) -> tuple[list[str], np.ndarray]:
        """Read each prompt, then sample `length` characters: (texts, states [S, B, H] after the last)."""
        b = len(prompts)
        inv_t = (1.0 / np.asarray(temperature, np.float32)).astype(np.float32)
        filtered = bool(np.any(top_k > 0) or np.any(top_p < 1.0))
        want = ("logits",) if filtered else ("probs",)  # with filters, NumPy applies the whole policy

        def next_probs(out):
            return sampling.probabilities(out[0], temperature, top_k, top_p, self.mask) if filtered else out[0]

        ids, lengths = self.encode(prompts)
        rows, out = list(states), None
        for t in range(ids.shape[1]):  # each row reads its prompt; rows with shorter ones keep their state
            out, rows = self.step(ids[:, t], t < lengths, rows, inv_t, want)
        if out is None:  # nothing to read: what comes next from each row's state as it is
            out, rows = self.step(np.zeros(b, np.int64), np.zeros(b, bool), rows, inv_t, want)
        u = sampling.noise(seed, step + np.arange(length), b)  # [length, B]
        chosen = np.zeros((b, length), np.int64)
        everyone = np.ones(b, bool)
        for i in range(length):
            chosen[:, i] = sampling.draw(next_probs(out), u[i])
            out, rows = self.step(chosen[:, i], everyone, rows, inv_t, want)  # the states read every character
        return ["".join(self.chars[r]) for r in chosen], np.stack(rows)

    def score(self, texts: list[str], states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(summed negative log-likelihood in nats [B] float64, characters [B], states [S, B, H])."""
        ids, lengths = self.encode(texts)
        b = len(texts)
        ones = np.ones(b, np.float32)
        (logits,), rows = self.step(np.zeros(b, np.int64), np.zeros(b, bool), list(states), ones, ("logits",))
        nll = np.zeros(b)
        for t in range(ids.shape[1]):
            live = t < lengths
            nll -= np.where(live, sampling.log_softmax(logits)[np.arange(b), ids[:, t]], 0.0)
            (logits,), rows = self.step(ids[:, t], live, rows, ones, ("logits",))
        return nll, lengths.astype(np.int32), np.stack(rows)
