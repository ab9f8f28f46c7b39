"""Who is who in which novel: character names found in the corpus itself.

    python -m train.names FILE_OR_DIR... [--reference OTHER_AUTHORS...]   # each novel's most frequent names
    python -m train.names FILE_OR_DIR... --reference ... --card MODEL_DIR   # and write them into its card

No cast lists are typed in: a name is a 2–3 character string that starts a sentence
and is followed by a verb of speech or thought ("乔峰道：", "黄蓉笑道：", "段誉心想"),
the commonest way a novel names who acts. Each candidate is then counted everywhere
in every novel; its *share* in a novel is that novel's rate (per character of text)
over the sum of its rates in all novels, so 乔峰 has a share near 1 in 天龙八部 and
郭靖 splits between 射雕英雄传 and 神雕侠侣. Words that also take that place (一个,
突然, 冷笑, 小女孩: "一个小女孩突然冷笑道") are no names: given other authors' novels
(`--reference`, a training run's `names_reference`), a candidate used there at more than
REFERENCE_RATE of its rate in the novel it is most used in is dropped; a novel's own
characters are rare anywhere else (乔峰 0 times in 14 M characters of 梁羽生). The table goes into the model card: it
picks a novel for a prompt (`model.books`) and measures how often stories wander into
other novels (`python -m train.evaluate --worlds`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

NAMES_PER_BOOK = 40  # most frequent names kept per novel
MIN_SPEECHES = 5  # a candidate must speak this often in a novel to count as one of its names
PRINCIPAL_SHARE = 0.8  # a name "belongs" to a novel when at least this share of its use is there
REFERENCE_RATE = 0.2  # a candidate other authors use at this fraction of its rate in the novels is no name
MIN_SHARE = 0.3  # a novel lists a name only if at least this share of its use is there (转头 0.09 is everywhere)
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


def book_names(books: dict[str, str], per_book: int = NAMES_PER_BOOK,
               reference: list[str] | None = None) -> dict[str, dict[str, list]]:
    """{book: {name: [count in that book, share]}} for each book's most frequent names.

    `books` maps a novel's name to its (training) text; `reference`, other authors' texts.
    """
    candidates: set[str] = set()
    for text in books.values():
        candidates.update(n for n, c in speakers(text).most_common(per_book * 3) if c >= MIN_SPEECHES)
    counts = {book: {n: text.count(n) for n in candidates} for book, text in books.items()}
    rates = {book: {n: c / max(1, len(books[book])) for n, c in cs.items()} for book, cs in counts.items()}
    used = reference_rates(candidates, reference) if reference else {}
    size = max(1, sum(map(len, books.values())))
    pooled = {n: sum(cs[n] for cs in counts.values()) / size for n in candidates}  # rate in all the novels
    table = {}
    for book, cs in counts.items():
        shares = {n: rates[book][n] / max(1e-30, sum(r[n] for r in rates.values())) for n in cs}
        kept = [n for n in cs if cs[n] >= MIN_SPEECHES and shares[n] >= MIN_SHARE
                and used.get(n, 0.0) <= REFERENCE_RATE * pooled[n]]
        table[book] = {n: [cs[n], round(shares[n], 4)] for n in sorted(kept, key=lambda n: (-cs[n], n))[:per_book]}
    return _drop_contained(table)


def reference_rates(candidates: set[str], reference: list[str]) -> dict[str, float]:
    """Each candidate's rate (per character) in other authors' texts."""
    size = max(1, sum(map(len, reference)))
    return {n: sum(t.count(n) for t in reference) / size for n in candidates}


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
            inside = [m for m in names if n != m and m in n]  # 向杨过, 胡斐又: a name and a word's edge
            if any(names[m][0] >= 3 * count for m in inside):
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
    ap.add_argument("--reference", nargs="*", default=[],
                    help="other authors' novels: words used as often there are not names")
    ap.add_argument("--card", type=Path, help="a model directory whose card's names to replace with these "
                                              "(its novels by name; each named from its training part)")
    ap.add_argument("--holdout", type=float, default=0.05, help="with --card: the held-out share, left out")
    args = ap.parse_args(argv)
    try:
        novels = read_corpus(args.paths, report=lambda s: None)
        reference = [n.text for n in read_corpus(args.reference, report=lambda s: None)] if args.reference else None
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    texts = {n.name: n.split(args.holdout)[0] if args.card else n.text for n in novels}
    table = book_names(texts, reference=reference)
    if args.card:
        return write_names(args.card, table)
    for book, names in table.items():
        shown = sorted(names.items(), key=lambda kv: -kv[1][0])[:args.top]
        print(f"{book}: " + "  ".join(f"{n} {c} ({s:.0%})" for n, (c, s) in shown))
    return 0


def write_names(model_dir: Path, table: dict) -> int:
    """Replace the names of each novel in model_dir's card (model.json) with `table`'s."""
    from model.artifact import ModelError, check_model_dir  # noqa: PLC0415
    from model.card import write_card  # noqa: PLC0415

    try:
        card = check_model_dir(model_dir)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    missing = [b["name"] for b in card.books if b["name"] not in table]
    if missing:
        print(f"error: no text given for {', '.join(missing)}", file=sys.stderr)
        return 2
    for b in card.books:
        b["names"] = table[b["name"]]
    write_card(card, Path(model_dir))
    print(f"{model_dir}: names of {len(card.books)} novels replaced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
