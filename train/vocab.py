"""The character vocabulary: id 0 is [UNK], then characters by falling frequency."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

UNK = "[UNK]"
BOOK_TOKEN_BASE = 0xE000  # novel k's token (world "token") is chr(BOOK_TOKEN_BASE + k): private-use, never in text


def book_token(k: int) -> str:
    """The character that stands for novel k (0 = no novel)."""
    return chr(BOOK_TOKEN_BASE + k)


class Vocabulary:
    def __init__(self, chars: list[str]):
        if not chars or chars[0] != UNK:
            raise ValueError("a vocabulary starts with [UNK]")
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def build(cls, texts: list[str], min_count: int = 2) -> "Vocabulary":
        """Characters seen at least min_count times over all texts, most frequent first."""
        counts = Counter()
        for t in texts:
            counts.update(t)
        kept = [c for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]
        return cls([UNK] + kept)

    def with_book_tokens(self, n_books: int) -> "Vocabulary":
        """This vocabulary with the tokens of "no novel" and novels 1..n_books appended."""
        return Vocabulary(self.chars + [book_token(k) for k in range(n_books + 1)])

    @property
    def token_base(self) -> int:
        """Id of the "no novel" token (novel k's is this + k), or 0 without book tokens."""
        return self.index.get(book_token(0), 0)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids, shape [len(text)]; unknown characters become 0."""
        get = self.index.get
        return np.fromiter((get(c, 0) for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.chars, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        return cls(json.loads(path.read_text()))
