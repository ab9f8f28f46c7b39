"""Characters of the OneStep network as one ONNX graph with 8-bit weights, run by ONNX Runtime.

    step = Int8Step(weights, cell, never_mask(chars))   # weights as CharModel.weights() returns them
    chosen, nll, logits, states = step.run(ids, feed, sample, u, states, inv_temperature, ban)
    logits, states = step(ids[0], feed[0], states)      # one step (bench.runtimes' Python loop)

One call runs N steps in an ONNX Loop, so a 64-character chunk is one call rather than
64. Inputs: ids int64 [N, B], feed bool [N, B], sample bool [N], u float32 [N, B],
inv_temperature float32 [B], ban bool [B], states (S arrays float32 [B, H]); a world
"input" model's novel row (the novel's id in column 0) becomes that novel's share of layer
0's gates, input "novel" [B, G*H], and comes back as it went in; the last row's first W
columns, the recent characters (model.onestep), are input "recent" int64 [B, W], and its
next W their match lengths, input "matches" [B, W]. Step t first picks each row's
character: ids[t], or where sample[t], one drawn from softmax((logits - phrase penalty) /
temperature + never mask + loop bans) at the uniform u[t] (`draw` below:
`model.sampling.draw`'s rule, in float32; the policy, where ban: `model.repeats`);
nll[t] = -log p(that character) at temperature 1 (what `score` sums). Then the rows where
feed[t] read it (the others keep their state and recent characters) and logits [B, V'] of
what comes next follow from the new states. Outputs: chosen int64 [N, B], nll float32 [N, B], the
last logits [B, V'] (V' is the vocabulary padded with -inf logits to whole blocks of
`model.sampling.draw`), the new recent characters and matches, and the new states.
Reading a text (feed, no sample), writing (sample, feed) and scoring (nll) are all this one
call (`model.runtime` chooses N).

Every matrix read per character is 8-bit with float32 scales (`model.quant`); layer 0's
input projection is folded with the embedding into one table [V, G*H] (int8, a scale
per character): a gather instead of a matmul. The shipped 2×1024 model reads ~15 MB
of weights per character instead of ~58 MB in float32. Two kernels of ONNX Runtime,
each where it is fastest (measured with `python -m bench.runtimes`):
  "gemm"  DynamicQuantizeMatMul: int8 × uint8 (activations quantized per call), one scale
          per output column; fast for several rows (AVX-512 VNNI / AMX on this CPU). On a
          CPU without VNNI its kernel adds products in pairs into int16, which saturates
          for weights near ±127 (measured under `qemu-x86_64 -cpu Haswell`: 30,120 for
          46,706); there the weights are 7-bit, ±63, whose pairs fit (`weight_bits`).
  "gemv"  MatMulNBits, 8 bits in blocks of up to 256 inputs with a scale each, int8
          arithmetic (accuracy_level 4): LLM-decoding kernels, fastest for one row.
Int8Step runs "gemv" for a batch of `gemv_rows` rows or fewer and "gemm" above that:
GEMV_ROWS until `calibrate()` (CharModel.warm_up) times both kernels on this CPU for 2 to
CALIBRATE_ROWS rows, as bot.choices' beats run them (measured: "gemv" wins at 2 rows on an
Intel Xeon with AMX, and up to 4 on an AMD EPYC, where "gemm" costs ~1.45x one row at 4).
"float32" (plain MatMul) exists to measure ONNX Runtime itself against TensorFlow.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from model.quant import LEVELS, SEVEN_BIT_LEVELS, quantize
from model.repeats import PHRASE_MAX, PHRASE_SURE, char_classes, history_width, loop_table, phrase_amounts
from model.sampling import BLOCK
from model.weights import Weights

OPSET = 17
MS = "com.microsoft"  # ONNX Runtime's contrib operators
FLOAT, INT64, BOOL = 1, 7, 9  # ONNX element types
GEMV_ROWS = 1  # batches up to this many rows use the "gemv" kernel until calibrate() has measured this CPU
CALIBRATE_ROWS = 6  # calibrate() times batches of 2 to this many rows (an offer of beats writes 4)
CALIBRATE_STEPS = 16  # characters per timed call (bot.choices.BEAT_ROUND)
CALIBRATE_REPEATS = 5  # calls per kernel and row count, interleaved; the fastest of them counts
NBITS_BLOCK = 256  # largest block of MatMulNBits' 8-bit kernels
WEIGHT_BITS = "INT8_WEIGHT_BITS"  # environment: 8 or 7 forces the "gemm" weights' form; unset: by the CPU


def parse_weight_bits(text: str) -> int | None:
    """INT8_WEIGHT_BITS as written: 7 or 8, None when empty (by the CPU); ValueError otherwise."""
    text = text.strip()
    if text not in ("", "7", "8"):
        raise ValueError(f"{WEIGHT_BITS} must be 7 or 8, not {text!r}")
    return int(text) if text else None


def gemm_weight_bits(environ=os.environ) -> int:
    """8 where the CPU sums int8 products without saturating (x86 with AVX-512 VNNI), else 7;
    $INT8_WEIGHT_BITS (8 or 7) overrides. The CPU's features as NumPy detected them (CPUID, so
    an emulated CPU reports its own); where NumPy does not say, 7 (always right, a little coarser)."""
    forced = parse_weight_bits(environ.get(WEIGHT_BITS, ""))
    if forced:
        return forced
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features  # noqa: PLC0415
    except ImportError:  # NumPy 1.x
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features  # noqa: PLC0415
        except ImportError:
            return 7
    return 8 if features.get("AVX512VNNI") else 7


class Graph:
    """A small builder: named nodes and initializers, so the network below reads like the TF one.

    `body()` gives a graph for a Loop's body: its own nodes and names, the same
    initializers (a body reads the weights from the outer graph, so they are stored once)."""

    def __init__(self, matmul: str, prefix: str = "", consts: dict | None = None, levels: int = LEVELS):
        from onnx import helper, numpy_helper  # noqa: PLC0415  (onnx is needed only to build the graph)

        self.helper, self.numpy_helper, self.matmul, self.prefix = helper, numpy_helper, matmul, prefix
        self.levels = levels  # the "gemm" weights' range: LEVELS (8-bit) or SEVEN_BIT_LEVELS
        self.nodes, self._n = [], 0
        self.consts = {} if consts is None else consts  # name -> TensorProto, shared with bodies

    def body(self, prefix: str) -> Graph:
        return Graph(self.matmul, prefix, self.consts, self.levels)

    def const(self, name: str, value) -> str:
        """An initializer; made once per name (a body and its outer graph reuse the same weights)."""
        if name not in self.consts:
            self.consts[name] = self.numpy_helper.from_array(np.asarray(value() if callable(value) else value), name)
        return name

    def op(self, kind: str, *inputs: str, outputs: int = 1, domain: str | None = None, **attrs):
        self._n += 1
        names = [f"{self.prefix}{kind.lower()}_{self._n}_{i}" for i in range(outputs)]
        self.nodes.append(self.helper.make_node(kind, list(inputs), names, domain=domain, **attrs))
        return names[0] if outputs == 1 else names

    def output(self, value: str, name: str) -> None:
        """Name the node output `value` as the graph output `name` (a rename, not an Identity: no copy)."""
        for node in self.nodes:
            for io in (node.input, node.output):
                for i, v in enumerate(io):
                    if v == value:
                        io[i] = name

    def graph(self, name: str, inputs: list, outputs: list, with_consts: bool = True):
        """The GraphProto; inputs and outputs as (name, ONNX element type, shape or None)."""
        h = self.helper
        return h.make_graph(self.nodes, name, [h.make_tensor_value_info(*i) for i in inputs],
                            [h.make_tensor_value_info(*o) for o in outputs],
                            list(self.consts.values()) if with_consts else [])

    def model(self, name: str, inputs: list, outputs: list) -> bytes:
        """The serialized ONNX model (see `graph`)."""
        h = self.helper
        return h.make_model(self.graph(name, inputs, outputs),
                            opset_imports=[h.make_opsetid("", OPSET), h.make_opsetid(MS, 1)]).SerializeToString()

    def dense(self, x: str, w: np.ndarray, bias: np.ndarray, name: str) -> str:
        """x [B, K] @ w [K, N] + bias [N] with the graph's matmul kernel; the weights are quantized and
        stored once per name (a body and its outer graph share them)."""
        k, n = w.shape
        made = f"{name}_bias" in self.consts
        bias = self.const(f"{name}_bias", np.asarray(bias, np.float32))
        if self.matmul == "float32":
            return self.op("Add", self.op("MatMul", x, self.const(name, np.asarray(w, np.float32))), bias)
        if self.matmul == "gemm":
            if not made:
                q, scale = quantize(w, axis=0, levels=self.levels)  # int8 [K, N], scale [N]
                self.const(f"{name}_q", q), self.const(f"{name}_scale", scale)
            return self.op("DynamicQuantizeMatMul", x, f"{name}_q", f"{name}_scale",
                           self.const(f"{name}_zero", np.zeros(n, np.int8)), bias, domain=MS)
        block = min(NBITS_BLOCK, 1 << max(4, (k - 1).bit_length()))  # a power of two, 16 to 256
        if not made:
            padded = np.pad(w, ((0, -k % block), (0, 0)))  # [K', N], K' whole blocks (the kernel ignores the rest)
            q, scale = quantize(padded.T.reshape(n, -1, block), axis=2)  # int8 [N, K'/block, block], scale [N, blocks]
            self.const(f"{name}_q", (q.astype(np.int16) + 128).astype(np.uint8))  # 8-bit codes: zero point 128
            self.const(f"{name}_scale", scale.ravel())
        return self.op("MatMulNBits", x, f"{name}_q", f"{name}_scale", "", "", bias, domain=MS,
                       K=k, N=n, bits=8, block_size=block, accuracy_level=4)


def read_char(g: Graph, weights: Weights, cell: str, ids: str, feed: str, old: list[str],
              novel: str | None) -> list[str]:
    """Nodes of one character read: rows where feed [B] is true read ids [B] into their states
    (old: S' names [B, H], S' = the recurrent states); the others keep theirs. The new states' names."""
    rnn, units = weights.rnn, weights.units
    per_layer = 1 if cell == "gru" else 2
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    input_bias = lambda b: f32(b)[0] if cell == "gru" else f32(b)  # noqa: E731  (GRU [2, 3H]: input row first)

    # Layer 0's input projection of every character [V, G*H]: int8 with a scale per character (float32 as is).
    table = lambda: f32(weights.embedding) @ f32(rnn[0].kernel) + input_bias(rnn[0].bias)  # noqa: E731
    if g.matmul == "float32":
        gx = g.op("Gather", g.const("table", table), ids)
    else:
        table_q, table_scale = quantize(table(), axis=1)
        gathered = g.op("Cast", g.op("Gather", g.const("table_q", table_q), ids), to=FLOAT)
        gx = g.op("Mul", gathered, g.op("Gather", g.const("table_scale", table_scale[:, None]), ids))  # [B, G*H]
    if novel:  # world "input": the novel's share of layer 0's gates [B, G*H]
        gx = g.op("Add", gx, novel)
    keep = g.op("Unsqueeze", feed, g.const("axis1", np.array([1], np.int64)))  # [B, 1]: rows that read
    new = []
    for i, w in enumerate(rnn):
        if i > 0:  # the layer below's new h is this layer's input
            gx = g.dense(new[-per_layer], f32(w.kernel), input_bias(w.bias), f"kernel{i}")
        if cell == "gru":  # Keras GRU, reset_after=True, gate order z, r, h
            prev = old[i]
            gh = g.dense(prev, f32(w.recurrent), f32(w.bias)[1], f"recurrent{i}")
            sizes = g.const(f"gru_split{i}", np.array([2 * units, units], np.int64))
            x_zr, xh = g.op("Split", gx, sizes, axis=1, outputs=2)
            h_zr, hh = g.op("Split", gh, sizes, axis=1, outputs=2)
            z, r = g.op("Split", g.op("Sigmoid", g.op("Add", x_zr, h_zr)), axis=1, outputs=2)
            cand = g.op("Tanh", g.op("Add", xh, g.op("Mul", r, hh)))
            state = g.op("Add", cand, g.op("Mul", z, g.op("Sub", prev, cand)))  # z*h + (1-z)*cand
            new.append(g.op("Where", keep, state, prev))
        else:  # Keras LSTM, gate order i, f, c, o
            prev_h, prev_c = old[2 * i], old[2 * i + 1]
            gates = g.op("Add", gx, g.dense(prev_h, f32(w.recurrent), np.zeros(4 * units), f"recurrent{i}"))
            gi, gf, gc, go = g.op("Split", gates, axis=1, outputs=4)
            c = g.op("Add", g.op("Mul", g.op("Sigmoid", gf), prev_c),
                     g.op("Mul", g.op("Sigmoid", gi), g.op("Tanh", gc)))
            hn = g.op("Mul", g.op("Sigmoid", go), g.op("Tanh", c))
            new.extend([g.op("Where", keep, hn, prev_h), g.op("Where", keep, c, prev_c)])
    return new


