"""A person's line as the model reads it: cleaned as the corpus was.

    as_read('乔峰說:"走吧..."')  ->  '乔峰说：“走吧……”'

The model learned from novels brought to one form (train.normalise): simplified characters,
curly quotes, full-width punctuation, no missing-glyph marks. People type traditional forms,
ASCII quotes and commas, 「」 and "..."; read as typed, those would be characters the model
rarely saw (or [UNK]). The story keeps this cleaned line (what the model read, so a state
rebuilt from the text is the same); the parts table keeps the line as it was typed.
"""

from __future__ import annotations

import re
from functools import lru_cache

TO_CURLY = str.maketrans("「」『』", "“”‘’")
OCR_SLIPS = str.maketrans({"囗": "口"})  # as train.normalise fixes the novels (囗 is never prose)
FULL_WIDTH = str.maketrans({",": "，", "!": "！", "?": "？", ":": "：", ";": "；", "(": "（", ")": "）"})
MISSING_GLYPHS = re.compile("[□〓\ufffd▯]")
HANZI = re.compile(r"[\u3400-\u9fff]")
ELLIPSIS = re.compile(r"\.{3,}|。{3,}|…+")
FULL_STOP = re.compile(r"(?<=[\u3400-\u9fff”’）])\.(?!\d)")  # a full stop after Chinese, not a decimal point


@lru_cache(maxsize=1)
def _simplify():
    import opencc  # noqa: PLC0415  (loads its dictionaries once, on the first line)

    return opencc.OpenCC("t2s").convert


def as_read(line: str) -> str:
    """`line` in the corpus's form: simplified, “curly” quotes, full-width punctuation, …… for dots."""
    text = MISSING_GLYPHS.sub("", _simplify()(line)).translate(TO_CURLY).translate(OCR_SLIPS)
    if not HANZI.search(text):
        return text  # no Chinese: nothing of the novels' form to bring it to (the engine refuses it)
    text = ELLIPSIS.sub("……", text.translate(FULL_WIDTH))
    text = FULL_STOP.sub("。", text)
    quotes = iter("“”" * text.count('"'))  # ASCII double quotes open and close in turn
    text = re.sub('"', lambda _: next(quotes), text)
    quotes = iter("‘’" * text.count("'"))
    return re.sub("'", lambda _: next(quotes), text)
