"""Repetition: stutter loops and distinct-4 in continuations, beside the same figures on the novels.

    python -m train.evaluate --repetition [--model DIR] [--book auto|none|NAME] [--json] [NOVELS...]

A *loop* is a unit of 1–4 hanzi repeated three or more times in a row with at most two
punctuation marks between the repeats (`阿碧、阿碧、阿碧`, `你……你……你……`, `哈哈哈`);
`model.repeats` bans exactly this while sampling. distinct-4 is unique 4-grams / all
4-grams of one text (every character counts), averaged over texts. The model continues
each of PROMPTS for 600 characters, SEEDS times, at each of TEMPERATURES (fixed seeds:
reproducible on one runtime); the reference is WINDOWS random 600-character windows of
the novels given (the same figures, so "how often does the author stutter" is beside
"how often does the model").
"""

from __future__ import annotations

import re

import numpy as np

from model.repeats import HANZI

PROMPTS = ("乔峰带阿朱", "段誉心想", "郭靖对黄蓉说", "韦小宝笑道", "他走进客栈", "只听得",
           "令狐冲道：“", "张无忌心中", "杨过和小龙女", "那老者冷笑一声", "夜色渐深，", "胡斐")
TEMPERATURES = (0.5, 0.8, 1.0)
SEEDS = 3  # continuations per prompt and temperature
LENGTH = 600  # characters per continuation (and per window of the novels)
WINDOWS = 300
SEED = 2026

# A unit of 1–4 hanzi, then two or more repeats of it, each after 0–2 marks that are neither
# letters, digits, hanzi nor spaces (\w and \s): the definition model.repeats bans.
LOOP = re.compile(rf"([{HANZI}]{{1,4}})(?:[^\w\s]{{0,2}}\1){{2,}}")


def loops(text: str) -> list[str]:
    """The loops of `text`, each as it stands (non-overlapping, left to right)."""
    return [m.group() for m in LOOP.finditer(text)]


def distinct(text: str, n: int = 4) -> float:
    """Unique n-grams / all n-grams of `text` (1.0 when it has none)."""
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def figures(texts: list[str]) -> dict:
    """{"loops_per_1000", "with_loop", "distinct4", "texts", "chars", "examples"} over `texts`."""
    found = [loops(t) for t in texts]
    chars = sum(map(len, texts))
    return {"loops_per_1000": round(1000 * sum(map(len, found)) / max(1, chars), 3),
            "with_loop": round(sum(bool(f) for f in found) / max(1, len(texts)), 3),
            "distinct4": round(float(np.mean([distinct(t) for t in texts])) if texts else 1.0, 4),
            "texts": len(texts), "chars": chars, "examples": [f[0] for f in found if f][:5]}


def novel_windows(texts: list[str], windows: int = WINDOWS, length: int = LENGTH, seed: int = SEED) -> list[str]:
    """`windows` random windows of `length` characters, each novel weighted by its length."""
    texts = [t for t in texts if len(t) > length]
    if not texts:
        return []
    rng = np.random.default_rng(seed)
    sizes = np.array([len(t) - length for t in texts], np.float64)
    which = rng.choice(len(texts), size=windows, p=sizes / sizes.sum())
    return [texts[i][s:s + length] for i in which for s in [int(rng.integers(0, len(texts[i]) - length))]]


def continuations(model, temperature: float, book: str | None = "auto", seeds: int = SEEDS,
                  length: int = LENGTH, seed: int = SEED, **sampling) -> list[str]:
    """Every prompt continued `seeds` times at `temperature`, in one batched call."""
    prompts = [p for p in PROMPTS for _ in range(seeds)]
    texts, _ = model.generate(prompts, length=length, temperature=temperature, seed=seed, book=book, **sampling)
    return texts


def repetition(model, novels: list[str], book: str | None = "auto", temperatures=TEMPERATURES, **sampling) -> dict:
    """Figures per temperature for the model, and for windows of `novels` (None without them)."""
    reference = novel_windows(novels)
    per_t = {}
    for t in temperatures:
        texts = continuations(model, t, book, **sampling)
        per_t[f"{t:g}"] = {**figures(texts), "samples": texts[:: SEEDS][:4]}
    return {"book": book, "prompts": len(PROMPTS), "seeds": SEEDS, "length": LENGTH, "seed": SEED,
            "ban_loops": sampling.get("ban_loops", True),
            "temperatures": per_t, "novels": figures(reference) if reference else None}


def repetition_lines(result: dict) -> list[str]:
    row = lambda name, f: (f"{name:>18}: {f['loops_per_1000']:.2f} loops / 1,000 chars, "  # noqa: E731
                           f"{f['with_loop']:.0%} with a loop, distinct-4 {f['distinct4']:.3f}"
                           + (f"  e.g. {' '.join(f['examples'][:3])}" if f["examples"] else ""))
    lines = [row(f"temperature {t}", f) for t, f in result["temperatures"].items()]
    if result["novels"]:
        lines.append(row(f"novels ({result['novels']['texts']} windows)", result["novels"]))
    lines.append(f"{result['prompts']} prompts × {result['seeds']} seeds × {result['length']} chars, "
                 f"book {result['book'] or 'none'}, seed {result['seed']}, "
                 f"loop ban {'on' if result['ban_loops'] else 'off'}")
    return lines
