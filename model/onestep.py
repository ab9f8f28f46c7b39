"""The OneStep SavedModel: a character RNN that samples and scores inside the graph.

Built from plain NumPy weights (see `train.network.export_weights`), so the artifact
depends on nothing but TensorFlow: `tf.saved_model.load(path)` in a fresh process can
generate. Weights are stored in float16, or (storage "int8") the matrices in 8 bits with a
float32 scale per output column (the embedding: per character), and computed in float32.

The contract (every function has a fixed input signature):

    initial_state(books: int32 [B])                       -> float32 [S, B, H]: each row's novel's
                                                             starting state (0 = no novel: today's zeros
                                                             for a model without a world)
    generate(prompts: string [B], states: float32 [S, B, H], length: int32 [],
             temperature: float32 [B], top_k: int32 [B], top_p: float32 [B],
             seed: int64 [], step: int64 [], ban_loops: bool [B])
        -> {"text": string [B], "states": float32 [S, B, H]}
    score(texts: string [B], states: float32 [S, B, H])
        -> {"nll": float64 [B], "chars": int32 [B], "states": float32 [S, B, H]}

S is the number of state vectors (one per GRU layer, two per LSTM layer) and H the
units per layer; a model of world "input" has one more row, carried unchanged, whose first
value is the story's novel id: that novel's vector projected into layer 0's gates
(`book_gates` [K+1, G*H]) is added to them at every character, so the state alone says
which novel a story is in. The last row holds the ids of the last W = min(512, H/2) characters
read or written (float32, exact; the newest in column W-1, 0 before any) and in columns W:2W
how much of the text's end the text up to each of them repeats (model.repeats.matched): where ban_loops,
`generate` never writes the character that would complete a stutter loop after them
(model.repeats: no unit of 1–4 hanzi a third time in a row) and takes the phrase penalty off
the logits of characters that would go on repeating a phrase of them (model.repeats), across
calls too.
`generate` first reads each prompt (an empty prompt continues from the states as they
are), then samples `length` characters; the returned states have read every sampled
character, so a later call continues exactly where this one stopped. Sampling noise for
step i comes from (seed, step + i): 200 characters and then 200 more with step=200 are
the same 400 characters as one call of 400. `top_k` ≤ 0 and `top_p` ≥ 1 turn those
filters off; temperature must be finite and > 0. [UNK] (id 0) is never sampled. `score`
predicts every character of each text, the first from the state given, and returns the
summed negative log-likelihood.
The card (model.json) lists the novels by id ("books") with the names each makes
frequent; `model.artifact` picks a novel from a prompt with them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from model.card import FORMAT, ModelCard, write_card
from model.quant import quantize
from model.repeats import PHRASE_MAX, PHRASE_SURE, char_classes, history_width, loop_table, phrase_amounts
from model.sampling import char_ids, never_mask
from model.weights import Weights

STORE = tf.float16  # on-disk dtype of the weights
COMPUTE = tf.float32
STORAGES = ("float16", "int8")  # how the matrices are kept on disk (the card's architecture.storage)


class Quantized(tf.Module):
    """A matrix kept in 8 bits with a float32 scale per output column (axis 0: [in, out]) or per row
    (axis 1: the embedding, each character its own), as `model.quant` makes them: half of float16's
    bytes. Widened to float32 once per call, like the float16 weights."""

    def __init__(self, a, axis: int):
        super().__init__(name="quantized")
        q, scale = quantize(a, axis=axis)
        self.q = tf.Variable(q, trainable=False)
        self.scale = tf.Variable(scale, trainable=False)
        self.axis = axis

    def dense(self):
        scale = self.scale[None, :] if self.axis == 0 else self.scale[:, None]
        return tf.cast(self.q, COMPUTE) * scale

    def rows(self, ids):
        """Rows `ids` of a per-row matrix (the embedding), float32 [B, E]."""
        return tf.cast(tf.gather(self.q, ids), COMPUTE) * tf.gather(self.scale, ids)[:, None]


def widened(v):
    """A stored matrix or vector as float32 (once per call)."""
    return v.dense() if isinstance(v, Quantized) else tf.cast(v, COMPUTE)


class OneStep(tf.Module):
    def __init__(self, weights: Weights, chars: list[str], cell: str, card: dict, dtype=STORE,
                 fold_input: bool = False, storage: str = "float16"):
        super().__init__(name="onestep")
        if cell not in ("gru", "lstm"):
            raise ValueError(f"unknown cell {cell!r}")
        self.cell = cell
        self.n_layers = len(weights.rnn)
        self.units = weights.units
        self.per_layer = 1 if cell == "gru" else 2
        self.n_recurrent = self.n_layers * self.per_layer
        self.n_novel = int(np.shape(weights.book_states)[1]) - self.n_recurrent  # 1: a novel row (world "input")
        self.n_states = self.n_recurrent + self.n_novel + 1  # and last, the recent characters (model.repeats)
        vocab_size = len(chars)

        if storage not in STORAGES:
            raise ValueError(f"unknown storage {storage!r}")
        store = lambda a: tf.Variable(np.asarray(a), dtype=dtype, trainable=False)  # noqa: E731
        # The matrices (all but a few KB of the weights): 8 bits with scales, or as `dtype`.
        matrix = (lambda a, axis=0: Quantized(a, axis)) if storage == "int8" else (lambda a, axis=0: store(a))
        self.embedding = matrix(weights.embedding, axis=1)  # [V, E]
        self.kernels = [matrix(w.kernel) for w in weights.rnn]  # [in, G*H]
        self.recurrents = [matrix(w.recurrent) for w in weights.rnn]  # [H, G*H]
        self.biases = [store(w.bias) for w in weights.rnn]  # GRU [2, 3H]; LSTM [4H]
        self.dense_kernel = matrix(weights.dense_kernel)  # [H, V]
        self.dense_bias = store(weights.dense_bias)  # [V]
        # [K+1, S, H] float32: the state each novel starts from (row 0: no novel). Small, and read
        # once per story, so kept exact.
        self.book_states = tf.Variable(np.asarray(weights.book_states, np.float32), trainable=False)
        if self.n_novel:  # [K+1, G*H]: each novel's share of layer 0's gates
            self.book_gates = store(weights.book_gates)

        self.vocab = tf.Variable(chars, dtype=tf.string, trainable=False)
        first = char_ids(chars)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(list(first)), tf.constant(list(first.values()), tf.int32)),
            default_value=0)  # anything unseen reads as [UNK]
        self.num_states = tf.Variable(self.n_states, trainable=False)
        self.state_units = tf.Variable(self.units, trainable=False)
        self.vocab_size = tf.Variable(vocab_size, trainable=False)
        self.format = tf.Variable(FORMAT, trainable=False)
        self.card = tf.Variable(json.dumps(card, ensure_ascii=False), trainable=False)
        self.folded = None
        if fold_input:  # [V, G*H] float32: a gather instead of a matmul per character (in-process only)
            first = weights.rnn[0]
            table = (weights.embedding.astype(np.float32) @ first.kernel.astype(np.float32)
                     + self._input_bias(first.bias))
            self.folded = tf.Variable(table.astype(np.float32), trainable=False)
        self._unk_mask = tf.constant(never_mask(chars))  # [V]: -inf for ids never sampled
        # The ban on loops (model.repeats): each id's class, and which places of the recent characters
        # [B, W] each loop shape compares.
        self.width = history_width(self.units)  # recent characters kept in the last state row
        loops = loop_table(self.width)
        self._amounts = tf.constant(phrase_amounts())  # [PHRASE_MAX + 1]: the phrase penalty per match length
        self._classes = tf.constant(char_classes(chars).astype(np.int32))  # [V]
        self._same = (tf.constant(loops.same_a), tf.constant(loops.same_b))  # [P, M] each
        self._kind_at, self._kind = tf.constant(loops.kind_at), tf.constant(loops.kind.astype(np.int32))  # [P, N]
        self._banned_at = tf.constant(loops.banned_at)  # [P]

    # ---- the recurrent core -------------------------------------------------------

    def _weights(self):
        """Float32 copies, made once per call (not per character)."""
        f = widened
        return ([f(k) for k in self.kernels], [f(r) for r in self.recurrents], [f(b) for b in self.biases],
                f(self.dense_kernel), f(self.dense_bias))

    def _input(self, w, ids, novel=None):
        """Layer 0's input projection with its input bias, [B] ids -> [B, G*H]; plus each row's novel
        gates [B, G*H] (world "input", from `_novel_gates`) when given."""
        if self.folded is not None:  # embedding @ kernel + bias, precomputed per character
            gx = tf.gather(self.folded, ids)
        else:
            kernels, _, biases, _, _ = w
            gx = tf.matmul(self._embed(ids), kernels[0]) + self._input_bias(biases[0])
        return gx if novel is None else gx + novel

    def _novel_gates(self, states):
        """World "input": each row's novel's share of layer 0's gates [B, G*H], looked up once per call
        from the novel row of the states (the novel's id in column 0); None for other models."""
        if not self.n_novel:
            return None
        return tf.cast(tf.gather(self.book_gates, tf.cast(states[self.n_recurrent][:, 0], tf.int32)), COMPUTE)

    def _input_bias(self, bias):
        return bias[0] if self.cell == "gru" else bias  # GRU keeps input and recurrent biases apart

    def _cell(self, w, gx0, states):
        """One character for every row: layer 0's input projection gx0 [B, G*H] (with the novel's gates,
        see `_input`) and the states (a tuple of S tensors [B, H]) -> (new states tuple, top h [B, H])."""
        kernels, recurrents, biases, _, _ = w
        carried = states[self.n_recurrent:]  # the novel row (world "input") and the recent characters, as they are
        new, gx = [], gx0
        for i in range(self.n_layers):
            if i > 0:  # the layer below's new h is this layer's input
                gx = tf.matmul(new[-self.per_layer], kernels[i]) + self._input_bias(biases[i])
            if self.cell == "gru":  # Keras GRU, reset_after=True, gate order z, r, h
                h = states[i]
                gh = tf.matmul(h, recurrents[i]) + biases[i][1]
                x_zr, xh = tf.split(gx, [2 * self.units, self.units], axis=-1)
                h_zr, hh = tf.split(gh, [2 * self.units, self.units], axis=-1)
                z, r = tf.split(tf.sigmoid(x_zr + h_zr), 2, axis=-1)
                h = z * h + (1.0 - z) * tf.tanh(xh + r * hh)
                new.append(h)
            else:  # Keras LSTM, gate order i, f, c, o
                h, c = states[2 * i], states[2 * i + 1]
                g = gx + tf.matmul(h, recurrents[i])
                gi, gf, gc, go = tf.split(g, 4, axis=-1)
                c = tf.sigmoid(gf) * c + tf.sigmoid(gi) * tf.tanh(gc)
                h = tf.sigmoid(go) * tf.tanh(c)
                new.extend([h, c])
        return tuple(new) + tuple(carried), h

    def _char(self, w, ids, novel, states):
        """Every row reads ids [B]: (new states tuple, with ids last among the recent characters and their
        match lengths grown (model.repeats.matched); top h [B, H])."""
        new, top = self._cell(w, self._input(w, ids, novel), states)
        row, n = new[-1], self.width  # [B, H]: ids (as float32, exact) in columns :n, the newest last; matches n:2n
        chars = tf.cast(ids, COMPUTE)[:, None]
        recent = tf.concat([row[:, 1:n], chars], axis=1)
        grown = tf.where(recent[:, :-1] == chars, tf.minimum(row[:, n:2 * n - 1] + 1.0, PHRASE_MAX), 0.0)
        pushed = tf.concat([recent, grown, tf.zeros_like(chars), row[:, 2 * n:]], axis=1)
        return new[:-1] + (pushed,), top

    def _loop_bans(self, states, ban):
        """[B, V]: -inf at each id that would complete a loop after the recent characters (rows where
        ban [B]), else 0 (model.repeats.loop_bans, the same tables)."""
        recent = tf.cast(states[-1][:, :self.width], tf.int32)  # [B, W]
        kinds = tf.gather(self._classes, recent)
        same = tf.reduce_all(tf.gather(recent, self._same[0], axis=1) == tf.gather(recent, self._same[1], axis=1),
                             axis=2)
        hit = same & tf.reduce_all(tf.gather(kinds, self._kind_at, axis=1) == self._kind, axis=2) & ban[:, None]
        ids = tf.gather(recent, self._banned_at, axis=1)  # [B, P]
        rows = tf.broadcast_to(tf.range(tf.shape(ids)[0])[:, None], tf.shape(ids))
        where = tf.reshape(tf.stack([rows, ids], axis=-1), [-1, 2])
        penalty = tf.reshape(tf.where(hit, -np.inf, 0.0), [-1])  # summed where two shapes ban one id
        return tf.scatter_nd(where, penalty, [tf.shape(ids)[0], tf.shape(self._classes)[0]])

    def _phrase_penalised(self, logits, states, ban):
        """logits [B, V] (temperature 1, never mask in) less the phrase penalty after the recent characters,
        in the rows where ban [B] (model.repeats.phrase_penalties' formula)."""
        n = self.width
        ids = tf.cast(states[-1][:, 1:n], tf.int32)  # [B, W-1]: the character after each earlier place
        matched = tf.cast(states[-1][:, n:2 * n - 1], tf.int32)  # [B, W-1]
        log_p = tf.gather(logits, ids, batch_dims=1) - tf.reduce_logsumexp(logits, axis=1, keepdims=True)
        keep = (log_p <= np.log(PHRASE_SURE)) & ban[:, None]
        taken = tf.where(keep, tf.gather(self._amounts, matched), 0.0)
        rows = tf.broadcast_to(tf.range(tf.shape(ids)[0])[:, None], tf.shape(ids))
        return tf.tensor_scatter_nd_sub(logits, tf.stack([rows, ids], axis=-1), taken)

    def step(self, ids, states):
        """One character for every row, outside any exported function (for converters such as TFLite):
        ids int32 [B], states [S, B, H] -> (logits [B, V] of the next character, new states [S, B, H])."""
        w = self._weights()
        states = self._unstack(states)
        new, top = self._char(w, ids, self._novel_gates(states), states)
        return self._logits(w, top), tf.stack(new)

    def _unstack(self, states):
        """[S, B, H] -> a tuple of S tensors [B, H]: the loops carry the states unstacked."""
        return tuple(tf.unstack(states, num=self.n_states))

    @staticmethod
    def _keep(live, new, old):
        """Per row: the new state where live [B], else the old one."""
        return tuple(tf.where(live[:, None], n, o) for n, o in zip(new, old))

    def _logits(self, w, top):
        return tf.matmul(top, w[3]) + w[4]  # [B, V]

    def _embed(self, ids):
        if isinstance(self.embedding, Quantized):
            return self.embedding.rows(ids)
        return tf.cast(tf.gather(self.embedding, ids), COMPUTE)  # [B, E]

    def _encode(self, texts):
        """Strings [B] -> ids [B, T] (0-padded) and lengths [B]. Bad UTF-8 reads as [UNK]."""
        chars = tf.strings.unicode_split(texts, "UTF-8", errors="replace")
        ids = self.table.lookup(chars)
        return ids.to_tensor(0), tf.cast(ids.row_lengths(), tf.int32)

    def _top(self, states):
        return states[(self.n_layers - 1) * self.per_layer]

    def _read(self, w, ids, lengths, states):
        """Feed each row's ids up to its length; rows that are done keep their state."""
        novel = self._novel_gates(states)

        def body(t, states):
            new, _ = self._char(w, ids[:, t], novel, states)
            return t + 1, self._keep(t < lengths, new, states)

        _, states = tf.while_loop(lambda t, s: t < tf.shape(ids)[1], body, (tf.constant(0), states))
        return states

    # ---- sampling policy ----------------------------------------------------------

    def _filter(self, logits, top_k, top_p):
        """Mask logits outside each row's top-k and nucleus (top-p); [B, V] -> [B, V]."""
        v = tf.shape(logits)[1]
        ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
        k = tf.where(top_k > 0, tf.minimum(top_k, v), v)
        ranked = tf.where(tf.range(v)[None, :] < k[:, None], ranked, -np.inf)
        before = tf.math.cumsum(tf.nn.softmax(ranked), axis=-1, exclusive=True)  # mass ranked above each
        keep = tf.where((before < top_p[:, None]) | (tf.range(v)[None, :] == 0), 1, 0)
        last = tf.reduce_sum(keep, axis=-1) - 1
        threshold = tf.gather(ranked, last, batch_dims=1)
        return tf.where(logits < threshold[:, None], -np.inf, logits)

    def _sample(self, logits, seed):
        """Gumbel-max sampling from scaled logits [B, V] (temperature, [UNK] and filters applied) -> ids [B]."""
        u = tf.random.stateless_uniform(tf.shape(logits), seed=seed, minval=1e-20, maxval=1.0)
        return tf.argmax(logits - tf.math.log(-tf.math.log(u)), axis=-1, output_type=tf.int32)

    # ---- the exported functions ---------------------------------------------------

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def initial_state(self, books):
        tf.debugging.assert_less(books, tf.shape(self.book_states, out_type=tf.int32)[0],
                                 message="no such novel id (the card lists them)")
        tf.debugging.assert_non_negative(books, message="novel ids start at 0 (no novel)")
        start = tf.transpose(tf.gather(self.book_states, books), [1, 0, 2])  # [B, S-1, H] -> [S-1, B, H]
        return tf.concat([start, tf.zeros_like(start[:1])], axis=0)  # no recent characters yet

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string), tf.TensorSpec([None, None, None], tf.float32),
        tf.TensorSpec([], tf.int32), tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.int64),
        tf.TensorSpec([None], tf.bool)])
    def generate(self, prompts, states, length, temperature, top_k, top_p, seed, step, ban_loops):
        tf.debugging.assert_equal(
            tf.reduce_all(tf.math.is_finite(temperature) & (temperature > 0.0)), True,
            message="temperature must be finite and > 0")
        tf.debugging.assert_greater_equal(length, 0, message="length must be >= 0")
        w = self._weights()
        ids, lengths = self._encode(prompts)
        states = self._read(w, ids, lengths, self._unstack(states))
        # Per call, not per character: [UNK] masked into the bias, temperature as a factor.
        bias = w[4] + self._unk_mask
        inv_t = 1.0 / temperature[:, None]
        novel = self._novel_gates(states)

        def run(filtered: bool):
            def body(i, states, out):
                logits = tf.matmul(self._top(states), w[3]) + bias
                logits = self._phrase_penalised(logits, states, ban_loops) * inv_t + self._loop_bans(states, ban_loops)
                if filtered:
                    logits = self._filter(logits, top_k, top_p)
                chosen = self._sample(logits, tf.stack([seed, step + tf.cast(i, tf.int64)]))
                states, _ = self._char(w, chosen, novel, states)
                return i + 1, states, out.write(i, chosen)

            out = tf.TensorArray(tf.int32, size=length)
            _, new, out = tf.while_loop(lambda i, s, o: i < length, body, (tf.constant(0), states, out))
            return new, tf.reshape(out.stack(), [length, -1])

        # The filters' sort costs more than the rest of a step: loop without it when all are off.
        filtering = tf.reduce_any(top_k > 0) | tf.reduce_any(top_p < 1.0)
        states, chosen = tf.cond(filtering, lambda: run(True), lambda: run(False))
        text = tf.strings.reduce_join(tf.gather(self.vocab, tf.transpose(chosen)), axis=1)  # [B]
        return {"text": text, "states": tf.stack(states)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None, None, None], tf.float32)])
    def score(self, texts, states):
        w = self._weights()
        ids, lengths = self._encode(texts)
        states = self._unstack(states)
        novel = self._novel_gates(states)

        def body(t, states, nll):
            logp = tf.nn.log_softmax(self._logits(w, self._top(states)))
            picked = tf.gather(logp, ids[:, t], batch_dims=1)
            live = t < lengths
            nll += tf.where(live, -tf.cast(picked, tf.float64), 0.0)
            new, _ = self._char(w, ids[:, t], novel, states)
            return t + 1, self._keep(live, new, states), nll

        _, states, nll = tf.while_loop(
            lambda t, s, n: t < tf.shape(ids)[1], body,
            (tf.constant(0), states, tf.zeros([tf.shape(ids)[0]], tf.float64)))
        return {"nll": nll, "chars": lengths, "states": tf.stack(states)}


def export(weights: Weights, chars: list[str], card: ModelCard, path) -> None:
    """Build the OneStep module and write it as a SavedModel, with model.json (the card) beside it; the
    matrices stored as the card's architecture.storage says (float16, or int8 with scales)."""
    module = OneStep(weights, chars, card.architecture.cell, card.to_json(), storage=card.architecture.storage)
    tf.saved_model.save(module, str(path))
    write_card(card, Path(path))
