"""Distillation (--teacher): the loss on fake logits, a student drawn to its teacher, refusals."""

import json

import keras
import numpy as np
import pytest

from tests.conftest import make_story, resumed_against_straight, tiny_config
from train import network
from train.config import TrainConfig
from train.data import log_softmax
from train.distill import DistillationLoss, student_nats, teacher_gap
from train.export import export_run
from train.loop import TrainingError, train
from train.vocab import Vocabulary


def quiet(_):
    pass


def test_the_loss_mixes_the_text_and_the_teacher_as_documented():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(2, 2, 3, 7)).astype(np.float32)  # [B, T, V] each
    y = rng.integers(0, 7, size=(2, 3))
    w = np.array([[1, 1, 0], [1, 0, 1]], np.float32)
    log_p, log_q = log_softmax(student), log_softmax(teacher)
    ce = -np.take_along_axis(log_p, y[..., None], -1)[..., 0]
    kl = (np.exp(log_q) * (log_q - log_p)).sum(-1)
    assert (kl > 0).all()
    pred = np.stack([student, teacher], axis=2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(student_nats(y, pred)), ce, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(teacher_gap(pred)), kl, rtol=1e-4, atol=1e-6)
    loss = float(DistillationLoss(0.3)(y, pred, sample_weight=w))
    assert loss == pytest.approx(float(((0.7 * ce + 0.3 * kl) * w).sum() / w.sum()), rel=1e-5)
    same = np.stack([student, student], axis=2)  # a student that already predicts as its teacher
    np.testing.assert_allclose(keras.ops.convert_to_numpy(teacher_gap(same)), 0, atol=1e-5)


def gap_to(teacher_run, student_run, text: str) -> float:
    """Mean KL(teacher ‖ student) in nats over `text`, both reading it from the zero state."""
    probs = []
    for run in (teacher_run, student_run):
        cfg = TrainConfig.load(run / "config.json")
        chars = Vocabulary.load(run / "vocab.json")
        model, stepper = network.build(cfg, len(chars))
        model.load_weights(run / "best.weights.h5")
        states = [np.zeros((1, cfg.units), np.float32)] * cfg.layers
        probs.append(log_softmax(stepper.predict_on_batch([chars.encode(text)[None, :], *states])[0][0]))
    log_q, log_p = probs
    return float((np.exp(log_q) * (log_q - log_p)).sum(-1).mean())


def test_a_student_learns_its_teachers_predictions(tiny_corpus, tmp_path):
    teacher = tmp_path / "teacher"
    train(teacher, [str(tiny_corpus)], tiny_config(units=40, epochs=3), report=quiet)
    alone = train(tmp_path / "alone", [str(tiny_corpus)], tiny_config(epochs=2), report=quiet)
    taught = train(tmp_path / "taught", [str(tiny_corpus)], tiny_config(epochs=2, teacher=str(teacher), distill=1.0),
                   report=quiet)
    assert taught["history"][-1]["train_distillation"] >= 0  # a KL divergence (distill 1: the teacher alone)
    assert np.isfinite(taught["best_val_nats_per_char"])
    text = make_story(99, paragraphs=3)
    assert gap_to(teacher, tmp_path / "taught", text) < gap_to(teacher, tmp_path / "alone", text)
    assert alone["history"][0]["train_nats"] != taught["history"][0]["train_nats"]
    # Only the student is saved: it exports as a model of its own size, the teacher named in its card.
    card = json.loads((export_run(tmp_path / "taught", report=quiet) / "model.json").read_text())
    assert card["architecture"]["units"] == 24 and card["training"]["teacher"] == str(teacher)


def test_a_distilled_run_resumes_exactly(tiny_corpus, tmp_path):
    teacher = tmp_path / "teacher"
    train(teacher, [str(tiny_corpus)], tiny_config(units=32, epochs=1), report=quiet)
    resumed_against_straight(tiny_corpus, tmp_path, epochs=3, dropout=0.1, teacher=str(teacher), distill=0.5)


def test_a_teacher_must_know_the_same_characters(tiny_corpus, tmp_path):
    other = tmp_path / "other_corpus"
    other.mkdir()
    (other / "倚天.txt").write_text(make_story(5, names=["张无忌", "赵敏", "周芷若", "谢逊"]), encoding="utf-8")
    teacher = tmp_path / "teacher"
    train(teacher, [str(other)], tiny_config(epochs=1), report=quiet)
    with pytest.raises(TrainingError, match="characters differ"):
        train(tmp_path / "s", [str(tiny_corpus)], tiny_config(teacher=str(teacher)), report=quiet)
    with pytest.raises(TrainingError, match="not a run directory"):
        train(tmp_path / "t", [str(tiny_corpus)], tiny_config(teacher=str(tmp_path / "nope")), report=quiet)
    carried = tmp_path / "carried"
    train(carried, [str(tiny_corpus)], tiny_config(epochs=1, carry_state=True), report=quiet)
    with pytest.raises(TrainingError, match="--carry-state run cannot teach"):
        train(tmp_path / "u", [str(tiny_corpus)], tiny_config(teacher=str(carried)), report=quiet)
    with pytest.raises(ValueError, match="--distill"):
        tiny_config(teacher=str(teacher), distill=1.5).validate()
