"""The machine's caps for generation: how many bytes and FLOPs a character costs, and how fast this
machine streams weights and multiplies matrices, measured in the same process as the benchmark.

One chat reads every weight matrix once per character (a matrix-vector product per
matrix), so it is capped by how fast the weights stream: bandwidth / bytes per char.
Many chats share each read, so they are capped by arithmetic: GEMM rate / FLOPs per char.
"""

from __future__ import annotations

import time

import numpy as np

from model.weights import Weights


def per_char_costs(weights: Weights, runtime: str) -> dict:
    """Bytes of weights read and FLOPs done per generated character (one row of a batch).

    Matrices read per character: every layer's recurrent matrix, every layer's input kernel
    but layer 0's (folded with the embedding into a table of which one row is read), and the
    output layer. int8 stores one byte per weight plus a float32 scale per column; float32 four."""
    rnn = weights.rnn
    matrices = [w.recurrent.shape for w in rnn] + [w.kernel.shape for w in rnn[1:]]
    matrices.append(weights.dense_kernel.shape)
    table_row = rnn[0].kernel.shape[1]  # one row of the folded table: G*H values
    if runtime == "int8":
        weight_bytes = sum(k * n + 4 * n for k, n in matrices) + table_row + 4
    else:
        weight_bytes = sum(4 * k * n for k, n in matrices) + 4 * table_row
    return {"bytes_per_char": int(weight_bytes), "flops_per_char": int(sum(2 * k * n for k, n in matrices))}


def _best_seconds(run, repeats: int) -> float:
    run()  # warm: caches, thread pools, packed weights
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def streaming_bandwidth(nbytes: int, repeats: int = 30) -> float:
    """Bytes/s a float32 matrix-vector product (NumPy's BLAS) reads from a matrix of `nbytes`: the
    working set of one chat's step, so the figure is the memory level those weights live in."""
    cols = 1024
    w = np.random.default_rng(0).standard_normal((max(1, nbytes // (4 * cols)), cols), np.float32)
    x = np.ones(cols, np.float32)
    return w.nbytes / _best_seconds(lambda: w @ x, repeats)


def float32_gemm_rate(size: int = 1024, repeats: int = 10) -> float:
    """FLOP/s of a float32 matrix product [size, size] @ [size, size] (NumPy's BLAS, all cores)."""
    a = np.random.default_rng(0).standard_normal((size, size), np.float32)
    return 2 * size**3 / _best_seconds(lambda: a @ a, repeats)


def int8_gemm_rate(rows: int = 256, k: int = 1024, n: int = 4096, repeats: int = 10) -> float:
    """Multiply-add FLOP/s (2 per MAC) of ONNX Runtime's int8 kernel the runtime uses for batches
    (DynamicQuantizeMatMul), on [rows, k] @ [k, n]."""
    from model.int8 import FLOAT, Graph, session  # noqa: PLC0415

    g = Graph("gemm")
    g.output(g.dense("x", np.random.default_rng(0).standard_normal((k, n), np.float32), np.zeros(n), "w"), "y")
    s = session(g.model("gemm", [("x", FLOAT, [rows, k])], [("y", FLOAT, [rows, n])]))
    x = np.random.default_rng(1).standard_normal((rows, k), np.float32)
    return 2 * rows * k * n / _best_seconds(lambda: s.run(None, {"x": x}), repeats)


def measure_machine(weight_bytes: int) -> dict:
    return {"bandwidth_gbs": streaming_bandwidth(weight_bytes) / 1e9,
            "int8_gemm_gflops": int8_gemm_rate() / 1e9, "float32_gemm_gflops": float32_gemm_rate() / 1e9}
