"""World consistency: how often a story wanders into another novel.

    python -m train.evaluate --worlds [--model DIR] [--book auto|none] [--json]

For every novel of the model card with at least two principal names (names that
belong to it: share ≥ 0.8, see `train.names`), four prompts are built from its two
most frequent ones ("A道：“", "A和B", "B", "A对B说"). Each is continued for 600
characters at temperature 0.8 with a fixed seed, so the figure is reproducible. In
the continuations every principal name of every novel is counted; the figure is the
share of those that belong to a novel other than the prompt's. Today's measure of
"stories drift between novels" (the shipped model before novels: 35 %).

    python -m train.evaluate --format [--model DIR] [--json]

counts what a book would not print in 100 such continuations (the world prompts in
turn): missing-glyph marks (□ 〓), corner quotes (「」『』) and hard-wrapped runs (≥ 3
consecutive lines under 30 characters, none of them dialogue).
"""

from __future__ import annotations

import re

from train.names import principal_names

PROMPTS = ("{a}道：“", "{a}和{b}", "{b}", "{a}对{b}说")
LENGTH = 600  # characters per continuation
TEMPERATURE = 0.8
SEED = 2026


MISSING_GLYPHS = "□〓"
OCR_SLIPS = "囗"  # U+56D7, the enclosure radical: a scanner's reading of 口 (开囗, 叹了囗气), never prose
CORNER_QUOTES = "「」『』"
SHORT_LINE = 30  # characters; a run of WRAPPED_RUN lines shorter than this (not dialogue) looks hard-wrapped
WRAPPED_RUN = 3
FORMAT_SAMPLES = 100


def format_defects(text: str) -> dict[str, int]:
    """Marks a printed novel would not have: {"missing_glyph", "ocr_slips", "corner_quotes", "wrapped_runs"}.

    The last line is left out of the wrap count (a sample stops mid-line)."""
    lines = [line.strip("　 \t") for line in text.split("\n")[:-1]]
    wrapped = [0 < len(line) < SHORT_LINE and not any(q in line for q in "“”") for line in lines]
    runs, length = 0, 0
    for short in wrapped + [False]:
        if short:
            length += 1
            continue
        runs += length >= WRAPPED_RUN
        length = 0
    return {"missing_glyph": sum(text.count(c) for c in MISSING_GLYPHS),
            "ocr_slips": sum(text.count(c) for c in OCR_SLIPS),
            "corner_quotes": sum(text.count(c) for c in CORNER_QUOTES), "wrapped_runs": runs}


def format_check(model, samples: int = FORMAT_SAMPLES, batch: int = 64, length: int = LENGTH,
                 temperature: float = TEMPERATURE, seed: int = SEED) -> dict:
    """format_defects summed over `samples` continuations of the world prompts (in turn, book auto)."""
    prompts = [p for _, p in world_prompts(model.card.books)] or ["　　"]
    prompts = [prompts[i % len(prompts)] for i in range(samples)]
    totals = {"missing_glyph": 0, "ocr_slips": 0, "corner_quotes": 0, "wrapped_runs": 0}
    flagged = []
    for start in range(0, samples, batch):
        texts, _ = model.generate(prompts[start:start + batch], length=length, temperature=temperature,
                                  seed=seed + start)
        for text in texts:
            found = format_defects(text)
            totals = {k: totals[k] + found[k] for k in totals}
            if any(found.values()):
                flagged.append(text)
    return {"samples": samples, "length": length, "temperature": temperature, "seed": seed, **totals,
            "flagged": flagged}


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
    card_books = model.card.books
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
