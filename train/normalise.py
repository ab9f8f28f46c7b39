"""Making novels read like a book: re-join hard-wrapped lines, one quotation style,
simplified characters, no missing-glyph marks.

    python -m train.corpus FILE_OR_DIR...     # prints, per file, what normalisation changed

Downloads of the same novel differ in ways a character model learns as if they were
style: a file hard-wrapped at 25 characters teaches the model to write 25-character
lines; 「」 in one novel and “” in the next teach it both; "□" (a glyph the
scanner could not read) becomes a character it writes. Every rule here works from
the file itself (line-length statistics, character classes), never from our novels
by name, so a user's own downloads get the same treatment.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

# Quote styles a corpus can be brought to: "curly" (“”‘’, mainland books), "corner" (「」『』), "keep".
QUOTE_STYLES = ("curly", "corner", "keep")
_TO_CURLY = str.maketrans("「」『』", "“”‘’")
_TO_CORNER = str.maketrans("“”‘’", "「」『』")

# Marks that stand for a character the source could not show: the white square, the
# geta mark 〓 of Chinese typesetting, Unicode's replacement character; and private-use
# characters (U+E000–U+F8FF), a download site's font-specific glyphs that no reader's
# font shows (the model also keeps that range for its novels' tokens).
MISSING_GLYPHS = "□〓\ufffd▯"
_MISSING = re.compile(f"[{MISSING_GLYPHS}\ue000-\uf8ff]")
# Characters an OCR pass read in place of the book's: 囗 (U+56D7, the enclosure radical, which prose
# never uses) for 口 — 46 of them in one download of 《天龙八部》 (开囗, 叹了囗气, 胸囗).
OCR_SLIPS = {"囗": "口"}
_FIX_SLIPS = str.maketrans(OCR_SLIPS)

# OpenCC's t2s leaves 著 alone, since 著 is also a simplified character (著名, 著作);
# old mainland and Taiwanese editions use it for the aspect particle 着 (接著, 看著).
# Words where 著 means "to write / notable" keep it; everywhere else it becomes 着.
_ZHU_WORDS = ("著名", "著作", "显著", "卓著", "昭著", "土著", "著述", "著称", "著书", "名著", "原著", "巨著",
              "编著", "论著", "专著", "撰著", "遗著", "新著", "合著", "著录", "著者", "拙著", "大著", "著有")
_ZHU_KEEP = re.compile("|".join(_ZHU_WORDS))

_INDENT = " \t\u3000\xa0"
# Indents other than the books' "　　": ASCII or no-break spaces at a line's start, and runs of
# them inside a line where a download squeezed paragraphs onto one line.
_LEADING_SPACES = re.compile(r"^[ \t\xa0]+(?=\S)", re.MULTILINE)
_INLINE_INDENT = re.compile(r"(?<=\S)(?: {4,}|\xa0{2,}|[ \xa0]*\t[ \xa0]*)(?=\S)")
_SENTENCE_END = tuple("。！？」』”’…")
_PUNCT_START = tuple("，。、；：！？」』”’）…")
WRAP_MIN_SHARE = 0.2  # a file is hard-wrapped when this share of its lines sit at one width (prose: ~1 %)
WRAP_MIN_WIDTH = 16  # narrower "widths" are headings, verse and one-line paragraphs, not wrapping
WRAP_SLACK = 3  # a wrapped line may fall this many characters short of the width (punctuation pushed over)
WRAP_CLIFF = 5  # lines at the width outnumber lines just past it at least this many times
WRAP_NEIGHBOURS = 10  # lines looked at on each side to tell a wrapped region from unwrapped prose


@dataclass
class Normalisation:
    """What to do to every novel; the defaults are what training uses."""

    rejoin: bool = True  # paragraphs: one indent style ("　　"), hard-wrapped lines re-joined
    quotes: str = "curly"  # one of QUOTE_STYLES
    simplify: bool = True  # traditional and variant forms → simplified (OpenCC t2s)
    drop_marks: bool = True  # remove missing-glyph marks (MISSING_GLYPHS)
    fix_slips: bool = True  # OCR slips → what the book printed (OCR_SLIPS: 囗 → 口)


@dataclass
class Changes:
    """What normalisation did to one text, for the per-file report and the corpus card."""

    indents_fixed: int = 0  # paragraphs whose indent became "　　" (or that were split off a long line)
    lines_rejoined: int = 0
    wrap_width: int = 0  # detected hard-wrap width in characters (0 = not wrapped)
    quotes_converted: int = 0
    chars_simplified: int = 0
    marks_dropped: int = 0
    slips_fixed: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return ((f"{self.indents_fixed} indents made 「　　」, " if self.indents_fixed else "")
                + f"{self.lines_rejoined} lines re-joined"
                + (f" (wrapped at {self.wrap_width})" if self.wrap_width else "")
                + f", {self.quotes_converted} quotes converted, {self.chars_simplified} characters simplified, "
                  f"{self.marks_dropped} missing-glyph marks dropped"
                + (f", {self.slips_fixed} OCR slips fixed (囗 → 口)" if self.slips_fixed else ""))

    def as_dict(self) -> dict:
        return {"indents_fixed": self.indents_fixed, "lines_rejoined": self.lines_rejoined,
                "wrap_width": self.wrap_width, "quotes_converted": self.quotes_converted,
                "chars_simplified": self.chars_simplified, "marks_dropped": self.marks_dropped,
                "slips_fixed": self.slips_fixed}


def normalise(text: str, options: Normalisation | None = None) -> tuple[str, Changes]:
    """Apply every rule that `options` turns on; (text, what changed). `text` has LF endings."""
    options = options or Normalisation()
    if options.quotes not in QUOTE_STYLES:
        raise ValueError(f"quote style must be one of {', '.join(QUOTE_STYLES)}, not {options.quotes!r}")
    changes = Changes()
    if options.drop_marks:
        text, changes.marks_dropped = _MISSING.subn("", text)
    if options.fix_slips:
        changes.slips_fixed = sum(text.count(c) for c in OCR_SLIPS)
        text = text.translate(_FIX_SLIPS)
    if options.rejoin:
        text, changes.indents_fixed = unify_indents(text)
        text, changes.lines_rejoined, changes.wrap_width = rejoin_wrapped(text)
    if options.simplify:
        text, changes.chars_simplified = simplify(text)
    if options.quotes != "keep":
        table = _TO_CURLY if options.quotes == "curly" else _TO_CORNER
        converted = text.translate(table)
        changes.quotes_converted = sum(a != b for a, b in zip(text, converted))
        text = converted
    return text, changes


def unify_indents(text: str) -> tuple[str, int]:
    """Paragraphs indented with spaces, or run together on one line with space runs between
    them, become lines indented "　　"; (text, paragraphs changed)."""
    text, inline = _INLINE_INDENT.subn("\n\u3000\u3000", text)
    text, leading = _LEADING_SPACES.subn("\u3000\u3000", text)
    return text, inline + leading


def wrap_width(lines: list[str]) -> int:
    """The width a file was hard-wrapped at, from its line lengths; 0 when it was not.

    In prose the commonest line length holds about 1 % of the lines and lengths fade
    gradually; in a wrapped file a fifth or more sit at the width or a few characters
    short of it, and almost none are a few characters longer (a cliff).
    """
    lengths = Counter(len(line.strip(_INDENT)) for line in lines if line.strip(_INDENT))
    total = sum(lengths.values())
    if total < 20:
        return 0
    best, best_share = 0, 0.0
    for width in lengths:
        if width < WRAP_MIN_WIDTH:
            continue
        at = sum(lengths.get(w, 0) for w in range(width - WRAP_SLACK, width + 1))
        over = sum(lengths.get(w, 0) for w in range(width + 1, width + WRAP_SLACK + 2))
        share = at / total
        if at < WRAP_CLIFF * over:
            continue
        if share > best_share or (share == best_share and width > best):
            best, best_share = width, share
    return best if best_share >= WRAP_MIN_SHARE else 0


def rejoin_wrapped(text: str) -> tuple[str, int, int]:
    """Join the lines of hard-wrapped paragraphs; (text, lines joined, width or 0).

    A line is joined to the next when it is full (within WRAP_SLACK of the width), it
    stands in a wrapped region (most of its neighbours are full too: a file can be
    wrapped in part), and the next line is text. A full line that ends a sentence
    keeps its break unless the next line starts with punctuation: a paragraph that
    happens to end at the width stays a paragraph, at worst a long one is split at
    a sentence end.
    """
    lines = text.split("\n")
    width = wrap_width(lines)
    if not width:
        return text, 0, 0
    body = [line.strip(_INDENT) for line in lines]
    full = [width - WRAP_SLACK <= len(b) <= width + 1 for b in body]
    nonblank = [i for i, b in enumerate(body) if b]
    position = {i: k for k, i in enumerate(nonblank)}
    out, joined = [], 0
    for i, line in enumerate(lines):
        if out and _continues(i - 1, body, full, nonblank, position):
            out[-1] += body[i]
            joined += 1
        else:
            out.append(line)
    return "\n".join(out), joined, width if joined else 0


def _continues(prev: int, body, full, nonblank, position) -> bool:
    """Does line prev+1 continue line prev's paragraph?"""
    if prev < 0 or not full[prev] or not body[prev + 1]:
        return False
    k = position[prev]
    around = nonblank[max(0, k - WRAP_NEIGHBOURS):k + WRAP_NEIGHBOURS + 1]
    if sum(full[j] for j in around) * 2 < len(around):
        return False  # unwrapped prose where one paragraph happens to be this long
    return not body[prev].endswith(_SENTENCE_END) or body[prev + 1].startswith(_PUNCT_START)


@lru_cache(maxsize=1)
def _converter():
    import opencc  # noqa: PLC0415  (loads its dictionaries once)

    return opencc.OpenCC("t2s")


def simplify(text: str) -> tuple[str, int]:
    """Traditional and variant forms → simplified; (text, characters changed)."""
    converted = _converter().convert(text)
    if len(converted) != len(text):  # OpenCC's t2s maps character for character; be safe if not
        changed = abs(len(converted) - len(text)) + sum(a != b for a, b in zip(text, converted))
    else:
        changed = sum(a != b for a, b in zip(text, converted))
    kept = {m.start() + m.group().index("著") for m in _ZHU_KEEP.finditer(converted)}
    chars = list(converted)
    for i, ch in enumerate(chars):
        if ch == "著" and i not in kept:
            chars[i] = "着"
            changed += 1
    return "".join(chars), changed
