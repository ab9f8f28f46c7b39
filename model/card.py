"""The model card (model.json beside the SavedModel): what a model is, as types.

    card = ModelCard.from_json(json.loads(path.read_text()))   # checked: ValueError says what is wrong
    card.architecture.cell, card.world, card.book_names()
    path.write_text(json.dumps(card.to_json(), indent=2, ensure_ascii=False))

`train.export` builds it; `model.artifact`, the bot and the benchmarks read attributes.
Measured figures (`validation`), the corpus files and the novels' names stay plain JSON
objects: they are records of what was measured and read, not settings code acts on.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = 4  # bump when OneStep's signatures change; loaders refuse other formats
# 2: initial_state takes the novel of every row (int32 [B], 0 = no novel); the card lists "books" and "world".
# 3: generate takes ban_loops [B]; the states end with a row of the recent characters (model.repeats).
# 4: that row holds up to 512 characters, and ban_loops also holds the rows off repeating phrases.
WORLDS = ("none", "state", "token", "input")  # how a model knows its novel (see train.network)


@dataclass(kw_only=True)
class Architecture:
    cell: str  # "gru" or "lstm"
    layers: int  # stacked recurrent layers
    units: int  # state size of every layer
    embedding_dim: int  # size of a character's vector
    vocab_size: int  # characters, [UNK] and any novel tokens included
    dropout: float = 0.0  # used in training only
    parameters: int = 0  # learned parameters
    storage: str = "float16"  # dtype of the weights on disk
    compute: str = "float32"  # dtype they are computed in


@dataclass(kw_only=True)
class ModelCard:
    format: int = FORMAT
    name: str = ""  # the run's name
    exported: str = ""  # when, "%Y-%m-%d %H:%M:%S %z"
    world: str = "none"  # one of WORLDS
    parent: dict | None = None  # the model a fine-tune started from (train.parent's record), or None
    book_strength: float | None = None  # world "input": the factor on the novels' vectors (train.export)
    books: list[dict] = field(default_factory=list)  # [{"id", "name", "file", "names": {name: [count, share]}}]
    architecture: Architecture
    training: dict = field(default_factory=dict)  # the recipe (train.config) and where it ran
    validation: dict = field(default_factory=dict)  # figures measured on the exported artifact
    flavour: dict | None = None  # the 金庸味 ruler (model.flavour; python -m train.flavour), None: not measured
    corpus: list[dict] = field(default_factory=list)  # the files read: name, SHA-256, sizes, normalisation
    libraries: dict = field(default_factory=dict)  # versions it was exported with

    @classmethod
    def from_json(cls, data: dict) -> ModelCard:
        """A card from model.json's object; ValueError naming the first field that is missing or wrong."""
        if not isinstance(data, dict):
            raise ValueError("model.json must hold a JSON object")
        if data.get("format") != FORMAT:
            raise ValueError(f"model format {data.get('format')!r}, this code reads format {FORMAT}")
        arch = data.get("architecture")
        if not isinstance(arch, dict):
            raise ValueError("model.json has no architecture")
        try:
            architecture = Architecture(**{f.name: arch[f.name] for f in dataclasses.fields(Architecture)
                                           if f.name in arch})
        except TypeError as e:  # a required field missing
            raise ValueError(f"model.json: architecture incomplete ({e})") from None
        if architecture.cell not in ("gru", "lstm"):
            raise ValueError(f"model.json: unknown cell {architecture.cell!r}")
        known = {f.name for f in dataclasses.fields(cls)} - {"architecture"}
        card = cls(architecture=architecture, **{k: v for k, v in data.items() if k in known})
        if card.world not in WORLDS:
            raise ValueError(f"model.json: unknown world {card.world!r}")
        if not isinstance(card.books, list) or not all(isinstance(b, dict) and "name" in b for b in card.books):
            raise ValueError("model.json: books must be a list of objects with a name")
        return card

    def to_json(self) -> dict:
        """model.json's object (book_strength and flavour only where they say something)."""
        data = dataclasses.asdict(self)
        for key in ("book_strength", "flavour"):
            if data[key] is None:
                del data[key]
        return data

    def book_names(self) -> list[str]:
        return [b["name"] for b in self.books]


def write_card(card: ModelCard, model_dir: Path) -> None:
    (Path(model_dir) / "model.json").write_text(json.dumps(card.to_json(), indent=2, ensure_ascii=False))
