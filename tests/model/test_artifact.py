"""The OneStep SavedModel contract, on a tiny model the tests train and export themselves."""

import json
import math

import numpy as np
import pytest

from model import ModelError, check_model_dir, load
from model.artifact import RUNTIMES
from tests.conftest import run_python
from train import network
from train.config import TrainConfig
from train.data import score_streams
from train.vocab import Vocabulary


@pytest.fixture(scope="module", params=RUNTIMES)
def tiny(tiny_model_dir, request):
    """The tiny model on each runtime: the contract holds for both."""
    return load(tiny_model_dir, runtime=request.param)


@pytest.fixture(scope="module")
def exact(tiny_model_dir):
    return load(tiny_model_dir, runtime="float32")


def test_loads_in_a_fresh_process_with_tensorflow_alone(tiny_model_dir, tmp_path):
    # No project code on the path: only TensorFlow reads the artifact.
    script = f"""
import tensorflow as tf
m = tf.saved_model.load({str(tiny_model_dir)!r})
s = m.initial_state(tf.constant([0, 0]))  # no novel, for both rows
out = m.generate(tf.constant(["乔峰带阿朱", "😀 hello"]), s, tf.constant(30), tf.constant([0.8, 1.0]),
                 tf.constant([0, 0]), tf.constant([1.0, 1.0]), tf.constant(1, tf.int64), tf.constant(0, tf.int64),
                 tf.constant([True, False]))  # ban_loops
texts = [t.decode() for t in out["text"].numpy()]
print(len(texts[0]), len(texts[1]), "[UNK]" in "".join(texts))
"""
    result = run_python("-c", script, cwd=tmp_path, env={"PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["30", "30", "False"]


def test_continuing_from_returned_states_equals_one_long_call(tiny):
    prompts, temps = ["乔峰带阿朱", "段誉"], [0.8, 1.2]
    a, s1 = tiny.generate(prompts, length=40, temperature=temps, seed=5)
    b, s2 = tiny.generate(["", ""], s1, length=40, temperature=temps, seed=5, step=40)
    whole, s3 = tiny.generate(prompts, length=80, temperature=temps, seed=5)
    assert [x + y for x, y in zip(a, b)] == whole
    np.testing.assert_array_equal(s2, s3)
    assert all(len(t) == 80 for t in whole)


def test_rows_of_a_batch_keep_their_own_prompt_and_state(tiny):
    alone, _ = tiny.generate(["黄蓉"], length=20, temperature=1e-4, seed=1)
    batched, _ = tiny.generate(["乔峰在聚贤庄说道", "黄蓉"], length=20, temperature=1e-4, seed=1)
    assert batched[1] == alone[0]  # near-greedy: identical whatever else is in the batch


def test_unseen_characters_and_bad_utf8_still_generate(tiny):
    texts, _ = tiny.generate(["🐉Zz龘", ""], length=25, temperature=1.0, seed=3)
    assert all(len(t) == 25 and "[UNK]" not in t for t in texts)


def test_top_k_one_is_greedy_and_top_p_restricts(tiny):
    greedy, _ = tiny.generate(["乔峰"], length=30, temperature=1.0, top_k=1, seed=1)
    again, _ = tiny.generate(["乔峰"], length=30, temperature=1.0, top_k=1, seed=99)
    assert greedy == again
    tiny_p, _ = tiny.generate(["乔峰"], length=30, temperature=1.0, top_p=1e-6, seed=42)
    assert tiny_p == greedy  # a nucleus this small holds only the likeliest character


@pytest.mark.parametrize("temperature", [0, -1, float("nan"), float("inf"), "abc"])
def test_bad_temperature_is_refused(tiny, temperature):
    with pytest.raises(ValueError, match="temperature"):
        tiny.generate(["乔峰"], length=5, temperature=temperature)


@pytest.fixture(scope="module")
def raw(tiny_model_dir):
    """The SavedModel as TensorFlow alone loads it, without model.load()."""
    import tensorflow as tf

    return tf.saved_model.load(str(tiny_model_dir))


def test_savedmodel_itself_refuses_bad_temperature(raw):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be finite and > 0"):
        raw.generate(tf.constant(["a"]), raw.initial_state(tf.constant([0])), tf.constant(3),
                     tf.constant([float("nan")]), tf.constant([0]), tf.constant([1.0]),
                     tf.constant(1, tf.int64), tf.constant(0, tf.int64), tf.constant([True]))


def test_score_matches_keras_and_carries_state(exact, tiny_run):
    cfg = TrainConfig.load(tiny_run / "config.json")
    vocab = Vocabulary.load(tiny_run / "vocab.json")
    text = "　　乔峰在少林寺说道：“阿朱，点头。”段誉🐉笑道。"
    nll, chars, _ = exact.score([text])
    assert chars[0] == len(text) and math.isfinite(nll[0])
    model, stepper = network.build(cfg, len(vocab))
    model.load_weights(tiny_run / "best.weights.h5")
    for layer in model.layers:  # the artifact stores float16
        layer.set_weights([w.astype(np.float16).astype(np.float32) for w in layer.get_weights()])
    expected, _ = score_streams(stepper, stepper.get_layer("logits"), [vocab.encode(text)], cfg.layers,
                                network.top_state_index(cfg), cfg.units, chunk=7)
    np.testing.assert_allclose(nll, expected, rtol=1e-4)
    # Scoring in two pieces with the state carried gives the same total.
    n1, c1, s = exact.score([text[:10]])
    n2, c2, _ = exact.score([text[10:]], s)
    np.testing.assert_allclose(n1 + n2, nll, rtol=1e-5)


def test_model_card_describes_the_run(tiny_model_dir):
    card = json.loads((tiny_model_dir / "model.json").read_text())
    assert card["architecture"]["layers"] == 2 and card["architecture"]["units"] == 24
    assert len(card["corpus"]) == 3 and all(len(f["sha256"]) == 64 for f in card["corpus"])
    assert card["validation"]["nats_per_char_training"] > 0
    assert card["libraries"]["tensorflow"]


def test_bad_model_directories_are_named(tmp_path, tiny_model_dir):
    with pytest.raises(ModelError, match="no such model directory"):
        check_model_dir(tmp_path / "missing")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model.json").write_text("{}")
    with pytest.raises(ModelError, match="incomplete model directory, missing saved_model.pb"):
        check_model_dir(partial)
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_model_dir, old)
    card = json.loads((old / "model.json").read_text())
    (old / "model.json").write_text(json.dumps({**card, "format": 99}))
    with pytest.raises(ModelError, match="model format 99"):
        check_model_dir(old)


def test_the_float32_runtime_is_the_savedmodel_itself(exact, raw):
    # model.load(runtime="float32") runs the same graph rebuilt in-process with widened weights.
    import tensorflow as tf

    texts = ["乔峰在少林寺说道", "段誉🐉笑道：“阿朱”"]
    zero = np.zeros([exact.num_states, 2, exact.units], np.float32)
    want = raw.score(tf.constant(texts), tf.constant(zero))
    nll, _, states = exact.score(texts, zero)
    np.testing.assert_allclose(nll, want["nll"].numpy(), rtol=1e-5)
    # float32 rounding differs by CPU (AVX-512 or AVX2 code paths): 1.2e-5 seen under qemu -cpu Haswell
    np.testing.assert_allclose(states, want["states"].numpy(), atol=5e-5)
    prompts, temps, ks, ps = ["乔峰", "段誉在"], [1e-3, 1e-3], [0, 5], [1.0, 0.9]
    got, _ = exact.generate(prompts, zero, 25, temps, ks, ps, seed=3, step=7)
    saved = raw.generate(tf.constant(prompts), tf.constant(zero), tf.constant(25), tf.constant(temps),
                         tf.constant(ks), tf.constant(ps), tf.constant(3, tf.int64), tf.constant(7, tf.int64),
                         tf.constant([True, True]))
    assert got == [t.decode() for t in saved["text"].numpy()]


def test_length_zero_only_reads_the_prompts(tiny):
    texts, states = tiny.generate(["乔峰带阿朱", "段誉"], length=0)
    _, _, read = tiny.score(["乔峰带阿朱", "段誉"])
    assert texts == ["", ""]
    np.testing.assert_array_equal(states, read)
    after, _ = tiny.generate(["", ""], states, length=20, temperature=0.9, seed=4)
    whole, _ = tiny.generate(["乔峰带阿朱", "段誉"], length=20, temperature=0.9, seed=4)
    assert after == whole


def test_the_card_is_checked_on_load(tiny_model_dir, tmp_path):
    import shutil

    from model.card import ModelCard

    card = json.loads((tiny_model_dir / "model.json").read_text())
    typed = ModelCard.from_json(card)
    assert typed.architecture.units == 24 and typed.architecture.cell == "gru" and typed.to_json() == card
    broken = tmp_path / "m"
    shutil.copytree(tiny_model_dir, broken)
    for change, message in ((lambda c: c.pop("architecture"), "no architecture"),
                            (lambda c: c["architecture"].pop("units"), "architecture incomplete"),
                            (lambda c: c["architecture"].update(cell="rnn"), "unknown cell"),
                            (lambda c: c.update(world="dream"), "unknown world")):
        bad = json.loads(json.dumps(card))
        change(bad)
        (broken / "model.json").write_text(json.dumps(bad))
        with pytest.raises(ModelError, match=message):
            load(broken)


def test_matrices_stored_in_8_bits_halve_the_artifact_and_score_alike(tiny_run, tiny_model_dir, tmp_path):
    out = tmp_path / "int8"
    done = run_python("-m", "train.export", str(tiny_run), "--out", str(out), "--storage", "int8")
    assert done.returncode == 0, done.stderr[-2000:]
    size = lambda d: sum(f.stat().st_size for f in (d / "variables").iterdir())  # noqa: E731
    assert size(out) < size(tiny_model_dir)  # (a tiny model is mostly its vocabulary; the shipped one halves)
    assert json.loads((out / "model.json").read_text())["architecture"]["storage"] == "int8"
    text = "　　乔峰道：“阿朱，点头。”段誉在大理叹了口气。"
    for runtime in RUNTIMES:  # the SavedModel's own graph widens them; the int8 runtime derives its form
        small, full = load(out, runtime=runtime), load(tiny_model_dir, runtime=runtime)
        nll, chars, _ = small.score([text], small.initial_state(1))
        want, _, _ = full.score([text], full.initial_state(1))
        assert abs(nll[0] - want[0]) / chars[0] < 0.01, runtime
        texts, _ = small.generate(["乔峰"], length=20, temperature=0.8, seed=1)
        assert len(texts[0]) == 20
    np.testing.assert_allclose(load(out, "float32").weights().embedding,
                               load(tiny_model_dir, "float32").weights().embedding.astype(np.float32), atol=0.05)
