"""Learning from a bigger model's predictions as well as from the text (knowledge distillation).

    python -m train --init-from runs/p1024 --teacher runs/f2048 --distill 0.5 --corpus NOVELS --out runs/m1024

The teacher is a finished run on the same corpus with the same characters and novels, of any
size (e.g. 2×GRU 2048, too slow to ship). It is frozen and run without dropout beside the
student on every window. The student's loss at each character is

    (1 − distill) × (−log p_student(the text's character)) + distill × KL(p_teacher ‖ p_student)

in nats: the teacher's whole distribution says which other characters were plausible there,
more than the one character the text happened to have. Only the student is trained, saved
and exported, so the shipped model keeps its size and speed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras

from train import network
from train.config import TrainConfig
from train.export import run_books
from train.vocab import Vocabulary


class TeacherError(Exception):
    """A teacher that cannot teach this run; the message says why."""


def load_teacher(path: str | Path, student: TrainConfig, vocab: Vocabulary, book_names: list[str]) -> keras.Model:
    """The teacher run's training model with its best weights, frozen and without dropout.

    Its characters must be the student's, in the same order (ids are shared), and its world
    and novels too: both read the same windows (and the same novel of each window)."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise TeacherError(f"{path}: not a run directory (no config.json); a teacher is a run of python -m train")
    cfg = TrainConfig.load(path / "config.json")
    if Vocabulary.load(path / "vocab.json").chars != vocab.chars:
        raise TeacherError(f"{path}: the teacher's characters differ from this run's; train both on the same "
                           "corpus from parents with the same vocabulary")
    if cfg.world != student.world:
        raise TeacherError(f"{path}: the teacher's world is {cfg.world!r}, this run's {student.world!r}: "
                           "they must read the same inputs")
    books = run_books(path)["books"]
    if cfg.world != "none" and [b["name"] for b in books] != list(book_names):
        raise TeacherError(f"{path}: the teacher's novels differ from this run's")
    if cfg.carry_state:  # its weights file holds the carried state too, a model of another shape
        raise TeacherError(f"{path}: a --carry-state run cannot teach; train the teacher on windows")
    source = path / "best.weights.h5"
    if not source.exists():
        raise TeacherError(f"{path}: no best.weights.h5 (has the teacher finished an epoch?)")
    cfg = dataclasses.replace(cfg, dropout=0.0)  # deterministic targets
    teacher, _ = network.build(cfg, len(vocab), len(books) if cfg.world != "none" else 0)
    teacher.load_weights(source)
    teacher.trainable = False
    teacher.name = "teacher"  # the student's model is "char_rnn" too, and names in one model are unique
    return teacher


def pair(student: keras.Model, teacher: keras.Model) -> keras.Model:
    """inputs → [B, T, 2, V]: the student's logits and the teacher's (no gradient), side by side,
    for DistillationLoss. Only the student's weights are trainable."""
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name) for t in student.inputs]
    x = inputs if len(inputs) > 1 else inputs[0]
    both = keras.ops.stack([student(x), keras.ops.stop_gradient(teacher(x))], axis=2)
    return keras.Model(x, both, name="student_and_teacher")


def _student_log_probs(y_pred):
    return keras.ops.log_softmax(y_pred[:, :, 0], axis=-1)  # [B, T, V]


def student_nats(y_true, y_pred):
    """[B, T]: −log p_student of the text's characters (the training loss without a teacher)."""
    log_p = _student_log_probs(y_pred)
    ids = keras.ops.expand_dims(keras.ops.cast(y_true, "int32"), -1)
    return -keras.ops.squeeze(keras.ops.take_along_axis(log_p, ids, axis=-1), -1)


def teacher_gap(y_pred):
    """[B, T]: KL(p_teacher ‖ p_student) in nats (0 where the student predicts as the teacher does)."""
    log_q = keras.ops.log_softmax(y_pred[:, :, 1], axis=-1)
    return keras.ops.sum(keras.ops.exp(log_q) * (log_q - _student_log_probs(y_pred)), axis=-1)


class DistillationLoss(keras.losses.Loss):
    """(1 − weight) × student_nats + weight × teacher_gap, averaged with the windows' sample weights."""

    def __init__(self, weight: float, **kwargs):
        super().__init__(name="distillation", reduction="mean_with_sample_weight", **kwargs)
        self.weight = float(weight)

    def call(self, y_true, y_pred):
        return (1.0 - self.weight) * student_nats(y_true, y_pred) + self.weight * teacher_gap(y_pred)

    def get_config(self):
        return {"weight": self.weight}
