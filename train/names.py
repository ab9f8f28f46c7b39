"""Who is who in which novel: character names found in the corpus itself.

    python -m train.names FILE_OR_DIR...      # prints each novel's most frequent names

No cast lists are typed in: a name is a 2–3 character string that starts a sentence
and is followed by a verb of speech or thought ("乔峰道：", "黄蓉笑道：", "段誉心想"),
the commonest way a novel names who acts. Each candidate is then counted everywhere
in every novel; its *share* in a novel is that novel's rate (per character of text)
over the sum of its rates in all novels, so 乔峰 has a share near 1 in 天龙八部 and
郭靖 splits between 射雕英雄传 and 神雕侠侣. The table goes into the model card: it
picks a novel for a prompt (`model.books`) and measures how often stories wander into
other novels (`python -m train.evaluate --worlds`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

NAMES_PER_BOOK = 40  # most frequent names kept per novel
MIN_SPEECHES = 5  # a candidate must speak this often in a novel to count as one of its names
PRINCIPAL_SHARE = 0.8  # a name "belongs" to a novel when at least this share of its use is there
_SPEECH = re.compile(
    r"(?:^|[\s　。！？；：，”’」』…])([\u4e00-\u9fff]{2,3}?)"
    r"(?:道|说道|笑道|叫道|问道|喝道|怒道|心想|心道|说|叹道|大声道|低声道|冷笑道|微笑道|哭道|答道)[：，]",
    re.MULTILINE)
# Pronouns, determiners and numbers that start phrases like 那老者 / 众人 / 两人, not names.
_NOT_A_NAME_START = set("那这众两他她我你此该二三四五六七八九十各诸有只却便又也都")


def speakers(text: str) -> Counter:
    """Candidate names → how often each starts a sentence as the one who speaks or thinks."""
    found = Counter(m.group(1) for m in _SPEECH.finditer(text))
    return Counter({n: c for n, c in found.items() if n[0] not in _NOT_A_NAME_START})


def book_names(books: dict[str, str], per_book: int = NAMES_PER_BOOK) -> dict[str, dict[str, list]]:
    """{book: {name: [count in that book, share]}} for each book's most frequent names.

    `books` maps a novel's name to its (training) text.
    """
    candidates: set[str] = set()
    for text in books.values():
        candidates.update(n for n, c in speakers(text).most_common(per_book * 3) if c >= MIN_SPEECHES)
    counts = {book: {n: text.count(n) for n in candidates} for book, text in books.items()}
    rates = {book: {n: c / max(1, len(books[book])) for n, c in cs.items()} for book, cs in counts.items()}
    table = {}
    for book, cs in counts.items():
        ranked = sorted((n for n in cs if cs[n] >= MIN_SPEECHES), key=lambda n: (-cs[n], n))[:per_book]
        table[book] = {}
        for n in ranked:
            total = sum(r[n] for r in rates.values())
            table[book][n] = [cs[n], round(rates[book][n] / total, 4) if total else 0.0]
    return _drop_contained(table)


def _drop_contained(table: dict) -> dict:
    """Drop a name that is part of a longer name of the same book and (nearly) never used apart
    from it ("无忌" inside "张无忌" stays: it is used alone; "张无" would go)."""
    out = {}
    for book, names in table.items():
        keep = {}
        for n, (count, share) in names.items():
            longer = [m for m in names if n != m and n in m]
            if longer and count <= 1.1 * sum(names[m][0] for m in longer):
                continue
            keep[n] = [count, share]
        out[book] = keep
    return out


def principal_names(table: dict, share: float = PRINCIPAL_SHARE, per_book: int = 20) -> dict[str, list[str]]:
    """Each book's most frequent names that belong to it (share ≥ `share`)."""
    return {book: [n for n, (_, s) in sorted(names.items(), key=lambda kv: -kv[1][0]) if s >= share][:per_book]
            for book, names in table.items()}


def main(argv: list[str] | None = None) -> int:
    from train.corpus import CorpusError, read_corpus  # noqa: PLC0415

    ap = argparse.ArgumentParser(prog="python -m train.names", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", help="novel files or folders")
    ap.add_argument("--top", type=int, default=12, help="names shown per novel")
    args = ap.parse_args(argv)
    try:
        novels = read_corpus(args.paths, report=lambda s: None)
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = book_names({n.name: n.text for n in novels})
    for book, names in table.items():
        shown = sorted(names.items(), key=lambda kv: -kv[1][0])[:args.top]
        print(f"{book}: " + "  ".join(f"{n} {c} ({s:.0%})" for n, (c, s) in shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
