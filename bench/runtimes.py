"""One model on each runtime we measured: generation speed for one row and for a batch, and quality.

    python -m bench.runtimes [--model DIR] [--length 200] [--batch 32]

  tensorflow-float32   the SavedModel's graph, weights exact (RUNTIME=float32)
  onnxruntime-float32  the ONNX step (model.int8) with float32 MatMul
  onnxruntime-gemv     8-bit MatMulNBits (what one chat runs)
  onnxruntime-gemm     8-bit DynamicQuantizeMatMul (what several chats run)
  ..., no repetition policy  the same graphs without the loop ban and phrase penalty (model.repeats): what they cost
  ..., 7-bit / 8-bit   gemm with 7-bit weights (CPUs without VNNI) and 8-bit (with it)
  tflite-int8          TensorFlow Lite, dynamic-range int8 with XNNPACK, converted from the same step

Every ONNX Runtime line runs model.runtime as the bot does (a chunk per call, the draw
in the graph); TFLite runs one step a call in model.runtime's Python loop. Quality: nats/char on a fixed text of the
shipped model's kind, against tensorflow-float32. Prints a table and `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench import result_line
from model import sampling
from model.int8 import Int8Step
from model.runtime import StepRuntime

TEXT = ("　　萧峰见她脸如白纸，知道她已听到了，心中一酸，说道：“阿朱，你放心，我一定带你去塞外，"
        "牧牛放羊，再也不回中原来了。”阿朱点了点头，眼中泪光莹然，低声道：“大哥，你待我真好。”")


class TFLiteStep:
    """The OneStep step converted to TensorFlow Lite with dynamic-range int8 weights, run with XNNPACK,
    behind the step interface model.runtime loops over."""

    def __init__(self, model):
        import tensorflow as tf  # noqa: PLC0415

        from model.onestep import OneStep  # noqa: PLC0415

        module = OneStep(model.weights(), model.chars(), model.card.architecture.cell, {}, dtype=tf.float32)
        module.table = None  # the step takes ids: the string lookup (not a TFLite op) stays out of the conversion
        fn = tf.function(module.step, input_signature=[
            tf.TensorSpec([None], tf.int32), tf.TensorSpec([model.num_states, None, model.units], tf.float32)])
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], module)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights, float activations
        self.blob = converter.convert()
        self.interpreters = {}
        self.vocab = len(model.chars())

    def _interpreter(self, rows: int):
        import tensorflow as tf  # noqa: PLC0415

        if rows not in self.interpreters:
            it = tf.lite.Interpreter(model_content=self.blob, num_threads=2)
            for d in it.get_input_details():
                shape = list(d["shape"])
                shape[0 if len(shape) == 1 else 1] = rows
                it.resize_tensor_input(d["index"], shape)
            it.allocate_tensors()
            self.interpreters[rows] = it
        return self.interpreters[rows]

    def __call__(self, ids, feed, states):
        it = self._interpreter(len(ids))
        ins, outs = it.get_input_details(), it.get_output_details()
        stacked = np.stack(states)
        for d in ins:
            it.set_tensor(d["index"], ids.astype(np.int32) if len(d["shape"]) == 1 else stacked)
        it.invoke()
        got = [it.get_tensor(d["index"]) for d in outs]
        logits, new = (got[0], got[1]) if got[0].ndim == 2 else (got[1], got[0])
        new = np.where(feed[None, :, None], new, stacked)
        logits = np.pad(logits, ((0, 0), (0, -self.vocab % sampling.BLOCK)), constant_values=-np.inf)
        return logits, list(new)


def speed(generate, states, length: int) -> float:
    rows = states.shape[1]
    ones = np.ones(rows)
    generate([""] * rows, states, 8, ones * 0.8, np.zeros(rows, int), ones, 1, 0)  # warm
    t0 = time.perf_counter()
    generate([""] * rows, states, length, ones * 0.8, np.zeros(rows, int), ones, 1, 0)
    return rows * length / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.runtimes", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    ap.add_argument("--length", type=int, default=200, help="characters per row")
    ap.add_argument("--batch", type=int, default=32, help="rows of the batched measurement")
    args = ap.parse_args(argv)
    from model import load  # noqa: PLC0415

    exact = load(args.model, "float32")
    chars, weights, cell = exact.chars(), exact.weights(), exact.card.architecture.cell
    mask = sampling.never_mask(chars)
    runtimes = {"tensorflow-float32": exact}
    for kernel in ("float32", "gemv", "gemm"):
        runtimes[f"onnxruntime-{kernel}"] = StepRuntime(Int8Step(weights, cell, mask, kernels=(kernel,), chars=chars),
                                                        chars)
    for kernel in ("gemv", "gemm"):
        bare = Int8Step(weights, cell, mask, kernels=(kernel,))  # no chars: a graph without the policy
        runtimes[f"onnxruntime-{kernel}, no repetition policy"] = StepRuntime(bare, chars)
    default_bits = runtimes["onnxruntime-gemm"].step.weight_bits  # what this CPU gets
    for bits in (7, 8):  # both forms, whichever this CPU gets by default
        runtimes[f"onnxruntime-gemm, {bits}-bit weights"] = StepRuntime(
            Int8Step(weights, cell, mask, kernels=("gemm",), chars=chars, weight_bits=bits), chars)
    runtimes["tflite-int8"] = StepRuntime(TFLiteStep(exact), chars)
    want_nll, want_chars, _ = exact.score([TEXT], exact.initial_state(1))
    reference = want_nll[0] / want_chars[0]
    result = {}
    print(f"{'':32} {'1 row chars/s':>14} {args.batch:>3} rows chars/s {'nats/char':>10} {'vs float32':>11}")
    for name, rt in runtimes.items():
        one = speed(rt.generate, exact.initial_state(1), args.length)  # CharModel and StepRuntime: one signature
        many = speed(rt.generate, exact.initial_state(args.batch), args.length)
        nll, n, _ = rt.score([TEXT], exact.initial_state(1))
        quality = nll[0] / n[0]
        result[name] = {"single_cps": round(one, 1), "batch_cps": round(many, 1), "nats_per_char": round(quality, 4)}
        print(f"{name:32} {one:14.0f} {many:16.0f} {quality:10.4f} {quality - reference:+11.4f}")
    print(f"(this CPU's default for gemm: {default_bits}-bit weights)")
    return result_line({"batch": args.batch, "length": args.length, "gemm_weight_bits": default_bits,
                        "runtimes": result})


if __name__ == "__main__":
    sys.exit(main())
