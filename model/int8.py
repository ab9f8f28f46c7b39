"""One character step of the OneStep network as an ONNX graph with 8-bit weights, run by ONNX Runtime.

    step = Int8Step(weights, cell, never_mask(chars))   # weights as CharModel.weights() returns them
    (probs,), states = step(ids, feed, states, inv_temperature, ("probs",))

Inputs: ids int64 [B], feed bool [B], states (S arrays float32 [B, H]), inv_temperature
float32 [B]; a world "input" model's last state row (the novel's id in column 0) becomes
that novel's share of layer 0's gates, input "novel" [B, G*H], and comes back as it went in.
Each call first feeds `ids` to the rows where `feed` is true (the others
keep their state), then gives what comes next from the new states: "logits" [B, V']
and "probs" = softmax(logits / temperature + never mask) [B, V'], with V' the
vocabulary padded with -inf logits to whole blocks of `model.sampling.draw`. Reading
a text, sampling and scoring are all this one call (`model.runtime` loops over it).

Every matrix read per character is 8-bit with float32 scales (`model.quant`); layer 0's
input projection is folded with the embedding into one table [V, G*H] (int8, a scale
per character): a gather instead of a matmul. The shipped 2×1024 model reads ~15 MB
of weights per character instead of ~58 MB in float32. Two kernels of ONNX Runtime,
each where it is fastest (measured with `python -m bench.runtimes`):
  "gemm"  DynamicQuantizeMatMul: int8 × uint8 (activations quantized per call), one scale
          per output column; fast for several rows (AVX-512 VNNI / AMX on this CPU).
  "gemv"  MatMulNBits, 8 bits in blocks of up to 256 inputs with a scale each, int8
          arithmetic (accuracy_level 4): LLM-decoding kernels, fastest for one row.
Int8Step runs "gemv" for a batch of GEMV_ROWS rows or fewer and "gemm" above that.
"float32" (plain MatMul) exists to measure ONNX Runtime itself against TensorFlow.
"""

from __future__ import annotations

import numpy as np

from model.quant import quantize
from model.sampling import BLOCK
from model.weights import Weights

OPSET = 17
MS = "com.microsoft"  # ONNX Runtime's contrib operators
FLOAT, INT64, BOOL = 1, 7, 9  # ONNX element types
GEMV_ROWS = 1  # batches up to this many rows use the "gemv" kernel (measured: 2 rows are already faster as gemm)
NBITS_BLOCK = 256  # largest block of MatMulNBits' 8-bit kernels


class Graph:
    """A small builder: named nodes and initializers, so the network below reads like the TF one."""

    def __init__(self, matmul: str):
        from onnx import helper, numpy_helper  # noqa: PLC0415  (onnx is needed only to build the graph)

        self.helper, self.numpy_helper, self.matmul = helper, numpy_helper, matmul
        self.nodes, self.inits, self._n = [], [], 0

    def const(self, name: str, value) -> str:
        self.inits.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, outputs: int = 1, domain: str | None = None, **attrs):
        self._n += 1
        names = [f"{kind.lower()}_{self._n}_{i}" for i in range(outputs)]
        self.nodes.append(self.helper.make_node(kind, list(inputs), names, domain=domain, **attrs))
        return names[0] if outputs == 1 else names

    def output(self, value: str, name: str) -> None:
        """Name the node output `value` as the graph output `name` (a rename, not an Identity: no copy)."""
        for node in self.nodes:
            for io in (node.input, node.output):
                for i, v in enumerate(io):
                    if v == value:
                        io[i] = name

    def model(self, name: str, inputs: list, outputs: list) -> bytes:
        """The serialized ONNX model; inputs and outputs as (name, ONNX element type, shape)."""
        h = self.helper
        graph = h.make_graph(self.nodes, name, [h.make_tensor_value_info(*i) for i in inputs],
                             [h.make_tensor_value_info(*o) for o in outputs], self.inits)
        return h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET), h.make_opsetid(MS, 1)]).SerializeToString()

    def dense(self, x: str, w: np.ndarray, bias: np.ndarray, name: str) -> str:
        """x [B, K] @ w [K, N] + bias [N] with the graph's matmul kernel."""
        bias = self.const(f"{name}_bias", np.asarray(bias, np.float32))
        k, n = w.shape
        if self.matmul == "float32":
            return self.op("Add", self.op("MatMul", x, self.const(name, w.astype(np.float32))), bias)
        if self.matmul == "gemm":
            q, scale = quantize(w, axis=0)  # int8 [K, N], scale [N]
            return self.op("DynamicQuantizeMatMul", x, self.const(f"{name}_q", q), self.const(f"{name}_scale", scale),
                           self.const(f"{name}_zero", np.zeros(n, np.int8)), bias, domain=MS)
        block = min(NBITS_BLOCK, 1 << max(4, (k - 1).bit_length()))  # a power of two, 16 to 256
        padded = np.pad(w, ((0, -k % block), (0, 0)))  # [K', N], K' whole blocks (the kernel ignores the rest)
        q, scale = quantize(padded.T.reshape(n, -1, block), axis=2)  # int8 [N, K'/block, block], scale [N, blocks]
        stored = (q.astype(np.int16) + 128).astype(np.uint8)  # MatMulNBits' 8-bit codes: zero point 128
        return self.op("MatMulNBits", x, self.const(f"{name}_q", stored), self.const(f"{name}_scale", scale.ravel()),
                       "", "", bias, domain=MS, K=k, N=n, bits=8, block_size=block, accuracy_level=4)


