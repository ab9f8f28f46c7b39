"""One part in the making: the chat's session, where a part starts (Opening), the part as it grows
(Part), and `PartContext`, which holds the chat's lock for one generation and saves what it wrote.

`bot.engine` makes them (StoryEngine.write, join, continue_story, rewrite); a front end runs
one as `async with engine.write(...) as part: async for piece in part.pieces(): ...`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bot import reading, roles, sentences, texts
from bot.limits import USER
from bot.scheduler import Busy
from bot.store import NewPart

if TYPE_CHECKING:
    from bot.engine import StoryEngine

class UserError(Exception):
    """A request the engine declines; the message is what to tell the user (nothing, if quiet)."""

    def __init__(self, message: str, quiet: bool = False):
        super().__init__(message)
        self.quiet = quiet


BUSY_NOTICE_SECONDS = 5.0  # a chat hammering a busy bot hears "正在写…" once per this many seconds
# States kept per chat at the ends of its newest parts, so /undo goes on from exactly where the story then ends
# (~12 KiB each for the shipped model, the newest shared with the chat's state); an undo past them reads the
# story's tail, as after a restart.
CHECKPOINTS = 3
# A part expected to wait this long for its first text (other chats' stories before it) is told its place.
QUEUE_NOTICE_SECONDS = 5.0
# Times a part is written afresh from its start when it would stop for a played character's turn before a
# single hanzi of its own (right after 黄蓉道：“…” the model often goes on with 黄蓉又道：): a part of nothing
# tells nobody anything. After these, it stops there all the same (and no empty part of the bot's is stored
# after a person's line).
TURN_RETRIES = 3


@dataclass
class ChatSession:
    version: int = 0  # the story version the state belongs to
    states: np.ndarray | None = None  # [S, 1, H] after the story's last character
    before_last: tuple[str, np.ndarray] | None = None  # how to regenerate the newest part: (read, states)
    busy_noticed: float = -1e9  # when this chat was last told "正在写…" (time.monotonic)
    novel_explained: int = 0  # the story version told that the model lacks its novel (told once)
    checkpoints: OrderedDict = field(default_factory=OrderedDict)  # story length -> state [S, 1, H] there
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class Opening:
    """Where a part starts: what `prepare` hands to the scheduler and, once complete, to the store.

    `prepare` only reads: nothing changes until the scheduler has accepted the part (a refused
    /write keeps the old story), and the state before the part becomes what 重写 starts from
    only once the part is complete (a failed /continue leaves 重写 where it was)."""

    version: int  # story version (buttons carry it); for a new story, set when it is stored
    before: str  # story text before the part
    read: str  # text the model reads before sampling (a prompt, or a story tail to rebuild a state)
    states: np.ndarray  # [S, 1, H] state before `read`
    start: int  # where the part begins in the story text
    header: str = ""  # shown before the generated text (the prompt for /write)
    notice: str = ""  # an extra line for the user (which novel auto picked)
    new_story: tuple[str, str | None] | None = None  # (prompt, novel): replaces the stored story once its part is
    replaces: int = 0  # for a new story: the version of the story it replaces (0: none)
    parts: list = field(default_factory=list)  # NewPart: what people wrote, stored before the bot's part
    rewrite: bool = False  # the bot's part replaces the newest one (重写)
    waited: int | None = None  # the last of the chat's waiting lines it joins (bot.turns)


@dataclass
class Part:
    """One generation in progress: iterate `pieces()` for the text as it grows."""

    chat_id: int
    version: int  # story version (buttons carry it)
    start: int  # where this part begins in the story text (buttons carry it)
    header: str  # shown before the generated text (the prompt for /write, else "")
    notice: str  # an extra line for the user ("" if none)
    _run: object = None
    text: str = ""  # generated so far
    roles: list[str] = field(default_factory=list)  # characters people play here: the bot never speaks for them
    turn: str | None = None  # the role whose line the part stopped before (their turn), if it did
    target: int = 0  # characters asked for (/len): the part ends at the first sentence end past them
    ended: bool = False  # it reached its end (a sentence end, or the most it may run to)
    choices: list[str] = field(default_factory=list)  # next beats offered after it (/choices), ① first
    again: object = None  # () -> a fresh stream of the part from its start, or None (PartContext.again)
    retries: int = 0  # times it was written afresh (TURN_RETRIES at most)

    @property
    def end(self) -> int:
        """Where the story ends once this part is in it."""
        return self.start + len(self.text)

    async def pieces(self):
        while True:
            async for piece in self._run:
                self.text += piece
                at = roles.speaks_at(self.text, self.roles)
                if at is not None:  # the bot was about to speak for someone's character: the part ends before it
                    if not reading.HANZI.search(self.text[:at]) and await self._afresh():
                        break  # …before a word of its own: written again instead
                    self.turn = roles.speaker_at(self.text, at, self.roles)
                    self.text = self.text[:at]
                    return
                end = sentences.part_end(self.text, self.target, self.target + sentences.SLACK)
                if end is not None:  # at a sentence end: the rest of what was written is dropped
                    self.text, self.ended = self.text[:end], True
                    yield piece
                    return
                yield piece
            else:
                return

    async def _afresh(self) -> bool:
        """Start the part again from its start (another draw), if retries are left and the bot is not busy."""
        if self.again is None or self.retries >= TURN_RETRIES:
            return False
        fresh = self.again()
        if fresh is None:
            return False
        await self._run.aclose()
        self._run, self.text = fresh, ""
        self.retries += 1
        return True


def busy(session: ChatSession) -> UserError:
    """"正在写…" for a busy chat, quiet if this chat heard it a moment ago (one notice, not fifty)."""
    now = time.monotonic()
    quiet = now - session.busy_noticed < BUSY_NOTICE_SECONDS
    if not quiet:
        session.busy_noticed = now
    return UserError(texts.BUSY_CHAT, quiet=quiet)


class PartContext:
    """`async with engine.write(...) as part:` holds the chat's lock for one generation,
    and saves the story when the part is complete."""

    def __init__(self, engine: StoryEngine, chat_id: int, session: ChatSession, prepare, notice: str,
                 user_id: int):
        self.engine, self.chat_id, self.session, self.prepare, self.notice = engine, chat_id, session, prepare, notice
        self.user_id = user_id

    async def __aenter__(self) -> Part:
        if self.session.lock.locked():  # the one busy check: one generation per chat
            raise busy(self.session)
        await self.session.lock.acquire()
        limits, reserved = self.engine.limits, 0
        try:
            settings = await self.engine.store.settings(self.chat_id)
            # Checked before anything changes: a refused /write leaves the old story as it was.
            over = limits.characters(self.user_id, settings.length)
            if over:
                raise UserError(texts.TOO_MUCH if over == USER else texts.BUSY_GLOBAL)
            reserved = settings.length
            opening = await self.prepare(self.session, settings)
            played = await self.engine.store.roles(self.chat_id)
            self.opening, self.settings = opening, settings
            try:
                self.job = self._submit()
            except Busy:
                raise UserError(texts.BUSY_GLOBAL) from None
        except BaseException:
            if reserved:
                limits.refund(self.user_id, reserved)
            self.session.lock.release()
            self.engine.forget_if_empty(self.chat_id, self.session)  # a refused request leaves nothing behind
            raise
        ahead, seconds = self.engine.scheduler.queue_wait(self.job)
        # Told only if whole rounds come first, and enough of them: a short wait is not worth a message.
        queued = texts.QUEUED.format(ahead=ahead) if seconds and seconds >= QUEUE_NOTICE_SECONDS else ""
        notice = "\n".join(n for n in (self.notice, opening.notice, queued) if n)
        self.part = Part(self.chat_id, opening.version, opening.start, opening.header, notice,
                         _run=self.engine.scheduler.stream(self.job), roles=played, target=settings.length,
                         again=self.again)
        return self.part

    def _submit(self):
        """The scheduler's job for the part: read the opening, then write up to /len + SLACK characters."""
        return self.engine.scheduler.submit(self.opening.read, self.opening.states,
                                            self.settings.length + sentences.SLACK, self.settings.temperature)

    def again(self):
        """The part written afresh from its start (Part._afresh): the new job's stream, or None when busy."""
        try:
            job = self._submit()
        except Busy:
            return None
        self.job.cancel()
        self.job = job
        return self.engine.scheduler.stream(job)

    async def __aexit__(self, exc_type, exc, tb) -> None:
        opening, part, session = self.opening, self.part, self.session
        try:
            # Whole, or stopped before someone's character spoke (then nothing more is written).
            complete = exc_type is None and (self.job.remaining <= 0 or part.turn is not None or part.ended)
            self.job.cancel()  # (a job that wrote all it was asked for stays as it was)
            if not complete:
                if session.version == opening.version and not opening.new_story:
                    session.states = None  # the state no longer matches the stored story
                return
            story_text = opening.before + part.text
            # A part of nothing after people's lines (it stopped for a played character's turn at once, every
            # try) is not stored: their lines are, and it is their turn.
            nothing = not part.text and opening.parts and not opening.rewrite
            added = opening.parts + ([] if nothing else [NewPart(opening.start, part.text, "bot")])
            if opening.new_story:  # only a new story's whole first part replaces the old story
                version = await self.engine.store.start_story(self.chat_id, *opening.new_story, part=part.text,
                                                              replaces=opening.replaces, parts=added,
                                                              waited=opening.waited)
                saved = version is not None
            else:
                saved = await self.engine.store.save_story(self.chat_id, opening.version, story_text, opening.start,
                                                           parts=added, rewrite=opening.rewrite,
                                                           waited=opening.waited)
            if not saved:  # the stored story is no longer this one (a /reset, or another process): keep theirs
                session.states = None
                raise UserError(texts.STORY_CHANGED)
            if opening.new_story:
                opening.version = part.version = version  # what its buttons carry
            # A part cut short of what its job wrote (a sentence end, someone's turn) has no state at its end:
            # the nearest round end before it is kept, and the next part reads the few characters past it.
            exact = part.turn is None and len(part.text) == self.job.produced
            end = self.job.states if exact else None
            session.version, session.states = opening.version, end
            session.before_last = (opening.read, opening.states)  # what 重写 starts from
            kept, changed = session.checkpoints, added[0].start  # where the new text begins (0: a new story)
            for n in [n for n in kept if n > changed]:
                del kept[n]  # states past it are of text that is gone (or of the story a new one replaced)
            marks = [(n, st) for n, st in self.job.marks if n <= len(part.text)]
            if end is not None or marks:  # the newest CHECKPOINTS ends of parts, for /undo
                at, state = (len(story_text), end) if end is not None else (opening.start + marks[-1][0], marks[-1][1])
                kept[at] = state
                kept.move_to_end(at)
                while len(kept) > CHECKPOINTS:
                    kept.popitem(last=False)
        finally:
            session.lock.release()
