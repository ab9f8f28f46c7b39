"""Every knob of a training run, in one dataclass saved beside the weights (config.json)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from model.card import WORLDS  # how a model knows its novel (see train.network)


@dataclass
class TrainConfig:
    # data
    min_count: int = 2  # characters seen fewer times than this become [UNK]
    holdout: float = 0.05  # last fraction of every file kept for validation
    seq_len: int = 100  # characters per training window (loss counted on all of them)
    burn_in: int = 0  # extra characters fed before each window, outside the loss, so the model learns to use a warm state
    carry_state: bool = False  # truncated BPTT: batch rows are parallel streams through the text, each batch starting from the last one's final state
    batch_size: int = 256  # windows per step
    world: str = "none"  # how the model knows its novel: "none", "state" (a learned initial state per novel), "token" (a novel's token read first) or "input" (a learned vector per novel added to every character's embedding)
    book_drop: float = 0.15  # with a world: share of windows trained as "no novel", so the model also writes without one
    book_balance: float = 1.0  # windows drawn from each novel ∝ its length to this power (1: as the text comes; 0.5: short novels seen more often)
    quotes: str = "curly"  # quotation style the corpus is normalised to: "curly" (“”), "corner" (「」) or "keep"
    names_reference: str = ""  # other authors' novels (a file or folder): words they use as often are no character names (train.names)
    # model
    cell: str = "gru"  # "gru" or "lstm"
    embedding_dim: int = 256  # size of a character's vector
    units: int = 1024  # state size of every recurrent layer
    layers: int = 2  # stacked recurrent layers
    dropout: float = 0.2  # between layers and before the output, training only
    init_from: str = ""  # a run directory or SavedModel to start from (fine-tuning; see train.parent); "" = random weights
    teacher: str = ""  # a finished run (same corpus and characters, any size) whose predictions the model also learns from (train.distill); "" = the text alone
    distill: float = 0.5  # with a teacher: weight of KL(teacher ‖ model) in the loss, the rest on the text's own characters
    keep_parent_chars: bool = True  # with --init-from: keep every character the parent knew (off: only this corpus's, a smaller output layer)
    # optimisation
    epochs: int = 16  # passes over the training text (an epoch = every character once, on average)
    learning_rate: float = 2e-3  # peak, reached after warmup, then cosine decay to lr_min
    lr_min: float = 1e-4  # learning rate at the end of the last epoch
    warmup_steps: int = 200  # linear warmup from zero
    clipnorm: float = 1.0  # gradient norm clipping
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    patience: int = 3  # epochs without a better validation loss before stopping early
    seed: int = 1234  # windows, initial weights and dropout
    time_budget: float = 0.0  # seconds; start no epoch that would end past this (0 = no limit)
    # validation
    val_chunk: int = 500  # characters per model call when scoring held-out text (state carried across chunks)
    val_max_chars: int = 0  # score at most this many held-out characters per file (0 = all)

    @property
    def recurrent_states(self) -> int:
        """State vectors of the recurrent layers: one per GRU layer, two (h, c) per LSTM layer."""
        return self.layers * (1 if self.cell == "gru" else 2)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        data = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def validate(self) -> None:
        """Raise ValueError with a readable message for impossible settings."""
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"--cell must be gru or lstm, not {self.cell!r}")
        for name in ("seq_len", "batch_size", "embedding_dim", "units", "layers", "epochs", "min_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("--dropout must be in [0, 1)")
        if not 0.0 < self.holdout < 0.5:
            raise ValueError("--holdout must be in (0, 0.5)")
        if self.burn_in < 0:
            raise ValueError("--burn-in must be 0 or more")
        if self.world not in WORLDS:
            raise ValueError(f"--world must be one of {', '.join(WORLDS)}, not {self.world!r}")
        if not 0.0 <= self.book_drop < 1.0:
            raise ValueError("--book-drop must be in [0, 1)")
        if self.world != "none" and self.carry_state:
            raise ValueError("--world needs windows that each lie in one novel: it does not go with --carry-state")
        if not 0.0 <= self.book_balance <= 1.0:
            raise ValueError("--book-balance must be in [0, 1]")
        if self.book_balance != 1.0 and self.carry_state:
            raise ValueError("--book-balance draws windows per novel: it does not go with --carry-state")
        if self.quotes not in ("curly", "corner", "keep"):
            raise ValueError(f"--quotes must be curly, corner or keep, not {self.quotes!r}")
        if not 0.0 <= self.distill <= 1.0:
            raise ValueError("--distill must be in [0, 1]")
        if self.teacher and self.carry_state:
            raise ValueError("--teacher reads the same windows as the model: it does not go with --carry-state")
        if self.carry_state and self.burn_in:
            raise ValueError("--carry-state already starts every window from a warm state: leave --burn-in at 0")