def build_step(weights: Weights, cell: str, never_mask: np.ndarray, matmul: str = "gemm") -> bytes:
    """The serialized ONNX model of one step (see the module docstring)."""
    g = Graph(matmul)
    rnn = weights.rnn
    units = weights.units
    per_layer = 1 if cell == "gru" else 2
    n_recurrent = weights.recurrent_states
    n_states = int(np.shape(weights.book_states)[1])  # + 1 novel row in a world "input" (see model.onestep)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    input_bias = lambda b: f32(b)[0] if cell == "gru" else f32(b)  # noqa: E731  (GRU [2, 3H]: input row first)

    # Layer 0's input projection of every character [V, G*H]: int8 with a scale per character (float32 as is).
    table = f32(weights.embedding) @ f32(rnn[0].kernel) + input_bias(rnn[0].bias)
    if matmul == "float32":
        gx = g.op("Gather", g.const("table", table), "ids")
    else:
        table_q, table_scale = quantize(table, axis=1)
        gathered = g.op("Cast", g.op("Gather", g.const("table_q", table_q), "ids"), to=1)
        gx = g.op("Mul", gathered, g.op("Gather", g.const("table_scale", table_scale[:, None]), "ids"))  # [B, G*H]

    old = [f"state{i}" for i in range(n_recurrent)]  # [B, H] each
    novel = n_states > n_recurrent  # world "input": the novel's share of layer 0's gates [B, G*H], an input
    if novel:
        gx = g.op("Add", gx, "novel")
    axis1 = g.const("axis1", np.array([1], np.int64))
    keep = g.op("Unsqueeze", "feed", axis1)  # [B, 1]: rows fed this step take their new state
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

    # What comes next, over the vocabulary padded to whole sampler blocks (padding: -inf logits).
    vocab = len(weights.dense_bias)
    padded = vocab + -vocab % BLOCK
    kernel = np.pad(f32(weights.dense_kernel), ((0, 0), (0, padded - vocab)))
    bias = np.pad(f32(weights.dense_bias), (0, padded - vocab), constant_values=-np.inf)
    logits = g.dense(new[(len(rnn) - 1) * per_layer], kernel, bias, "dense")
    scaled = g.op("Add", g.op("Mul", logits, g.op("Unsqueeze", "inv_temperature", axis1)),
                  g.const("never", np.pad(never_mask, (0, padded - vocab))))
    g.output(logits, "logits")
    g.output(g.op("Softmax", scaled, axis=1), "probs")
    for i, state in enumerate(new):
        g.output(state, f"new_state{i}")

    return g.model(f"onestep_{matmul}",
                   [("ids", INT64, ["B"]), ("feed", BOOL, ["B"]), ("inv_temperature", FLOAT, ["B"]),
                    *[(f"state{i}", FLOAT, ["B", units]) for i in range(n_recurrent)],
                    *([("novel", FLOAT, ["B", np.shape(weights.book_gates)[1]])] if novel else [])],
                   [("logits", FLOAT, ["B", padded]), ("probs", FLOAT, ["B", padded]),
                    *[(f"new_state{i}", FLOAT, ["B", units]) for i in range(n_recurrent)]])


def session(model: bytes, threads: int = 0):
    """An ONNX Runtime CPU session over a serialized model; threads 0: one per core."""
    import onnxruntime as ort  # noqa: PLC0415  (loads only with this runtime)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class Int8Step:
    """ONNX Runtime sessions over `build_step`'s graph: "gemv" for one row, "gemm" for more.

    kernels=("float32",) builds only the float32 graph (for the runtime comparison)."""

    def __init__(self, weights: Weights, cell: str, never_mask: np.ndarray, threads: int = 0,
                 kernels: tuple[str, ...] = ("gemv", "gemm")):
        self.sessions = {kind: session(build_step(weights, cell, never_mask, kind), threads) for kind in kernels}
        self.num_states = int(np.shape(weights.book_states)[1])
        self.recurrent = weights.recurrent_states
        self.state_names = [f"new_state{i}" for i in range(self.recurrent)]
        # [K+1, G*H] (world "input"; read only when the states carry a novel row)
        self.book_gates = None if weights.book_gates is None else np.asarray(weights.book_gates, np.float32)
        self._novel = (None, None)  # (the novel row last given, its gates [B, G*H]): looked up once per story

    def session(self, rows: int):
        if len(self.sessions) == 1:
            return next(iter(self.sessions.values()))
        return self.sessions["gemv" if rows <= GEMV_ROWS else "gemm"]

    def __call__(self, ids: np.ndarray, feed: np.ndarray, states: list, inv_temperature: np.ndarray,
                 outputs: tuple[str, ...] = ("probs",)) -> tuple[list[np.ndarray], list[np.ndarray]]:
        feeds = {"ids": ids.astype(np.int64, copy=False), "feed": feed.astype(bool, copy=False),
                 "inv_temperature": inv_temperature}
        feeds.update({f"state{i}": s for i, s in enumerate(states[:self.recurrent])})
        novel = states[self.recurrent:]  # world "input": constant through a story, so not an output
        if novel:
            feeds["novel"] = self._gates(novel[0])
        got = self.session(len(ids)).run(list(outputs) + self.state_names, feeds)
        return got[:len(outputs)], got[len(outputs):] + list(novel)

    def _gates(self, row: np.ndarray) -> np.ndarray:
        """The novel row [B, H] (ids in column 0) -> each row's novel gates [B, G*H], looked up
        again only when another row is given (the loops pass the same one on, step after step)."""
        given, gates = self._novel
        if row is not given:
            gates = self.book_gates[row[:, 0].astype(np.int64)]
            self._novel = (row, gates)
        return gates
