"""The int8 runtime (model.int8 + model.runtime) against the SavedModel's exact float32 graph.

Stated tolerances, on the tiny model: ONNX Runtime's float32 graph scores within 1e-4
nats/char of the SavedModel; the 8-bit kernels' logits stay within 5 % of the logits'
standard deviation at every step, and their nats/char within 0.01 of float32.
"""

import json
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest

from model import load, sampling
from model.int8 import Int8Step, gemm_weight_bits, gemv_rows_from
from model.runtime import StepRuntime
from model.sampling import never_mask
from tests.conftest import ROOT

# This CPU's int8 sums overflow with 8-bit weights in the batched kernel unless it has VNNI: the
# 8-bit form is checked only where it would be used; the 7-bit form everywhere.
EIGHT_BITS_HERE = gemm_weight_bits({}) == 8

TEXT = "　　乔峰在少林寺说道：“阿朱，点头。”段誉🐉笑道。郭靖道：“黄蓉，拔剑。”虚竹在大理叹了口气。"


@pytest.fixture(scope="module")
def exact(tiny_model_dir):
    return load(tiny_model_dir, runtime="float32")


def runtime(model, kernel: str, bits: int | None = None) -> StepRuntime:
    chars = model.chars()
    return StepRuntime(Int8Step(model.weights(), "gru", never_mask(chars), kernels=(kernel,), weight_bits=bits), chars)


def test_onnx_float32_graph_scores_as_the_savedmodel(exact):
    rt = runtime(exact, "float32")
    texts = [TEXT, TEXT[:9]]
    want_nll, want_chars, want_states = exact.score(texts)
    nll, chars, states = rt.score(texts, exact.initial_state(2))
    assert chars.tolist() == want_chars.tolist()
    np.testing.assert_allclose(nll / chars, want_nll / want_chars, atol=1e-4)
    np.testing.assert_allclose(states, want_states, atol=1e-4)


def test_the_kernels_share_one_thread_pool(exact):
    """Both sessions run on the process's pool: with a pool each, one's idle threads spin on the cores
    the other needs when calls of 1 row and of several take turns (bench.cowriting's offers)."""
    chars = exact.chars()
    step = Int8Step(exact.weights(), "gru", never_mask(chars))
    assert sorted(step.sessions) == ["gemm", "gemv"]
    for s in step.sessions.values():
        assert s.get_session_options().use_per_session_threads is False


def test_the_one_row_kernel_serves_as_many_rows_as_it_was_faster_for_at_every_count():
    assert gemv_rows_from({2: (1.0, 2.0), 3: (1.0, 2.0), 4: (3.0, 2.0), 5: (1.0, 2.0)}) == 3
    assert gemv_rows_from({2: (2.0, 1.0), 3: (1.0, 2.0)}) == 1  # lost at 2: one row only
    assert gemv_rows_from({2: (1.0, 1.0)}) == 1  # a tie goes to the batched kernel
    assert gemv_rows_from({3: (1.0, 2.0)}) == 1  # 2 rows not measured: nothing is known past one
    assert gemv_rows_from({}) == 1


def test_calibrating_times_both_kernels_and_routes_small_batches_by_it(exact):
    chars = exact.chars()
    step = Int8Step(exact.weights(), "gru", never_mask(chars))
    assert step.session(1) is step.sessions["gemv"] and step.session(2) is step.sessions["gemm"]
    seconds = step.calibrate(list(exact.initial_state(1)), most=4, steps=4, repeats=2)
    assert sorted(seconds) == [2, 3, 4] and all(0 < t < 1 for pair in seconds.values() for t in pair)
    assert step.gemv_rows == gemv_rows_from(seconds)
    step.gemv_rows = 3
    assert [step.session(n) is step.sessions["gemv"] for n in (1, 3, 4)] == [True, True, False]
    only_gemm = Int8Step(exact.weights(), "gru", never_mask(chars), kernels=("gemm",))
    assert only_gemm.calibrate(list(exact.initial_state(1))) == {}  # one kernel: nothing to choose


@pytest.mark.parametrize("kernel, bits", [
    ("gemv", None), ("gemm", None), ("gemm", 7),
    pytest.param("gemm", 8, marks=pytest.mark.skipif(not EIGHT_BITS_HERE, reason="no AVX-512 VNNI: never used here"))])
