"""The repetition policy: no third repeat of a unit of 1–4 hanzi, and a penalty on repeating phrases
(NumPy; the graphs use its tables and its formula).

    classes = char_classes(chars)                 # int8 [V]: HANZI_CLASS, MARK_CLASS or 0
    table = loop_table(width)                     # index arrays, built once
    ids, hit = loop_bans(recent, classes, table)  # [B, P] ids that would complete a loop, where hit [B, P]
    ids, amount = phrase_penalties(recent, matches, logits)  # [B, W-1] each: logits to take off
    recent, matches = pushed(recent, ids), matched(matches, pushed(recent, ids), ids)   # after a character

A loop is a unit X of 1–4 hanzi written three times in a row with at most two marks
(punctuation: neither letters, digits, hanzi nor spaces) between repeats: `阿碧、阿碧、阿碧`,
`你……你……你`, `哈哈哈` (`train.repetition` counts them). Jin Yong writes one about every
8,000 characters; the model, at temperature 0.8, one every 1,000. Given the last `width`
characters a row has read or written, `recent` [B, W] (ids, most recent last; 0 = nothing
yet), the next character would complete a loop when the text ends with X m X m' X[:-1]
(m, m' of 0–2 marks): that character, X's last, is banned. Every such shape is one row
of `loop_table` (which positions of `recent` must be equal, which must be hanzi or marks,
which holds the banned id), so the check is a few gathers and compares, the same in
NumPy, TensorFlow (model.onestep) and ONNX (model.int8).

The phrase penalty takes the subtler repeats the ban leaves: at temperature 0.5 a story says
`乔峰道：“…”乔峰道：“…` and the same half-sentences again, so only 69 % of its 4-grams are
distinct in 600 characters (the novels: 97 %). After every earlier place in the history where
the text's last m ≥ PHRASE_MIN characters stood too (m up to PHRASE_MAX), the character that
followed there loses PHRASE_PENALTY × PHRASE_GROWTH^(m − PHRASE_MIN) of its logit (summed over
such places; before the temperature, so a cooler story is held to it harder) — unless the
model gives it more than PHRASE_SURE at temperature 1: the rest of a name (韦小 → 宝) or of a
set word stays as it is. The interactive-fiction tools' "DRY" sampler works this way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.sampling import log_softmax

HANZI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # a regex class body: CJK unified (and extension A, compatibility)
HANZI_CLASS, MARK_CLASS = 1, 2
UNIT_MAX = 4  # hanzi in the longest unit banned
MARKS_MAX = 2  # marks between repeats
WIDTH = 16  # characters of history the ban needs: the longest shape, X m X m' X[:-1], is 3·4 - 1 + 2·2 = 15
HISTORY = 512  # characters of history kept in the states' last row (at most half its units): the penalty's reach
PHRASE_MIN = 3  # characters that must match before the character after them is penalised
PHRASE_MAX = 8  # longest match counted
PHRASE_PENALTY = 5.0  # logits taken off after a match of PHRASE_MIN characters ...
PHRASE_GROWTH = 1.75  # ... times this for every further character matched
PHRASE_SURE = 0.8  # no penalty where the model gives the character more than this (temperature 1)


def char_class(c: str) -> int:
    if len(c) == 1 and any(lo <= c <= hi for lo, hi in zip(HANZI[0::3], HANZI[2::3])):
        return HANZI_CLASS
    if len(c) == 1 and not (c.isalnum() or c == "_" or c.isspace()) and not 0xE000 <= ord(c) <= 0xF8FF:
        return MARK_CLASS  # what the regex class [^\w\s] holds (private-use: the novels' tokens)
    return 0


def char_classes(chars: list[str]) -> np.ndarray:
    """int8 [V]: each id's class ([UNK], id 0, is 0: it matches nothing)."""
    return np.array([0] + [char_class(c) for c in chars[1:]], np.int8)


@dataclass(frozen=True)
class LoopTable:
    """One row per shape (unit length, marks before the second repeat, marks before the third):
    positions in recent [B, W] (W - 1 = the newest character)."""
    same_a: np.ndarray  # int64 [P, M]: recent[:, same_a] must equal recent[:, same_b] (padded with (0, 0))
    same_b: np.ndarray  # int64 [P, M]
    kind_at: np.ndarray  # int64 [P, N]: recent's classes there must be `kind` (padded with a hanzi position)
    kind: np.ndarray  # int8 [P, N]
    banned_at: np.ndarray  # int64 [P]: where the id that would complete the loop stands (the second X's last)


