"""World consistency: how often a story wanders into another novel.

    python -m train.evaluate --worlds [--model DIR] [--book auto|none] [--json]

For every novel of the model card with at least two principal names (names that
belong to it: share ≥ 0.8, see `train.names`), four prompts are built from its two
most frequent ones ("A道：“", "A和B", "B", "A对B说"). Each is continued for 600
characters at temperature 0.8 with a fixed seed, so the figure is reproducible. In
the continuations every principal name of every novel is counted; the figure is the
share of those that belong to a novel other than the prompt's. Today's measure of
"stories drift between novels" (the shipped model before novels: 35 %).
"""

from __future__ import annotations

import re

from train.names import principal_names

PROMPTS = ("{a}道：“", "{a}和{b}", "{b}", "{a}对{b}说")
LENGTH = 600  # characters per continuation
TEMPERATURE = 0.8
SEED = 2026


def world_prompts(card_books: list[dict]) -> list[tuple[str, str]]:
    """[(novel, prompt)] built from each novel's two most frequent principal names."""
    principal = principal_names({b["name"]: b.get("names", {}) for b in card_books})
    out = []
    for book, names in principal.items():
        if len(names) >= 2:
            a, b = names[:2]
            out.extend((book, p.format(a=a, b=b)) for p in PROMPTS)
    return out


def count_names(text: str, principal: dict[str, list[str]]) -> dict[str, int]:
    """Occurrences of each novel's principal names in `text` (longest names first, no double counting)."""
    owner = {n: book for book, names in principal.items() for n in names}
    if not owner:
        return {}
    pattern = re.compile("|".join(sorted(map(re.escape, owner), key=len, reverse=True)))
    counts = dict.fromkeys(principal, 0)
    for m in pattern.finditer(text):
        counts[owner[m.group()]] += 1
    return counts


def world_consistency(model, book: str | None = "auto", batch: int = 64, length: int = LENGTH,
                      temperature: float = TEMPERATURE, seed: int = SEED) -> dict:
    """{"foreign_share", "own", "foreign", "prompts", "books": {novel: {...}}, "samples": [...]}."""
    card_books = model.card.get("books", [])
    principal = principal_names({b["name"]: b.get("names", {}) for b in card_books})
    prompts = world_prompts(card_books)
    if not prompts:
        raise ValueError("the model card lists no novels with names: train with python -m train to get them")
    per_book = {name: {"own": 0, "foreign": 0} for name, _ in prompts}
    samples = []
    for start in range(0, len(prompts), batch):
        part = prompts[start:start + batch]
        texts, _ = model.generate([p for _, p in part], length=length, temperature=temperature, seed=seed + start,
                                  book=book)
        for (name, prompt), text in zip(part, texts):
            counts = count_names(text, principal)
            own = counts.get(name, 0)
            per_book[name]["own"] += own
            per_book[name]["foreign"] += sum(counts.values()) - own
            samples.append({"book": name, "prompt": prompt, "picked": model.pick_book(prompt), "text": text})
    own = sum(v["own"] for v in per_book.values())
    foreign = sum(v["foreign"] for v in per_book.values())
    return {"foreign_share": foreign / max(1, own + foreign), "own": own, "foreign": foreign,
            "prompts": len(prompts), "length": length, "temperature": temperature, "seed": seed,
            "book": book, "books": per_book, "samples": samples}
