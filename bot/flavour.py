"""金庸味 (/score): how Jin Yong-like the model finds a text, 0-100 against the novels' own lines.

    /score 乔峰突然拔出刀来   -> 金庸味 66/100 …
    /score                   -> the same for the newest line this person wrote in the story
    /score on | off          -> each person's line told its 金庸味 under the part that follows it (per chat)

The ruler is the model card's (model.flavour, measured by `python -m train.flavour`); the text
is read as a person's line is (bot.reading) and scored alone, in one scoring call on the
model's thread (the scheduler's, between rounds).
"""

from __future__ import annotations

import logging
from functools import partial

from bot import reading, texts
from model.flavour import Flavour, rate_texts

log = logging.getLogger(__name__)

PEOPLES_KINDS = ("prompt", "text", "say", "do")  # parts a person wrote (a choice is the bot's beat)
SWITCHES = ("on", "off")  # /score on | off: the chat's setting, not a text to score (no hanzi: none would be)


def ruler_of(model) -> Flavour | None:
    card = getattr(model, "card", None)
    return Flavour.from_card(getattr(card, "flavour", None))


async def rated(engine, read: list[str]):
    """(nats/char [B], characters [B]) of texts as the model reads them, each alone: one scoring call on
    the model's thread, between rounds."""
    return await engine.scheduler.call(partial(rate_texts, engine.model, read))


async def newest_line(engine, chat_id: int, user_id: int) -> str | None:
    """The newest live part of the story this person wrote (as the story reads it), or None."""
    mine = [p for p in await engine.store.parts(chat_id)
            if not p.undone and p.author_id == user_id and p.kind in PEOPLES_KINDS]
    return mine[-1].text.strip() if mine else None


async def score(engine, chat_id: int, user_id: int, raw: str | None) -> str:
    """/score [文字]: the text's 金庸味, or that of the person's newest line in the story."""
    ruler = ruler_of(engine.model)
    if ruler is None:
        return texts.SCORE_NO_RULER
    text, notice = engine.cut_prompt(raw)
    from_story = not text
    if from_story:
        text = await newest_line(engine, chat_id, user_id)
        if text is None:
            return texts.SCORE_USAGE
    read = reading.as_read(text)
    if not any(c in engine.known for c in read):
        return texts.SCORE_UNREADABLE
    nats, chars = await rated(engine, [read])
    told = texts.score_told(ruler.score(float(nats[0]), int(chars[0])), float(nats[0]), read if from_story else None)
    return told + (f"\n{notice}" if notice else "")


async def setting(engine, chat_id: int, word: str) -> str:
    """/score on | off: whether each person's line is told its 金庸味 under the part that follows it."""
    if ruler_of(engine.model) is None:
        return texts.SCORE_NO_RULER  # the setting stays as it was: there is nothing to tell
    await engine.store.set_flavour(chat_id, word == "on")
    return texts.flavour_set(word == "on")


async def lines_told(engine, chat_id: int, parts) -> str:
    """The 金庸味 of the people's lines among `parts` (store.NewPart, just joined to the story), one line
    each, to show under the bot's part that follows them; "" when the chat does not want it (/score off),
    there are none, or the model has no ruler. One scoring call on the model's thread for them all."""
    lines = [p.text.strip() for p in parts if p.kind in PEOPLES_KINDS and p.text.strip()]
    if not lines or not (await engine.store.settings(chat_id)).flavour:
        return ""
    ruler = ruler_of(engine.model)
    if ruler is None:
        return ""
    try:
        nats, chars = await rated(engine, [reading.as_read(line) for line in lines])
    except Exception:  # noqa: BLE001  (a failed or abandoned scoring call costs the score, not the part)
        log.warning("could not score %d line(s) in chat %s", len(lines), chat_id)
        return ""
    return texts.flavour_block([(line, ruler.score(float(n), int(c))) for line, n, c in zip(lines, nats, chars)
                                if c])