def padded_vocab(weights: Weights) -> int:
    """V': the vocabulary padded to whole blocks of `model.sampling.draw`."""
    vocab = len(weights.dense_bias)
    return vocab + -vocab % BLOCK


def next_logits(g: Graph, weights: Weights, top: str) -> str:
    """Logits [B, V'] of what comes next from the top layer's h [B, H] (padding: -inf logits)."""
    pad = padded_vocab(weights) - len(weights.dense_bias)
    kernel = np.pad(np.asarray(weights.dense_kernel, np.float32), ((0, 0), (0, pad)))
    bias = np.pad(np.asarray(weights.dense_bias, np.float32), (0, pad), constant_values=-np.inf)
    return g.dense(top, kernel, bias, "dense")


def draw(g: Graph, probs: str, u: str, vocab: int) -> str:
    """One id per row of probs [B, V'] (need not sum to 1; V' = vocab, whole blocks of BLOCK) at the
    uniforms u [B] in (0, 1]: int64 [B].

    `model.sampling.draw`'s two levels, in float32: the first block of BLOCK ids whose
    cumulative mass reaches u × the row's mass, then the first id in it whose cumulative
    mass reaches what is left (a cumulative sum over V' ids in one pass is ~10× slower in
    ONNX Runtime). An id of probability 0 is never drawn: its cumulative mass is that of
    the id before it, so the first id to reach a target above 0 has mass."""
    axis1 = g.const("axis1", np.array([1], np.int64))
    count = lambda below, bound: g.op("Cast", g.op("Less", below, bound), to=INT64)  # noqa: E731  (1 where short)
    first = lambda cum, target: g.op("Min", g.op("ReduceSum", count(cum, target), axis1, keepdims=0),  # noqa: E731
                                     g.op("ArgMax", cum, axis=1, keepdims=0))  # never past the last id with mass
    shape = np.array([0, vocab // BLOCK, BLOCK], np.int64)  # 0: B as it comes (none, too)
    blocks = g.op("Reshape", probs, g.const("draw_blocks", shape))  # [B, nb, BLOCK]
    sums = g.op("ReduceSum", blocks, g.const("axis2", np.array([2], np.int64)), keepdims=0)  # [B, nb]
    ends = g.op("CumSum", sums, g.const("axis1_scalar", np.array(1, np.int64)))  # [B, nb]: mass up to each end
    target = g.op("Mul", g.op("Unsqueeze", u, axis1), g.op("ReduceMax", ends, axes=[1], keepdims=1))  # [B, 1]
    blk = first(ends, target)  # [B]
    at = g.op("Unsqueeze", blk, axis1)  # [B, 1]
    within = g.op("CumSum", g.op("GatherND", blocks, at, batch_dims=1), "axis1_scalar")  # [B, BLOCK]
    before = g.op("Sub", g.op("GatherElements", ends, at, axis=1), g.op("GatherElements", sums, at, axis=1))
    rest = g.op("Max", g.op("Sub", target, before), g.const("tiny", np.array(np.finfo(np.float32).tiny, np.float32)))
    return g.op("Add", g.op("Mul", blk, g.const("block", np.array(BLOCK, np.int64))), first(within, rest))


def loop_bans(g: Graph, scaled: str, recent: str, ban: str, classes: np.ndarray, width: int) -> str:
    """scaled [B, V'] with -inf added at each id that would complete a loop after the recent
    characters recent int64 [B, W], in the rows where ban bool [B] (model.repeats.loop_bans's tables)."""
    t = loop_table(width)
    kinds = g.op("Gather", g.const("classes", classes.astype(np.int64)), recent)  # [B, W]
    same = g.op("Equal", g.op("Gather", recent, g.const("same_a", t.same_a), axis=1),
                g.op("Gather", recent, g.const("same_b", t.same_b), axis=1))  # [B, P, M]
    kind = g.op("Equal", g.op("Gather", kinds, g.const("kind_at", t.kind_at), axis=1),
                g.const("kind", t.kind.astype(np.int64)))  # [B, P, N]
    every = g.op("ReduceMin", g.op("Cast", g.op("Concat", same, kind, axis=2), to=FLOAT),
                 axes=[2], keepdims=0)  # [B, P]: 1 where all hold
    hit = g.op("And", g.op("Greater", every, g.const("half", np.array(0.5, np.float32))),
               g.op("Unsqueeze", ban, g.const("axis1", np.array([1], np.int64))))
    penalty = g.op("Where", hit, g.const("minus_inf", np.array(-np.inf, np.float32)),
                   g.const("zero_f", np.array(0.0, np.float32)))  # [B, P], summed where two shapes ban one id
    banned = g.op("Gather", recent, g.const("banned_at", t.banned_at), axis=1)  # [B, P]
    return g.op("ScatterElements", scaled, banned, penalty, axis=1, reduction="add")


def phrase_penalised(g: Graph, logits: str, never: str, recent: str, matches: str, ban: str) -> str:
    """logits [B, V'] less the phrase penalty after the recent characters recent int64 [B, W] (their match
    lengths `matches` [B, W]), in the rows where ban bool [B] (model.repeats.phrase_penalties' formula;
    never [V']: the never mask, for the model's certainty)."""
    axis1 = g.const("axis1", np.array([1], np.int64))
    big = g.const("big", np.array([2**62], np.int64))
    ids = g.op("Slice", recent, axis1, big, axis1)  # [B, W-1]: the character after each earlier place
    zero, minus_one = g.const("zero", np.array([0], np.int64)), g.const("minus_one", np.array([-1], np.int64))
    head = g.op("Slice", matches, zero, minus_one, axis1)  # [B, W-1]: the match before each follower
    amounts = g.op("Gather", g.const("phrase_amounts", phrase_amounts()), head)  # [B, W-1]
    p = g.op("Softmax", g.op("Add", logits, never), axis=1)  # temperature 1 (ONNX Runtime's ReduceLogSumExp is slower)
    unsure = g.op("Not", g.op("Greater", g.op("GatherElements", p, ids, axis=1),
                              g.const("sure", np.array(PHRASE_SURE, np.float32))))
    keep = g.op("And", unsure, g.op("Unsqueeze", ban, axis1))
    taken = g.op("Where", keep, g.op("Neg", amounts), g.const("zero_f", np.array(0.0, np.float32)))
    return g.op("ScatterElements", logits, ids, taken, axis=1, reduction="add")


def rematched(g: Graph, matches: str, recent: str, ids: str, feed: str) -> str:
    """matches [B, W] after the rows where feed [B] read or wrote ids [B] (recent [B, W]: already pushed),
    as model.repeats.matched."""
    axis1 = g.const("axis1", np.array([1], np.int64))
    zero, minus_one = g.const("zero", np.array([0], np.int64)), g.const("minus_one", np.array([-1], np.int64))
    before = g.op("Slice", recent, zero, minus_one, axis1)  # [B, W-1]
    one = g.const("one_i", np.array(1, np.int64))
    grown = g.op("Min", g.op("Add", g.op("Slice", matches, zero, minus_one, axis1), one),
                 g.const("phrase_max", np.array(PHRASE_MAX, np.int64)))
    same = g.op("Equal", before, g.op("Unsqueeze", ids, axis1))
    kept = g.op("Where", same, grown, g.const("zero_i", np.array(0, np.int64)))
    new = g.op("Pad", kept, g.const("pad_last", np.array([0, 0, 0, 1], np.int64)))  # the newest place: 0
    return g.op("Where", g.op("Unsqueeze", feed, axis1), new, matches)


def pushed(g: Graph, recent: str, ids: str, feed: str) -> str:
    """recent [B, W] with ids [B] last where feed [B] (the others keep theirs)."""
    axis1 = g.const("axis1", np.array([1], np.int64))
    moved = g.op("Concat", g.op("Slice", recent, axis1, g.const("big", np.array([2**62], np.int64)), axis1),
                 g.op("Unsqueeze", ids, axis1), axis=1)
    return g.op("Where", g.op("Unsqueeze", feed, axis1), moved, recent)


def build_step(weights: Weights, cell: str, never_mask: np.ndarray, matmul: str = "gemm",
               classes: np.ndarray | None = None, weight_bits: int = 8) -> bytes:
    """The serialized ONNX model of N steps in a Loop (see the module docstring); classes [V] of
    model.repeats for the ban on loops (None: a graph without it, to measure what it costs);
    weight_bits 8 or 7: the "gemm" weights' range (see `gemm_weight_bits`)."""
    g = Graph(matmul, levels=LEVELS if weight_bits == 8 else SEVEN_BIT_LEVELS)
    n_recurrent = weights.recurrent_states
    novel = int(np.shape(weights.book_states)[1]) > n_recurrent  # world "input" (see model.onestep)
    top = (len(weights.rnn) - 1) * (1 if cell == "gru" else 2)  # the top layer's h among the states
    units, vocab = weights.units, padded_vocab(weights)
    axis1 = g.const("axis1", np.array([1], np.int64))

    # One step of the Loop: pick each row's character, score it, read it.
    b = g.body("step_")
    t = "step_t"  # int64 []: the step's number
    old = [f"step_state{i}" for i in range(n_recurrent)]
    logits = "step_logits"  # [B, V']: what comes next, before this step
    recent = "step_recent"  # int64 [B, W]: the last characters read or written
    matches = "step_matches"  # int64 [B, W]: how much of the text's end each place's text shares
    width = history_width(units)
    never = b.const("never", np.pad(never_mask, (0, vocab - len(never_mask))))
    penalised = logits if classes is None else phrase_penalised(b, logits, never, recent, matches, "ban")
    scaled = b.op("Add", b.op("Mul", penalised, b.op("Unsqueeze", "inv_temperature", axis1)), never)
    if classes is not None:
        scaled = loop_bans(b, scaled, recent, "ban", np.pad(classes, (0, vocab - len(classes))), width)
    drawn = draw(b, b.op("Softmax", scaled, axis=1), b.op("Gather", "u", t, axis=0), vocab)
    is_drawn = b.op("Gather", "sample", t, axis=0)  # bool []
    chosen = b.op("Where", is_drawn, drawn, b.op("Gather", "ids", t, axis=0))  # [B]
    given = b.body("given_")  # a given character's -log p at temperature 1 (what score sums) [B]
    picked = given.op("GatherElements", given.op("LogSoftmax", logits, axis=1), given.op("Unsqueeze", chosen, axis1),
                      axis=1)
    given_nll = given.op("Neg", given.op("Squeeze", picked, axis1))
    skipped = b.body("drawn_")  # a drawn one's is not needed: zeros [B]
    zeros = skipped.op("ConstantOfShape", skipped.op("Shape", chosen))
    nll = b.op("If", is_drawn, then_branch=skipped.graph("drawn", [], [(zeros, FLOAT, None)], with_consts=False),
               else_branch=given.graph("given", [], [(given_nll, FLOAT, None)], with_consts=False))
    feed_t = b.op("Gather", "feed", t, axis=0)
    new = read_char(b, weights, cell, chosen, feed_t, old, "novel" if novel else None)
    following = next_logits(b, weights, new[top])
    now = pushed(b, recent, chosen, feed_t)
    body = b.graph("step", [(t, INT64, []), ("step_cond", BOOL, []), *[(o, FLOAT, None) for o in old],
                            (logits, FLOAT, None), (recent, INT64, None), (matches, INT64, None)],
                   [(b.op("Identity", "step_cond"), BOOL, []), *[(s, FLOAT, None) for s in new],
                    (following, FLOAT, None), (now, INT64, None),
                    (rematched(b, matches, now, chosen, feed_t), INT64, None),
                    (chosen, INT64, None), (nll, FLOAT, None)], with_consts=False)

    steps = g.op("Squeeze", g.op("Slice", g.op("Shape", "ids"), g.const("zero", np.array([0], np.int64)), axis1))
    first = next_logits(g, weights, f"state{top}")  # what comes next from the states as given
    outs = g.op("Loop", steps, "", *[f"state{i}" for i in range(n_recurrent)], first, "recent", "matches",
                outputs=n_recurrent + 5, body=body)
    for i in range(n_recurrent):
        g.output(outs[i], f"new_state{i}")
    for value, name in zip(outs[n_recurrent:], ("logits", "new_recent", "new_matches", "chosen", "nll")):
        g.output(value, name)

    return g.model(f"steps_{matmul}",
                   [("ids", INT64, ["N", "B"]), ("feed", BOOL, ["N", "B"]), ("sample", BOOL, ["N"]),
                    ("u", FLOAT, ["N", "B"]), ("inv_temperature", FLOAT, ["B"]), ("ban", BOOL, ["B"]),
                    ("recent", INT64, ["B", width]), ("matches", INT64, ["B", width]),
                    *[(f"state{i}", FLOAT, ["B", units]) for i in range(n_recurrent)],
                    *([("novel", FLOAT, ["B", np.shape(weights.book_gates)[1]])] if novel else [])],
                   [("chosen", INT64, ["N", "B"]), ("nll", FLOAT, ["N", "B"]), ("logits", FLOAT, ["B", vocab]),
                    ("new_recent", INT64, ["B", width]), ("new_matches", INT64, ["B", width]),
                    *[(f"new_state{i}", FLOAT, ["B", units]) for i in range(n_recurrent)]])


def gemv_rows_from(seconds: dict[int, tuple[float, float]]) -> int:
    """The most rows for "gemv": the largest count up to which it beat "gemm" at every measured count
    ({rows: (gemv s, gemm s)}; 1 when it loses at 2, or nothing was measured)."""
    rows = 1
    for n in sorted(seconds):
        if n != rows + 1 or seconds[n][0] >= seconds[n][1]:
            break
        rows = n
    return rows


@functools.cache
def _shared_pool(ort) -> None:
    """Ask ONNX Runtime, once, for the process's thread pool (it allows that once, before any session)."""
    try:
        ort.set_global_thread_pool_sizes(0, 0)  # 0: ONNX Runtime's default, a thread per core
    except Exception as e:  # ONNX Runtime's own error type: made already (another copy of this module)
        if "already" not in str(e):
            raise


def session(model: bytes):
    """An ONNX Runtime CPU session over a serialized model, on the process's one thread pool (a thread per
    core) that every session shares. With a pool each, the "gemv" and "gemm" sessions take turns badly:
    after a call the idle pool's threads spin on the cores the next call needs (rounds of 4 rows and of 1
    in turn, as an offer of beats runs them: 20 ms a pair against 11 ms shared; bench.cowriting)."""
    import onnxruntime as ort  # noqa: PLC0415  (loads only with this runtime)

    _shared_pool(ort)
    options = ort.SessionOptions()
    options.use_per_session_threads = False
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class Int8Step:
    """ONNX Runtime sessions over `build_step`'s graph: "gemv" for one row, "gemm" for more.

    kernels=("float32",) builds only the float32 graph (for the runtime comparison);
    weight_bits (8 or 7) forces the "gemm" weights' form, None: `gemm_weight_bits()`."""

    def __init__(self, weights: Weights, cell: str, never_mask: np.ndarray,
                 kernels: tuple[str, ...] = ("gemv", "gemm"), chars: list[str] | None = None,
                 weight_bits: int | None = None):
        classes = None if chars is None else char_classes(chars)  # without chars, no ban on loops in the graph
        self.weight_bits = gemm_weight_bits() if weight_bits is None else weight_bits
        self.sessions = {kind: session(build_step(weights, cell, never_mask, kind, classes, self.weight_bits))
                         for kind in kernels}
        self.recurrent = weights.recurrent_states
        self.width = history_width(weights.units)
        self.state_names = [f"new_state{i}" for i in range(self.recurrent)]
        # [K+1, G*H] (world "input"; read only when the states carry a novel row)
        self.book_gates = None if weights.book_gates is None else np.asarray(weights.book_gates, np.float32)
        self._novel = (None, None)  # (the novel row last given, its gates [B, G*H]): looked up once per story
        self.gemv_rows = GEMV_ROWS  # batches of this many rows or fewer run "gemv" (calibrate() measures it)

    def session(self, rows: int):
        if len(self.sessions) == 1:
            return next(iter(self.sessions.values()))
        return self.sessions["gemv" if rows <= self.gemv_rows else "gemm"]

    def calibrate(self, states: list, most: int = CALIBRATE_ROWS, steps: int = CALIBRATE_STEPS,
                  repeats: int = CALIBRATE_REPEATS) -> dict[int, tuple[float, float]]:
        """Time both kernels writing `steps` characters in batches of 2..`most` rows from `states` (one row's,
        [1, H] each) and set `gemv_rows` by `gemv_rows_from`; {rows: (gemv s, gemm s)}, the fastest of
        `repeats` calls each, interleaved (so a busy moment of the machine falls on both). A batch of one
        always runs "gemv" (the fastest for one row everywhere measured, and one chat's text stays the same)."""
        if set(self.sessions) != {"gemv", "gemm"}:
            return {}
        import time  # noqa: PLC0415

        seconds = {}
        for rows in range(2, most + 1):
            feeds = self._feeds(np.zeros((steps, rows), np.int64), np.ones((steps, rows), bool), np.ones(steps, bool),
                                np.full((steps, rows), 0.5, np.float32), [np.repeat(s, rows, axis=0) for s in states],
                                np.ones(rows, np.float32), None)
            best = {"gemv": np.inf, "gemm": np.inf}
            for _ in range(repeats):
                for kind in best:
                    started = time.perf_counter()
                    self.sessions[kind].run(["chosen"], feeds)
                    best[kind] = min(best[kind], time.perf_counter() - started)
            seconds[rows] = (best["gemv"], best["gemm"])
        self.gemv_rows = gemv_rows_from(seconds)
        return seconds

    def run(self, ids: np.ndarray, feed: np.ndarray, sample: np.ndarray, u: np.ndarray, states: list,
            inv_temperature: np.ndarray, ban: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """N steps in one call (see the module docstring): (chosen [N, B], nll [N, B], logits [B, V'], states).
        states: the recurrent ones, the novel row (world "input"), the recent characters' row last;
        ban [B] (default all): rows where no loop is written."""
        b = ids.shape[1]
        row = states[-1]  # [B, H]: the recent characters' ids in columns :width (model.onestep)
        novel = states[self.recurrent:-1]  # world "input": constant through a story, so not an output
        chosen, nll, logits, recent, matches, *new = self.session(b).run(
            ["chosen", "nll", "logits", "new_recent", "new_matches"] + self.state_names,
            self._feeds(ids, feed, sample, u, states, inv_temperature, ban))
        row = row.copy()
        row[:, :self.width] = recent
        row[:, self.width:2 * self.width] = matches
        return chosen, nll, logits, new + list(novel) + [row]

    def _feeds(self, ids, feed, sample, u, states, inv_temperature, ban) -> dict:
        """The graph's inputs for `run`'s arguments."""
        b = ids.shape[1]
        row = states[-1]
        feeds = {"ids": ids.astype(np.int64, copy=False), "feed": feed.astype(bool, copy=False),
                 "sample": sample.astype(bool, copy=False), "u": u.astype(np.float32, copy=False),
                 "inv_temperature": inv_temperature.astype(np.float32, copy=False),
                 "ban": np.ones(b, bool) if ban is None else np.asarray(ban, bool),
                 "recent": row[:, :self.width].astype(np.int64),
                 "matches": row[:, self.width:2 * self.width].astype(np.int64)}
        feeds.update({f"state{i}": s for i, s in enumerate(states[:self.recurrent])})
        novel = states[self.recurrent:-1]
        if novel:
            feeds["novel"] = self._gates(novel[0])
        return feeds

    def __call__(self, ids: np.ndarray, feed: np.ndarray, states: list) -> tuple[np.ndarray, list[np.ndarray]]:
        """One step, as `model.runtime`'s Python loop takes it: rows where feed [B] read ids [B];
        (logits [B, V'] of what comes next, the new states)."""
        b = len(ids)
        _, _, logits, new = self.run(ids[None], feed[None], np.zeros(1, bool), np.zeros((1, b), np.float32),
                                     states, np.ones(b, np.float32), np.zeros(b, bool))
        return logits, new

    def _gates(self, row: np.ndarray) -> np.ndarray:
        """The novel row [B, H] (ids in column 0) -> each row's novel gates [B, G*H], looked up
        again only when another row is given (the loops pass the same one on, step after step)."""
        given, gates = self._novel
        if row is not given:
            gates = self.book_gates[row[:, 0].astype(np.int64)]
            self._novel = (row, gates)
        return gates
