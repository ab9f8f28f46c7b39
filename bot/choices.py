"""Choosing what happens next (/choices on): three short next beats after each part, and the choice.

After a part, `offer` writes beats from the story's end in one batched model call
(CANDIDATES rows of the scheduler's rounds), cuts each at its first sentence end (at most
BEAT_MAX characters) and stores the first OPTIONS to end as the chat's open choice. `choose` joins the beat
chosen to the story (read into the state: the same characters the model wrote) and the bot
goes on from it with one part. In a private chat a press decides at once; in a group the
presses are votes (`vote`): one per member, a second moves it; the choice closes when an
option has more than half of the story's members (everyone who wrote a part of it, started
it or voted), or `choice_seconds` after it was offered with the leading option (ties: the
first; with no vote cast it stays open, and the first vote after that decides).

A choice belongs to the story's version and length it was offered at: any part saved, an
/undo or a /reset closes it (bot.store, in the same transaction), so a press on it is told so.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bot import reading, roles, sentences, texts
from bot.part import Opening, PartContext, UserError
from bot.scheduler import Busy, Stopped
from bot.store import Choice, NewPart

OPTIONS = 3  # beats offered after each part
# Rows written for them: the first OPTIONS to reach a sentence end are offered, the rest dropped. A
# round of 4 rows costs about what 3 do (int8, 2 cores: bench.cowriting), and the time no longer waits
# for the longest of three beats (the 3rd of 4 to end, not the last of 3).
CANDIDATES = 4
BEAT_MAX = 80  # characters written for each beat at most; it ends at its first sentence end within them
BEAT_ROUND = 16  # characters a beat is written in per round: it stops at the round its sentence ends in
CHOICE_SECONDS = 60  # a group's vote closes this long after the offer, with the leading option


def beat(text: str) -> str:
    """`text` up to its first sentence end (closing quotes and further end marks with it); without one,
    up to its last pause; without either, all of it."""
    return sentences.first_sentence(text)


def has_beat(text: str) -> bool:
    """`text` holds a whole first sentence (an end mark with something after it that does not belong to it)."""
    cut = beat(text)
    return cut != text and any(c in sentences.ENDS for c in cut)


def display(option: str) -> str:
    """A beat as it is shown: without the closing quotes it may begin with. A part can end inside an open
    quote (…道：“…逃不开。), and every beat then starts by closing it (”洪七公道：…); the story keeps the
    quote, the eye does not need it."""
    return option.lstrip().lstrip(sentences.CLOSERS).lstrip()


def shown(option: str) -> str:
    """A beat as the options list shows it: `display`, on one line."""
    return " ".join(display(option).split())


@dataclass
class Tally:
    """Where a group's vote stands after a press."""

    counts: list[int]  # votes per option
    members: int  # the story's members: a majority is more than half of them
    decided: int | None  # the option chosen, if the vote just closed

    @property
    def needed(self) -> int:
        return self.members // 2 + 1


async def offer(engine, chat_id: int, part, user_id: int, vote: bool, thread_id: int | None = None) -> list[str]:
    """After `part` (saved): the chat's OPTIONS next beats, stored as its open choice ([] when the chat does
    not want choices, the part stopped for someone's turn, the story moved on, or the bot is too busy)."""
    settings = await engine.store.settings(chat_id)
    session = engine.session(chat_id)
    if not settings.choices or part.turn or session.lock.locked():
        return []
    async with session.lock:
        story = await engine.store.story(chat_id)
        if story is None or story.version != part.version or len(story.text) != part.end:
            return []
        if engine.limits.characters(user_id, OPTIONS * BEAT_MAX):
            return []  # over a limit: the part stands, without choices
        read, states, _ = engine.resume_point(session, story)
        try:
            options = await write_beats(engine.scheduler, read, states, settings.temperature,
                                        await engine.store.roles(chat_id))
        except (Busy, Stopped):
            return []
        if options:
            await engine.store.open_choice(chat_id, Choice(story.version, len(story.text), options, vote, time.time(),
                                                                 thread_id))
        return options