def test_int8_kernels_agree_with_float32(exact, kernel, bits):
    """Each form within the stated tolerances: the CPU's own (None), and the 7-bit one on any CPU."""
    reference, quantized = runtime(exact, "float32"), runtime(exact, kernel, bits)
    ids, _ = reference.encode([TEXT, TEXT])
    rows = 2 if kernel == "gemm" else 1
    s_ref = s_q = list(exact.initial_state(rows))
    feed, vocab = np.ones(rows, bool), len(exact.chars())
    for t in range(ids.shape[1]):
        x = ids[:rows, t]
        want, s_ref = reference.step(x, feed, s_ref)
        got, s_q = quantized.step(x, feed, s_q)
        want, got = want[:, :vocab], got[:, :vocab]
        assert np.abs(got - want).max() <= 0.05 * want.std(), t
    nll, chars, _ = quantized.score([TEXT] * rows, exact.initial_state(rows))
    want_nll, want_chars, _ = exact.score([TEXT] * rows)
    np.testing.assert_allclose(nll / chars, want_nll / want_chars, atol=0.01)


def graph_draw(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """model.int8.draw alone in a graph of its own, run on probs [B, V] (padded to whole blocks) and u [B]."""
    from model.int8 import FLOAT, INT64, Graph, draw, session

    padded = np.pad(probs, ((0, 0), (0, -probs.shape[1] % sampling.BLOCK))).astype(np.float32)
    g = Graph("gemm")
    g.output(draw(g, "probs", "u", padded.shape[1]), "ids")
    s = session(g.model("draw", [("probs", FLOAT, ["B", "V"]), ("u", FLOAT, ["B"])], [("ids", INT64, ["B"])]))
    return s.run(["ids"], {"probs": padded, "u": u.astype(np.float32)})[0]


def test_the_graph_draws_what_the_sampling_policy_draws():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(300, 0.05), size=4000).astype(np.float32)  # peaked rows, as a model's are
    probs[:, [0, 64, 65, 200]] = 0  # ids that must never come: one at a block's start
    u = sampling.noise(1, np.arange(4000), 1)[:, 0]
    want, got = sampling.draw(probs, u), graph_draw(probs, u)
    assert np.isin(got, [0, 64, 65, 200]).sum() == 0 and got.max() < 300
    assert np.mean(got == want) > 0.999  # float32 sums against float64: only ties at a boundary may differ


@pytest.mark.parametrize("only", [0, 63, 64, 127, 129])
def test_the_graph_draws_a_single_possible_id_at_the_extremes_of_u(only):
    p = np.zeros((3, 130), np.float32)
    p[:, only] = 0.5
    u = np.array([np.finfo(np.float32).tiny, 0.5, 1.0])
    assert graph_draw(p, u).tolist() == [only] * 3


def test_one_call_of_n_steps_is_n_calls_of_one(exact):
    """The Loop (sample, feed, nll) against the Python loop over single steps, on the same graph."""
    rt = runtime(exact, "gemm")
    prompts, b = [TEXT[:7], TEXT[:3]], 2
    temps = np.array([0.7, 1.3], np.float32)
    args = (exact.initial_state(b), 30, temps, np.zeros(b, int), np.ones(b), 5, 0)
    texts, states = rt.generate(prompts, *args)
    rt.in_graph = False  # the same step, one character a call, NumPy's draw
    slow_texts, slow_states = rt.generate(prompts, *args)
    assert texts == slow_texts
    np.testing.assert_allclose(states, slow_states, atol=1e-5)
    slow = rt.score([TEXT, TEXT[:9]], exact.initial_state(b))
    rt.in_graph = True
    fast = rt.score([TEXT, TEXT[:9]], exact.initial_state(b))
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-5)
    assert fast[1].tolist() == slow[1].tolist() == [len(TEXT), 9]
    np.testing.assert_allclose(fast[2], slow[2], atol=1e-5)


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
    want = reference.score(tf.constant([text]), tf.zeros([5, 1, units]))  # 2 × (h, c), the recent characters
    for kernel, tolerance in [("float32", 1e-5), ("gemv", 0.02), ("gemm", 0.02)]:
        rt = StepRuntime(Int8Step(weights, "lstm", never_mask(chars), kernels=(kernel,)), chars)
        nll, n, states = rt.score([text], np.zeros((5, 1, units), np.float32))
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


def test_no_rows_is_an_empty_answer_not_an_error(tiny_model_dir):
    m = load(tiny_model_dir)  # the int8 runtime
    texts, states = m.generate([], length=5)
    assert texts == [] and states.shape == (m.num_states, 0, m.units)
    nll, chars, states = m.score([])
    assert nll.shape == chars.shape == (0,) and states.shape == (m.num_states, 0, m.units)
    rt = runtime(m, "gemv")  # nothing to read and nothing to write: a Loop of no steps
    texts, states = rt.generate([""], m.initial_state(1), 0, np.ones(1, np.float32), np.zeros(1, int), np.ones(1), 1, 0)
    assert texts == [""] and np.array_equal(states, m.initial_state(1))


