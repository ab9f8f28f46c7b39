"""Starting a run from an existing model (`python -m train --init-from RUN_OR_SAVEDMODEL`).

    python -m train --init-from model/default --corpus my_novels/ --out runs/mine

The parent is a run directory (its best weights) or an exported SavedModel (the
shipped one included; reading it needs TensorFlow). The child keeps the parent's
architecture and every character the parent knew, in the parent's order; characters
of the new corpus the parent did not know are appended. A new character's embedding
row starts as the parent's [UNK] row (how the parent read it) and its output column as
the parent's [UNK] column, with [UNK]'s probability shared equally between [UNK] and
the new characters (bias − log(1 + new)): before any training the child gives every
known character exactly the parent's probability. The child keeps the parent's world
unless --world says otherwise. Novel tokens (world "token") read as the parent's token
of the novel with the same name, or as its "no novel" token for a novel it did not
know: a fine-tune on your own novel starts from how the parent writes with no novel
given. A "state" world's table and an "input" world's vectors start fresh. The parent is recorded in RUN/parent.json
and in the exported card.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.weights import RecurrentLayer, Weights
from train.config import TrainConfig
from train.export import run_books, run_weights
from train.vocab import BOOK_TOKEN_BASE, UNK, Vocabulary, book_token

# The architecture a child takes from its parent; giving one of these differently is an error.
ARCHITECTURE = ("cell", "layers", "units", "embedding_dim")
# Taken from the parent unless given: a model that always read a novel's token first has
# never started from the zero state, so its child goes on reading one.
INHERITED = ("world",)
# Defaults suited to fine-tuning, used where the command line does not set them: a lower peak
# learning rate (the weights are already good; 2e-3 would shake them), a short warmup, few epochs.
FINE_TUNE = {"learning_rate": 5e-4, "lr_min": 5e-5, "warmup_steps": 20, "epochs": 4}


class ParentError(Exception):
    """A parent model that cannot be used; the message says why."""


@dataclass
class Parent:
    path: Path
    name: str  # the run directory's or the card's name
    architecture: dict  # cell, layers, units, embedding_dim
    world: str  # "none", "state", "token" or "input"
    chars: list[str]  # the vocabulary, [UNK] first
    books: list[str]  # the names of its novels 1..K
    weights: Weights  # the shared layers, float32 (see _float32)

    def record(self, child_chars: list[str]) -> dict:
        """parent.json: where the child came from."""
        known = set(self.chars)
        return {"path": str(self.path), "name": self.name, "world": self.world, "architecture": self.architecture,
                "vocab_size": len(self.chars),
                "new_chars": sum(1 for c in child_chars[1:] if c not in known)}


def load_parent(path: str | Path) -> Parent:
    """Read a run directory (config.json) or a SavedModel directory (model.json)."""
    path = Path(path)
    if (path / "config.json").exists():
        cfg = TrainConfig.load(path / "config.json")
        vocab = Vocabulary.load(path / "vocab.json")
        weights = run_weights(path, cfg, len(vocab))
        return Parent(path, path.name, {k: getattr(cfg, k) for k in ARCHITECTURE}, cfg.world, vocab.chars,
                      [b["name"] for b in run_books(path)["books"]], _float32(weights))
    if (path / "model.json").exists():
        from model.artifact import ModelError, load  # noqa: PLC0415  (TensorFlow)

        try:
            model = load(path)
        except ModelError as e:
            raise ParentError(str(e)) from None
        arch = model.card.architecture
        return Parent(path, model.card.name or path.name, {k: getattr(arch, k) for k in ARCHITECTURE},
                      model.world, model.chars(), model.card.book_names(),
                      _float32(model.weights()))
    raise ParentError(f"{path}: neither a run directory (config.json) nor a model directory (model.json)")


def _float32(weights: Weights) -> Weights:
    """The shared layers in float32 (a novel table is the child's own)."""
    f = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return Weights(embedding=f(weights.embedding), dense_kernel=f(weights.dense_kernel),
                   dense_bias=f(weights.dense_bias),
                   rnn=[RecurrentLayer(*(f(a) for a in layer.arrays().values())) for layer in weights.rnn])


def fine_tune_config(given: dict, parent: Parent) -> TrainConfig:
    """The child's config: the flags given, then what it inherits from the parent, then
    fine-tuning defaults. A given architecture must be the parent's."""
    inherited = {key: getattr(parent, key) for key in INHERITED}
    cfg = TrainConfig(**{**FINE_TUNE, **inherited, **parent.architecture, **given})
    check_architecture(cfg, parent)
    return cfg


def child_vocabulary(parent: Parent, own: Vocabulary, keep_parent: bool = True) -> Vocabulary:
    """The parent's characters (its novel tokens left out; with keep_parent False only those this
    corpus has too), in the parent's order, then the new corpus's characters it lacked."""
    mine = set(own.chars)
    kept = [c for c in parent.chars if not _is_book_token(c) and (keep_parent or c in mine)]
    known = set(kept)
    return Vocabulary(kept + [c for c in own.chars[1:] if c not in known])


def _is_book_token(c: str) -> bool:
    return c != UNK and len(c) == 1 and BOOK_TOKEN_BASE <= ord(c) <= 0xF8FF


def child_weights(parent: Parent, child_chars: list[str], child_books: list[str] = ()) -> Weights:
    """The parent's weights with embedding rows and output columns laid out for `child_chars`
    (`child_books`: the child's novel names 1..K, for its novel tokens)."""
    index = {c: i for i, c in enumerate(parent.chars)}
    # Output columns: a known character's own; new characters and novel tokens (never predicted) [UNK]'s.
    out = np.array([0 if _is_book_token(c) else index.get(c, 0) for c in child_chars])
    # Embedding rows: the same, but a novel token reads as the parent's token for that novel.
    rows = np.array([_parent_token(parent, index, child_books, c) if _is_book_token(c) else index.get(c, 0)
                     for c in child_chars])
    bias = parent.weights.dense_bias[out].copy()
    # [UNK]'s probability, shared between every column copied from it: the known ones keep theirs.
    shared = out == 0
    bias[shared] -= math.log(int(shared.sum()))
    return Weights(embedding=parent.weights.embedding[rows], rnn=parent.weights.rnn,
                   dense_kernel=parent.weights.dense_kernel[:, out], dense_bias=bias)


def _parent_token(parent: Parent, index: dict, child_books: list[str], token: str) -> int:
    """Parent row for a child's novel token: the same-named novel's token, else "no novel"'s, else [UNK]."""
    k = ord(token) - BOOK_TOKEN_BASE
    name = child_books[k - 1] if 1 <= k <= len(child_books) else None
    if name in parent.books:
        return index.get(book_token(parent.books.index(name) + 1), 0)
    return index.get(book_token(0), 0)


def check_architecture(cfg: TrainConfig, parent: Parent) -> None:
    for key in ARCHITECTURE:
        if getattr(cfg, key) != parent.architecture[key]:
            raise ParentError(f"--{key.replace('_', '-')} {getattr(cfg, key)} differs from the parent's "
                              f"{parent.architecture[key]}: a fine-tuned model keeps its parent's architecture")


def save_record(run: Path, parent: Parent, child_chars: list[str]) -> None:
    (run / "parent.json").write_text(json.dumps(parent.record(child_chars), indent=2, ensure_ascii=False))
