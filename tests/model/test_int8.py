"""The int8 runtime (model.int8 + model.runtime) against the SavedModel's exact float32 graph.

Stated tolerances, on the tiny model: ONNX Runtime's float32 graph scores within 1e-4
nats/char of the SavedModel; the 8-bit kernels' logits stay within 5 % of the logits'
standard deviation at every step, and their nats/char within 0.01 of float32.
"""

import numpy as np
import pytest

from model import load
from model.int8 import Int8Step
from model.runtime import StepRuntime
from model.sampling import never_mask

TEXT = "　　乔峰在少林寺说道：“阿朱，点头。”段誉🐉笑道。郭靖道：“黄蓉，拔剑。”虚竹在大理叹了口气。"


@pytest.fixture(scope="module")
def exact(tiny_model_dir):
    return load(tiny_model_dir, runtime="float32")


def runtime(model, kernel: str) -> StepRuntime:
    chars = model.chars()
    return StepRuntime(Int8Step(model.weights(), "gru", never_mask(chars), kernels=(kernel,)), chars)


def test_onnx_float32_graph_scores_as_the_savedmodel(exact):
    rt = runtime(exact, "float32")
    texts = [TEXT, TEXT[:9]]
    want_nll, want_chars, want_states = exact.score(texts)
    nll, chars, states = rt.score(texts, exact.initial_state(2))
    assert chars.tolist() == want_chars.tolist()
    np.testing.assert_allclose(nll / chars, want_nll / want_chars, atol=1e-4)
    np.testing.assert_allclose(states, want_states, atol=1e-4)


@pytest.mark.parametrize("kernel", ["gemv", "gemm"])
def test_int8_kernels_agree_with_float32(exact, kernel):
    reference, quantized = runtime(exact, "float32"), runtime(exact, kernel)
    ids, _ = reference.encode([TEXT, TEXT])
    rows = 2 if kernel == "gemm" else 1
    s_ref = s_q = list(exact.initial_state(rows))
    feed, ones, vocab = np.ones(rows, bool), np.ones(rows, np.float32), len(exact.chars())
    for t in range(ids.shape[1]):
        x = ids[:rows, t]
        (want,), s_ref = reference.step(x, feed, s_ref, ones, ("logits",))
        (got,), s_q = quantized.step(x, feed, s_q, ones, ("logits",))
        want, got = want[:, :vocab], got[:, :vocab]
        assert np.abs(got - want).max() <= 0.05 * want.std(), t
    nll, chars, _ = quantized.score([TEXT] * rows, exact.initial_state(rows))
    want_nll, want_chars, _ = exact.score([TEXT] * rows)
    np.testing.assert_allclose(nll / chars, want_nll / want_chars, atol=0.01)


def test_graph_probabilities_are_the_sampling_policy(exact):
    from model.sampling import probabilities

    rt = runtime(exact, "gemm")
    inv_t = np.array([1 / 0.7, 1 / 1.3], np.float32)
    (logits, probs), _ = rt.step(np.array([5, 9]), np.ones(2, bool), list(exact.initial_state(2)), inv_t,
                                 ("logits", "probs"))
    want = probabilities(logits, 1 / inv_t, np.zeros(2, int), np.ones(2), rt.mask)
    np.testing.assert_allclose(probs, want, atol=1e-6)
    assert np.all(probs[:, len(exact.chars()):] == 0) and np.all(probs[:, 0] == 0)  # padding and [UNK]


def test_lstm_graph_matches_the_tensorflow_onestep():
    import tensorflow as tf

    from model.onestep import OneStep
    from model.weights import RecurrentLayer, Weights

    rng = np.random.default_rng(0)
    units, emb, chars = 8, 4, ["[UNK]"] + list("甲乙丙丁戊己庚辛")
    r = lambda *shape: rng.normal(0, 0.5, shape).astype(np.float32)  # noqa: E731
    weights = Weights(embedding=r(len(chars), emb), dense_kernel=r(units, len(chars)), dense_bias=r(len(chars)),
                      book_states=np.zeros((1, 4, units), np.float32),
                      rnn=[RecurrentLayer(r(emb if i == 0 else units, 4 * units), r(units, 4 * units), r(4 * units))
                           for i in range(2)])
    reference = OneStep(weights, chars, "lstm", {}, dtype=tf.float32)
    text = "甲乙丙丁戊己庚辛甲丙戊庚"
    want = reference.score(tf.constant([text]), tf.zeros([4, 1, units]))
    for kernel, tolerance in [("float32", 1e-5), ("gemv", 0.02), ("gemm", 0.02)]:
        rt = StepRuntime(Int8Step(weights, "lstm", never_mask(chars), kernels=(kernel,)), chars)
        nll, n, states = rt.score([text], np.zeros((4, 1, units), np.float32))
        np.testing.assert_allclose(nll / n, want["nll"].numpy() / n, atol=tolerance)
        np.testing.assert_allclose(states, want["states"].numpy(), atol=max(1e-5, 5 * tolerance))


def test_the_runtime_is_int8_unless_asked(tiny_model_dir, monkeypatch):
    monkeypatch.delenv("RUNTIME", raising=False)
    assert load(tiny_model_dir).runtime == "int8"
    monkeypatch.setenv("RUNTIME", "float32")
    assert load(tiny_model_dir).runtime == "float32"
    assert load(tiny_model_dir, runtime="int8").runtime == "int8"
    monkeypatch.setenv("RUNTIME", "fp8")
    with pytest.raises(ValueError, match="unknown runtime 'fp8': use one of int8, float32"):
        load(tiny_model_dir)
