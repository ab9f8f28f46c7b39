"""Generation and scoring over the int8 step (model.int8): NumPy in and out.

    rt = StepRuntime(Int8Step(weights, cell, never_mask(chars)), chars)
    texts, states = rt.generate(prompts, states, length, temperature, top_k, top_p, seed, step)
    nll, chars, states = rt.score(texts, states)

The same contract as the SavedModel's `generate` and `score` (see `model.onestep`).
A step that can `run` N characters in one call (Int8Step) reads a prompt, writes a
chunk or scores a text in one call, with the draw in its graph; with top-k or top-p
(a sort per character, NumPy's) or a step that reads one character at a time (the
runtimes `bench.runtimes` compares), a Python loop makes one step call per
character and draws with `model.sampling`. Both draw at the uniforms of (seed, step),
so 200 characters and then 200 more with step=200 are the same 400 as one call of 400.
"""

from __future__ import annotations

import numpy as np

from model import repeats, sampling


class StepRuntime:
    def __init__(self, step, chars: list[str]):
        # step(ids int64 [B], feed bool [B], states: S arrays [B, H]) -> (logits [B, V'], new states);
        # and, if it has one, step.run(ids [N, B], feed [N, B], sample [N], u [N, B], states, inv_temperature [B])
        #   -> (chosen [N, B], nll [N, B], logits [B, V'], new states): N steps in one call.
        self.step = step
        self.in_graph = hasattr(step, "run")
        self.chars = np.array(chars + [""] * (-len(chars) % sampling.BLOCK), dtype=object)  # [V'] (padded)
        self.ids = sampling.char_ids(chars)
        self.mask = np.pad(sampling.never_mask(chars), (0, len(self.chars) - len(chars)))
        self.classes = np.pad(repeats.char_classes(chars), (0, len(self.chars) - len(chars)))  # [V']

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Texts -> ids [B, T] (0-padded; an unknown character reads as [UNK]) and lengths [B]."""
        lengths = np.array([len(t) for t in texts], np.int64)
        ids = np.zeros((len(texts), int(lengths.max(initial=0))), np.int64)
        for row, text in enumerate(texts):
            ids[row, :len(text)] = [self.ids.get(c, 0) for c in text]
        return ids, lengths

    def generate(self, prompts: list[str], states: np.ndarray, length: int, temperature: np.ndarray,
                 top_k: np.ndarray, top_p: np.ndarray, seed: int, step: int,
                 ban_loops: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
        """Read each prompt, then sample `length` characters: (texts, states [S, B, H] after the last).
        Rows where ban_loops [B] (default all) never complete a loop and are held off repeating phrases
        (model.repeats)."""
        b = len(prompts)
        ban = np.ones(b, bool) if ban_loops is None else np.asarray(ban_loops, bool)
        ids, lengths = self.encode(prompts)
        u = sampling.noise(seed, step + np.arange(length), b)  # [length, B]
        inv_t = (1.0 / np.asarray(temperature, np.float32)).astype(np.float32)
        if self.in_graph and not (np.any(top_k > 0) or np.any(top_p < 1.0)):
            chosen, _, _, rows = self._run(ids, lengths, list(states), u, inv_t, ban)
        else:
            logits, rows = self._read(ids, lengths, list(states))
            chosen = np.zeros((b, length), np.int64)
            everyone = np.ones(b, bool)
            width = repeats.history_width(rows[-1].shape[1])  # the recent characters' row (model.onestep)
            table = repeats.loop_table(width)
            for i in range(length):
                recent = rows[-1][:, :width].astype(np.int64)
                matches = rows[-1][:, width:2 * width].astype(np.int64)
                bans = repeats.ban_mask(recent, self.classes, table, len(self.chars))
                mask = self.mask + np.where(ban[:, None], bans, 0.0)
                penalty = np.where(ban[:, None], repeats.penalty_mask(recent, matches, logits + self.mask), 0.0)
                chosen[:, i] = sampling.sample(logits - penalty, u[i], temperature, top_k, top_p, mask)
                logits, rows = self.step(chosen[:, i], everyone, rows)  # the states read every character
        return ["".join(self.chars[r]) for r in chosen], np.stack(rows)

    def _run(self, ids, lengths, rows, u=None, inv_t=None, ban=None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        """One call of step.run: each row reads its ids [B, T] up to its length (a shorter prompt's row keeps
        its state meanwhile), then len(u) steps draw at the uniforms u [L, B] (none without u).
        (chosen [B, L], nll [T, B] of the characters read (0 past a row's length), logits [B, V'], states)"""
        b = len(ids)
        u = np.zeros((0, b)) if u is None else u
        if ids.shape[1] + len(u) == 0:  # one step that no row reads: the logits of the states as they are
            ids, lengths = np.zeros((b, 1), np.int64), np.zeros(b, np.int64)
        t, n = ids.shape[1], ids.shape[1] + len(u)
        feed = np.ones((n, b), bool)
        feed[:t] = np.arange(t)[:, None] < lengths[None, :]
        every_id = np.concatenate([ids.T, np.zeros((len(u), b), np.int64)])
        every_u = np.concatenate([np.zeros((t, b)), u]).astype(np.float32)
        inv_t = np.ones(b, np.float32) if inv_t is None else inv_t
        chosen, nll, logits, rows = self.step.run(every_id, feed, np.arange(n) >= t, every_u, rows, inv_t, ban)
        return chosen[t:].T, np.where(feed[:t], nll[:t], 0.0), logits, rows

    def _read(self, ids, lengths, rows) -> tuple[np.ndarray, list]:
        """Each row reads its prompt: (logits [B, V'] of what comes next, states). With nothing to read,
        the logits from the states as they are."""
        if self.in_graph:
            _, _, logits, rows = self._run(ids, lengths, rows)
            return logits, rows
        b, t = ids.shape
        logits = None
        for i in range(t):  # rows with shorter prompts keep their state
            logits, rows = self.step(ids[:, i], i < lengths, rows)
        if logits is None:
            logits, rows = self.step(np.zeros(b, np.int64), np.zeros(b, bool), rows)
        return logits, rows

    def score(self, texts: list[str], states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(summed negative log-likelihood in nats [B] float64, characters [B], states [S, B, H])."""
        ids, lengths = self.encode(texts)
        b, t = ids.shape
        rows, nll = list(states), np.zeros(b)
        if self.in_graph and t:
            _, step_nll, _, rows = self._run(ids, lengths, rows)
            nll = step_nll.sum(axis=0, dtype=np.float64)
        elif t:
            logits, rows = self.step(np.zeros(b, np.int64), np.zeros(b, bool), rows)
            for i in range(t):
                live = i < lengths
                nll -= np.where(live, sampling.log_softmax(logits)[np.arange(b), ids[:, i]], 0.0)
                logits, rows = self.step(ids[:, i], live, rows)
        return nll, lengths.astype(np.int32), np.stack(rows)