async def write_beats(scheduler, read: str, states, temperature: float, played: list[str] = (),
                      count: int = OPTIONS, rows: int = CANDIDATES) -> list[str]:
    """Up to `count` distinct beats from `states` (after reading `read`), in the order they end: `rows`
    rows share each round's model call (different noise per row); each is cut at its first sentence end,
    and before a played character would speak (a beat never speaks for them); a beat without hanzi is
    no beat. The rest are cancelled once `count` have ended. Raises Busy, or Stopped at shutdown."""
    jobs = [scheduler.submit(read, states, BEAT_MAX, temperature, chunk=BEAT_ROUND, until=has_beat)
            for _ in range(rows)]
    tasks = [asyncio.ensure_future(_collect(scheduler, job)) for job in jobs]
    options, pending = [], set(tasks)
    try:
        while pending and len(options) < count:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=tasks.index):  # ended in the same round: in row order
                text = beat(task.result())
                at = roles.speaks_at(text, played)
                text = text[:at] if at is not None else text
                if reading.HANZI.search(text) and text not in options and len(options) < count:
                    options.append(text)
    finally:
        for job in jobs:
            job.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return options


async def _collect(scheduler, job) -> str:
    return "".join([piece async for piece in scheduler.stream(job)])


async def _open_choice(engine, chat_id: int, version: int, at: int) -> tuple[object, Choice]:
    """(story, choice) if the chat's choice offered at (version, at) is still open, else UserError."""
    story = await engine.store.story(chat_id)
    choice = await engine.store.choice(chat_id)
    if (story is None or choice is None or (choice.version, choice.at) != (version, at)
            or (story.version, len(story.text)) != (version, at)):
        raise UserError(texts.CHOICE_CLOSED)
    return story, choice


def choose(engine, chat_id: int, version: int, at: int, option: int, user_id: int | None = None,
           user_name: str | None = None) -> PartContext:
    """Join beat `option` of the choice offered at (version, at) to the story; the bot goes on from it."""
    async def prepare(s, settings):
        story, choice = await _open_choice(engine, chat_id, version, at)
        if not 0 <= option < len(choice.options):
            raise UserError(texts.CHOICE_CLOSED)
        chosen = choice.options[option]
        if len(story.text) + len(chosen) + settings.length > engine.story_limit:
            raise UserError(texts.STORY_FULL.format(limit=engine.story_limit))
        read, states, notice = engine.resume_point(s, story)
        return Opening(story.version, story.text + chosen, read + chosen, states, len(story.text) + len(chosen),
                       header=display(chosen), notice=notice,
                       parts=[NewPart(len(story.text), chosen, "choice", user_id, user_name)])

    return engine.part(chat_id, prepare, "", user_id)


async def vote(engine, chat_id: int, version: int, at: int, option: int, user_id: int,
               seconds: float = CHOICE_SECONDS) -> Tally:
    """A group member's press: their vote (moved, if they voted before) and where the vote now stands."""
    _, choice = await _open_choice(engine, chat_id, version, at)
    if not 0 <= option < len(choice.options):
        raise UserError(texts.CHOICE_CLOSED)
    await engine.store.vote(chat_id, user_id, option)
    return await tally(engine, chat_id, seconds)


async def tally(engine, chat_id: int, seconds: float = CHOICE_SECONDS) -> Tally:
    """The chat's vote: counts, members, and the option it is decided for (a majority, or the time is up
    with a vote cast: the leading option, ties to the first)."""
    choice = await engine.store.choice(chat_id)
    if choice is None:
        return Tally([], 0, None)
    counts = [0] * len(choice.options)
    for option in choice.votes.values():
        if 0 <= option < len(counts):
            counts[option] += 1
    parts = await engine.store.parts(chat_id)
    members = {p.author_id for p in parts if not p.undone and p.author_id is not None} | set(choice.votes)
    leader = max(range(len(counts)), key=lambda i: (counts[i], -i))
    result = Tally(counts, len(members), None)
    if counts[leader] >= result.needed or (counts[leader] and time.time() - choice.opened >= seconds):
        result.decided = leader
    return result