def loop_table(width: int = WIDTH) -> LoopTable:
    """Every shape that fits in `width` characters of history (a narrow model gets the short ones)."""
    same_a, same_b, kind_at, kind, banned = [], [], [], [], []
    for unit in range(1, UNIT_MAX + 1):
        for m1 in range(MARKS_MAX + 1):
            for m2 in range(MARKS_MAX + 1):
                span = 3 * unit - 1 + m1 + m2  # X m1 X m2 X[:-1]
                if span > width:
                    continue
                pos = lambda back: width - back  # noqa: E731  (back = 1: the newest character)
                third = [pos(unit - 1 - j) for j in range(unit - 1)]  # X[:-1], oldest first
                second = [pos(unit - 1 + m2 + unit - j) for j in range(unit)]
                first = [pos(unit - 1 + m2 + unit + m1 + unit - j) for j in range(unit)]
                marks = ([pos(unit - 1 + m2 - j) for j in range(m2)]
                         + [pos(unit - 1 + m2 + unit + m1 - j) for j in range(m1)])
                same_a.append(first + third)
                same_b.append(second + second[:unit - 1])
                kind_at.append(first + second + third + marks)
                kind.append([HANZI_CLASS] * (3 * unit - 1) + [MARK_CLASS] * len(marks))
                banned.append(second[-1])
    pad = lambda rows, fill: np.array([r + [fill(r)] * (max(map(len, rows)) - len(r)) for r in rows])  # noqa: E731
    return LoopTable(same_a=pad(same_a, lambda r: 0).astype(np.int64), same_b=pad(same_b, lambda r: 0).astype(np.int64),
                     kind_at=pad(kind_at, lambda r: r[0]).astype(np.int64),
                     kind=pad(kind, lambda r: HANZI_CLASS).astype(np.int8), banned_at=np.array(banned, np.int64))


def loop_bans(recent: np.ndarray, classes: np.ndarray, table: LoopTable) -> tuple[np.ndarray, np.ndarray]:
    """(ids [B, P], hit bool [B, P]): for each shape, the id that would complete a loop, where it would."""
    recent = np.asarray(recent, np.int64)
    kinds = classes[recent]  # [B, W]
    hit = ((recent[:, table.same_a] == recent[:, table.same_b]).all(axis=2)
           & (kinds[:, table.kind_at] == table.kind).all(axis=2))
    return recent[:, table.banned_at], hit


def ban_mask(recent: np.ndarray, classes: np.ndarray, table: LoopTable, vocab: int) -> np.ndarray:
    """float32 [B, vocab] added to logits: -inf at the ids that would complete a loop, else 0."""
    ids, hit = loop_bans(recent, classes, table)
    mask = np.zeros((len(ids), vocab), np.float32)
    rows = np.repeat(np.arange(len(ids)), ids.shape[1])
    mask[rows[hit.ravel()], ids.ravel()[hit.ravel()]] = -np.inf
    return mask


def pushed(recent: np.ndarray, ids: np.ndarray, feed: np.ndarray | None = None) -> np.ndarray:
    """recent [B, W] after the rows where feed [B] (default all) read or wrote ids [B]."""
    moved = np.concatenate([recent[:, 1:], np.asarray(ids, recent.dtype)[:, None]], axis=1)
    return moved if feed is None else np.where(np.asarray(feed)[:, None], moved, recent)


def history_width(units: int) -> int:
    """W: characters of history a state row of `units` keeps (ids in columns :W, match lengths in W:2W)."""
    return min(HISTORY, units // 2)


def matched(matches: np.ndarray, recent: np.ndarray, ids: np.ndarray, feed: np.ndarray | None = None) -> np.ndarray:
    """The match lengths [B, W] after the rows where feed [B] (default all) read or wrote ids [B]; recent [B, W]
    already holds them (`pushed`). matches[:, j]: how many characters the text ending at place j shares with
    the text's end (up to PHRASE_MAX; the newest place: 0), so the character after place j would go on
    repeating that many. One compare per place and character, not PHRASE_MAX."""
    ids = np.asarray(ids, np.int64)[:, None]
    grown = np.where(recent[:, :-1] == ids, np.minimum(matches[:, :-1] + 1, PHRASE_MAX), 0)
    new = np.concatenate([grown, np.zeros_like(grown[:, :1])], axis=1)
    return new if feed is None else np.where(np.asarray(feed)[:, None], new, matches)


def phrase_amounts() -> np.ndarray:
    """float32 [PHRASE_MAX + 1]: what a logit loses after a match of m characters (0 below PHRASE_MIN)."""
    return np.array([PHRASE_PENALTY * PHRASE_GROWTH ** (m - PHRASE_MIN) if m >= PHRASE_MIN else 0.0
                     for m in range(PHRASE_MAX + 1)], np.float32)


def phrase_penalties(recent: np.ndarray, matches: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids [B, W-1], amounts [B, W-1] float32): the character after each earlier place of the history
    recent [B, W] (match lengths `matches` [B, W]) and what its logit loses there; logits [B, V] at
    temperature 1 with the never mask (the model's certainty: no penalty above PHRASE_SURE)."""
    ids = np.asarray(recent, np.int64)[:, 1:]
    log_p = np.take_along_axis(log_softmax(logits), ids, axis=1)
    amounts = phrase_amounts()[np.asarray(matches, np.int64)[:, :-1]]
    return ids, np.where(log_p > np.log(PHRASE_SURE), 0.0, amounts).astype(np.float32)


def penalty_mask(recent: np.ndarray, matches: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """float32 [B, V] to take off logits [B, V] (temperature 1, never mask in): `phrase_penalties`, summed per id."""
    ids, amounts = phrase_penalties(recent, matches, logits)
    out = np.zeros(logits.shape, np.float32)
    np.add.at(out, (np.repeat(np.arange(len(ids)), ids.shape[1]), ids.ravel()), amounts.ravel())
    return out