def test_the_batched_kernels_weights_follow_the_cpu_unless_forced(tiny_model_dir):
    assert gemm_weight_bits({"INT8_WEIGHT_BITS": "7"}) == 7 and gemm_weight_bits({"INT8_WEIGHT_BITS": "8"}) == 8
    with pytest.raises(ValueError, match="INT8_WEIGHT_BITS must be 7 or 8"):
        gemm_weight_bits({"INT8_WEIGHT_BITS": "4"})
    assert gemm_weight_bits({}) in (7, 8)
    assert load(tiny_model_dir, weight_bits=7).runtime_form == ("int8 (batched kernel: 7-bit weights; "
                                                                  "one-row kernel up to 1 rows)")
    assert load(tiny_model_dir, runtime="float32").runtime_form == "float32"


UNDER_EMULATION = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from model.int8 import Int8Step, gemm_weight_bits
from model.runtime import StepRuntime
from model.sampling import never_mask
from model.weights import RecurrentLayer, Weights
z = np.load(sys.argv[1], allow_pickle=False)
chars = [str(c) for c in z["chars"]]
w = Weights(embedding=z["embedding"], dense_kernel=z["dense_kernel"], dense_bias=z["dense_bias"],
            book_states=z["book_states"], rnn=[RecurrentLayer(z[f"k{i}"], z[f"r{i}"], z[f"b{i}"]) for i in range(2)])
text = sys.argv[3]
out = {"auto_bits": gemm_weight_bits({})}
ref = StepRuntime(Int8Step(w, "gru", never_mask(chars), kernels=("float32",)), chars)
for kernel, bits, rows in (("gemm", None, 2), ("gemm", 8, 2), ("gemv", None, 1)):
    rt = StepRuntime(Int8Step(w, "gru", never_mask(chars), kernels=(kernel,), weight_bits=bits), chars)
    ids, _ = ref.encode([text] * rows)
    s_ref = s_q = [np.zeros((rows, 24), np.float32)] * 3
    worst = 0.0
    for t in range(ids.shape[1]):
        want, s_ref = ref.step(ids[:, t], np.ones(rows, bool), s_ref)
        got, s_q = rt.step(ids[:, t], np.ones(rows, bool), s_q)
        want, got = want[:, :len(chars)], got[:, :len(chars)]
        worst = max(worst, float(np.abs(got - want).max() / want.std()))
    nll, n, _ = rt.score([text] * rows, np.zeros((3, rows, 24), np.float32))
    want_nll, _, _ = ref.score([text] * rows, np.zeros((3, rows, 24), np.float32))
    out[f"{kernel} {bits}"] = {"worst_logit_error": worst, "nats_off": float(abs(nll - want_nll).max() / n[0])}
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("qemu-x86_64"),
                    reason="needs x86-64 and qemu-user (Debian: apt install qemu-user) to emulate a CPU without VNNI")
def test_on_an_emulated_cpu_without_vnni_the_batched_kernel_is_right(exact, tmp_path):
    """The whole int8 graph under `qemu-x86_64 -cpu Haswell` (AVX2, no AVX-512, no VNNI): ONNX Runtime's own
    non-VNNI kernel, as on most rented servers. The CPU's form (7-bit there) keeps the stated tolerances."""
    w = exact.weights()
    arrays = {"chars": np.array(exact.chars()), "embedding": w.embedding, "dense_kernel": w.dense_kernel,
              "dense_bias": w.dense_bias, "book_states": w.book_states}
    for i, layer in enumerate(w.rnn):
        arrays.update({f"k{i}": layer.kernel, f"r{i}": layer.recurrent, f"b{i}": layer.bias})
    np.savez(tmp_path / "w.npz", **arrays)
    (tmp_path / "run.py").write_text(UNDER_EMULATION)
    assert w.units == 24 and len(w.rnn) == 2  # what the script's states assume
    done = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", sys.executable, str(tmp_path / "run.py"),
                           str(tmp_path / "w.npz"), str(ROOT), TEXT], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["auto_bits"] == 7  # the emulated CPU has no VNNI, and the runtime sees it
    for form in ("gemm None", "gemv None"):  # what that CPU runs, for a batch and for one row
        assert got[form]["worst_logit_error"] <= 0.05 and got[form]["nats_off"] <= 0.01, got
    print("under qemu -cpu Haswell:", got)  # the forced 8-bit form, for the record (saturated there)
