"""Where text ends as a reader expects: after a sentence, not mid-word.

    first_sentence("他走了。然后又回来")          -> '他走了。'            (a beat, bot.choices)
    part_end("……黄蓉道：“我不是白痴。”她", 10, 90) -> index just after ”   (a part of /len 10)

A part asked for N characters (/len N) ends at the first sentence end at or after N
characters, its closing quotes with it; with none by N + SLACK characters, at the last
pause (comma, colon, …) before that, else right there.
"""

from __future__ import annotations

ENDS = "。！？…"  # marks that end a sentence
CLOSERS = "”’」』）"  # belong to the sentence they close
PAUSES = "，；：、"  # where text without a sentence end is cut
SLACK = 80  # characters a part may run past its /len to reach a sentence end


def _after_end(text: str, k: int) -> int:
    """Index just past the end mark at k, its closing quotes and further end marks (……, 。”) with it."""
    j = k + 1
    while j < len(text) and (text[j] in CLOSERS or text[j] in ENDS):
        j += 1
    return j


def first_sentence(text: str) -> str:
    """`text` up to its first sentence end; without one, up to its last pause; without either, all of it."""
    for k, c in enumerate(text):
        if c in ENDS:
            return text[:_after_end(text, k)]
    cut = max(text.rfind(p) for p in PAUSES)
    return text[:cut + 1] if cut > 0 else text


def part_end(text: str, target: int, most: int, done: bool = False) -> int | None:
    """Where a part of `target` characters ends in `text` (what the bot has written of it; `most` at most):
    just past the first sentence end at or after `target` characters; with none by `most`, just past the
    last pause in between (else at `most`). None while that cannot be known yet (`done`: no more is coming)."""
    done = done or len(text) >= most
    for k in range(max(target - 1, 0), min(len(text), most)):
        if text[k] in ENDS:
            j = _after_end(text, k)
            return j if j < len(text) or done else None  # a closing quote may still follow
    if not done:
        return None
    cut = max(text.rfind(p, target, most) for p in PAUSES)
    return cut + 1 if cut >= 0 else min(len(text), most)
