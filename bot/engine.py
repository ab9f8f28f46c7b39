"""The story engine: what /write, /continue, 重写, /temp, /len, /book, /reset and /story do.

Transport-free: the Telegram handlers and the console are thin adapters over it.
It keeps one GRU state per chat in memory (the state after the story's last
character) and everything that must survive a restart in the Store. A chat whose
state was lost (a restart) gets it back by reading the tail of its stored story.
One generation at a time per chat: a second request meanwhile is told to wait.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from bot import roles, texts
from bot.limits import USER, Limits
from bot.scheduler import Busy, Scheduler
from bot.store import NewPart, Store

log = logging.getLogger(__name__)


class UserError(Exception):
    """A request the engine declines; the message is what to tell the user (nothing, if quiet)."""

    def __init__(self, message: str, quiet: bool = False):
        super().__init__(message)
        self.quiet = quiet


BUSY_NOTICE_SECONDS = 5.0  # a chat hammering a busy bot hears "正在写…" once per this many seconds
# A story's cap in characters (about 300 KB as UTF-8): every part rewrites the whole stored text,
# and /story sends it as one file, so a story without end would grow every save and upload.
STORY_MAX_CHARS = 100_000
# Chats whose state stays in memory (~25 KiB each for the shipped model: the state, and the one before
# the newest part for 重写): 10,000 ≈ 250 MB. Past it the chat idle longest forgets its state, and its
# next part reads its story's tail again, as after a restart.
MAX_RESIDENT_CHATS = 10_000
# States kept per chat at the ends of its newest parts, so /undo goes on from exactly where the story then ends
# (~12 KiB each for the shipped model); an undo past them reads the story's tail, as after a restart.
CHECKPOINTS = 3
UNDO_STEPS = 20  # /undo takes back at least this many parts (every part is kept in the database)
# A part expected to wait this long for its first text (other chats' stories before it) is told its place.
QUEUE_NOTICE_SECONDS = 5.0


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

    async def pieces(self):
        async for piece in self._run:
            self.text += piece
            at = roles.speaks_at(self.text, self.roles)
            if at is not None:  # the bot was about to speak for someone's character: the part ends before it
                self.turn = next(r for r in self.roles if self.text.startswith(r, at))
                self.text = self.text[:at]
                return
            yield piece


class StoryEngine:
    def __init__(self, store: Store, scheduler: Scheduler, prompt_limit: int = 500, rebuild_chars: int = 1000,
                 limits: Limits | None = None, story_limit: int = STORY_MAX_CHARS,
                 max_resident_chats: int = MAX_RESIDENT_CHATS):
        self.store = store
        self.limits = limits or Limits()
        self.scheduler = scheduler
        self.prompt_limit = prompt_limit  # characters of a /write prompt that are used
        self.rebuild_chars = rebuild_chars  # story tail read to rebuild a lost state
        self.story_limit = story_limit  # characters a story may grow to
        self.max_resident_chats = max_resident_chats  # chats whose state stays in memory (least recent forget first)
        self.sessions: OrderedDict[int, ChatSession] = OrderedDict()  # oldest use first
        self.model = scheduler.model
        self.known = set(self.model.chars()[1:])  # characters the model reads as themselves (not [UNK])

    def start_state(self, book: str | None) -> np.ndarray:
        """[S, 1, H]: where a story in `book` (None: no novel) starts."""
        return self.model.initial_state(1, book)

    def book_for(self, setting: str, prompt: str) -> str | None:
        """The novel a new story is written in: the chat's choice, or "auto" picked from the prompt.
        A choice the model no longer knows (another model was loaded) counts as "auto"."""
        if setting != texts.BOOK_AUTO and setting in self.model.books:
            return setting
        return self.model.pick_book(prompt)

    def session(self, chat_id: int) -> ChatSession:
        """The chat's session, now the most recently used; past max_resident_chats the idle ones used longest
        ago are forgotten (a chat writing keeps its session)."""
        s = self.sessions.setdefault(chat_id, ChatSession())
        self.sessions.move_to_end(chat_id)
        excess, forget = len(self.sessions) - self.max_resident_chats, []
        for c, other in self.sessions.items():  # oldest first; usually the first `excess` are idle
            if len(forget) >= excess:
                break
            if not other.lock.locked() and c != chat_id:
                forget.append(c)
        for c in forget:
            del self.sessions[c]
        return s

    def forget_if_empty(self, chat_id: int, session: ChatSession) -> None:
        """Drop a session that holds no state and is not in use (made for a request that was refused)."""
        if (self.sessions.get(chat_id) is session and session.states is None and session.before_last is None
                and not session.checkpoints and not session.lock.locked()):
            del self.sessions[chat_id]

    # ---- settings -------------------------------------------------------------------

    async def temperature(self, chat_id: int, raw: str | None) -> str:
        """/temp: show, or set if `raw` is a number in [TEMP_MIN, TEMP_MAX]."""
        return await self._setting(chat_id, raw, float, texts.TEMP_MIN, texts.TEMP_MAX, "temperature",
                                   self.store.set_temperature, texts.TEMP_SHOWN, texts.TEMP_SET, texts.TEMP_INVALID)

    async def length(self, chat_id: int, raw: str | None) -> str:
        """/len: show, or set if `raw` is a whole number in [LEN_MIN, LEN_MAX]."""
        return await self._setting(chat_id, raw, int, texts.LEN_MIN, texts.LEN_MAX, "length",
                                   self.store.set_length, texts.LEN_SHOWN, texts.LEN_SET, texts.LEN_INVALID)

    async def _setting(self, chat_id, raw, parse, low, high, name, save, shown, done, invalid) -> str:
        if not raw or not raw.strip():
            return shown.format(value=getattr(await self.store.settings(chat_id), name))
        try:
            value = parse(raw.strip())
        except ValueError:
            return invalid.format(raw=raw)
        if not math.isfinite(value) or not low <= value <= high:
            return invalid.format(raw=raw)  # the setting stays as it was
        await save(chat_id, value)
        return done.format(value=value)

    async def role(self, chat_id: int, user_id: int, raw: str | None) -> str:
        """/role: show the character this person plays here, set one (a name), or none ("off")."""
        name = (raw or "").strip()
        if not name:
            current = await self.store.role(chat_id, user_id)
            return texts.role_shown(current) if current else texts.ROLE_NONE
        if name.lower() == "off":
            await self.store.set_role(chat_id, user_id, None)
            return texts.ROLE_OFF
        problem = roles.role_problem(name, self.known)
        if problem:  # the role stays as it was
            return (texts.ROLE_LONG if problem == "long" else texts.ROLE_MARKS).format(limit=roles.ROLE_MAX, raw=name)
        await self.store.set_role(chat_id, user_id, name)
        return texts.role_set(name)

    async def book(self, chat_id: int, raw: str | None) -> str:
        """/book: list the novels with the chat's choice, or set one (a name or "auto")."""
        names = self.model.books.names
        if not names:
            return texts.NO_BOOKS
        current = (await self.store.settings(chat_id)).book
        if not raw or not raw.strip():
            return texts.book_list(names, current if current in names else texts.BOOK_AUTO)
        choice = raw.strip().strip("《》<>")
        if choice.lower() == texts.BOOK_AUTO:
            choice = texts.BOOK_AUTO
        elif choice not in names:
            return texts.book_unknown(raw.strip(), names)  # the setting stays as it was
        await self.store.set_book(chat_id, choice)
        return texts.book_set(choice)

    # ---- stories --------------------------------------------------------------------

    async def reset(self, chat_id: int) -> str | None:
        """/reset: forget the story. A chat busy writing is told so, as for any request (None:
        it was told a moment ago; say nothing), rather than queueing behind the part."""
        s = self.sessions.get(chat_id)
        if s is None:
            await self.store.reset_story(chat_id)
            return texts.RESET_DONE
        if s.lock.locked():
            notice = busy(s)
            return None if notice.quiet else str(notice)
        async with s.lock:  # free: taken at once, so no part starts while the story is cleared
            await self.store.reset_story(chat_id)
            self.sessions.pop(chat_id, None)
        return texts.RESET_DONE

    async def move_chat(self, old: int, new: int) -> None:
        """A group became a supergroup (a new chat id): its story, settings and state go with it."""
        if old == new:
            return
        await self.store.move_chat(old, new)
        session = self.sessions.pop(old, None)
        if session is not None and not session.lock.locked():  # a part in flight is saved nowhere: it ends
            self.sessions[new] = session

    async def story_text(self, chat_id: int) -> str | None:
        story = await self.store.story(chat_id)
        return story.text if story and story.text else None

    def is_busy(self, chat_id: int) -> bool:
        return chat_id in self.sessions and self.sessions[chat_id].lock.locked()

    def write(self, chat_id: int, prompt: str | None, user_id: int | None = None,
              user_name: str | None = None) -> "PartContext":
        """Start a new story from `prompt` (use as `async with engine.write(...) as part`)."""
        prompt = (prompt or "").strip()
        notice = ""
        if len(prompt) > self.prompt_limit:
            prompt, notice = prompt[-self.prompt_limit:], texts.PROMPT_CUT.format(limit=self.prompt_limit)

        async def prepare(s: ChatSession, settings) -> Opening:
            if not prompt:
                raise UserError(texts.WRITE_USAGE)
            book = self.book_for(settings.book, prompt)
            picked = texts.book_picked(book) if book and settings.book == texts.BOOK_AUTO else ""
            old = await self.store.story(chat_id)
            return Opening(0, prompt, prompt, self.start_state(book), len(prompt), header=prompt, notice=picked,
                           new_story=(prompt, book), replaces=old.version if old else 0,
                           parts=[NewPart(0, prompt, "prompt", user_id, user_name)])

        return self._part(chat_id, prepare, notice, user_id)

    def join(self, chat_id: int, line: str | None, user_id: int | None = None,
             user_name: str | None = None, kind: str = "text") -> "PartContext":
        """A person's own line joins the story as a paragraph of its own, read into the chat's state, and the
        bot goes on from it with one part; with no story yet, the line starts one (as /write does).
        kind "say" / "do": the line is what the person's character says or does (/say, /do)."""
        line = (line or "").strip()
        usage = {"say": texts.SAY_USAGE, "do": texts.DO_USAGE}.get(kind, texts.ADD_USAGE)
        notice = ""
        if len(line) > self.prompt_limit:
            line, notice = line[-self.prompt_limit:], texts.PROMPT_CUT.format(limit=self.prompt_limit)
        write = self.write(chat_id, line, user_id, user_name)

        async def prepare(s: ChatSession, settings) -> Opening:
            nonlocal line
            role = None
            if kind in ("say", "do"):
                role = await self.store.role(chat_id, user_id if user_id is not None else chat_id)
                if role is None:
                    raise UserError(texts.ROLE_NEEDED)
            if not line:
                raise UserError(usage)
            if not any(c in self.known for c in line):
                raise UserError(texts.ADD_UNREADABLE)  # only emoji, Latin letters …: the model would read [UNK]s
            if role is not None:
                line = (roles.say if kind == "say" else roles.act)(role, line)
            story = await self.store.story(chat_id)
            if story is None or not story.text:
                return await write.prepare(s, settings)
            joined = paragraph(story.text, line)
            if len(story.text) + len(joined) + settings.length > self.story_limit:
                raise UserError(texts.STORY_FULL.format(limit=self.story_limit))
            read, states, said = self._resume_point(s, story)
            return Opening(story.version, story.text + joined, read + joined, states, len(story.text) + len(joined),
                           notice=said, parts=[NewPart(len(story.text), joined, kind, user_id, user_name)])

        return self._part(chat_id, prepare, notice, user_id)

    def continue_story(self, chat_id: int, version: int | None = None, user_id: int | None = None) -> "PartContext":
        """Extend the chat's story from its state (version: the button's, if pressed)."""
        async def prepare(s: ChatSession, settings) -> Opening:
            story = await self.store.story(chat_id)
            if version is not None and (story is None or version != story.version):
                raise UserError(texts.STALE_BUTTON)
            if story is None or not story.text:
                raise UserError(texts.NO_STORY)
            if len(story.text) + settings.length > self.story_limit:
                raise UserError(texts.STORY_FULL.format(limit=self.story_limit))
            read, states, notice = self._resume_point(s, story)
            return Opening(story.version, story.text, read, states, len(story.text), notice=notice)

        return self._part(chat_id, prepare, "", user_id)

    def rewrite(self, chat_id: int, version: int, start: int, user_id: int | None = None) -> "PartContext":
        """Generate the newest part again, from the state before it."""
        async def prepare(s: ChatSession, settings) -> Opening:
            story = await self.store.story(chat_id)
            if story is None or version != story.version or not story.text:
                raise UserError(texts.STALE_BUTTON)
            if start != story.last_part_start:
                raise UserError(texts.OLD_PART)
            before = story.text[:start]
            if s.version == story.version and s.before_last is not None:
                (read, states), notice = s.before_last, ""
            else:  # lost (a restart, an /undo): from a state kept before it, or the tail of the story before it
                read, states, notice = self._state_at(s, story, start)
            return Opening(story.version, before, read, states, start, notice=notice, rewrite=True)

        return self._part(chat_id, prepare, "", user_id)

    def _resume_point(self, s: ChatSession, story) -> tuple[str, np.ndarray, str]:
        """(text to read, state before it, a notice for the chat) to go on from the story's end."""
        if s.version == story.version and s.states is not None:
            return "", s.states, ""
        return self._state_at(s, story, len(story.text))

    def _state_at(self, s: ChatSession, story, position: int) -> tuple[str, np.ndarray, str]:
        """(text to read, state before it, a notice) for the state after story.text[:position]: from the
        latest state kept at or before it (exact), else (a restart) the tail read from its novel's start."""
        kept = [n for n in s.checkpoints if n <= position] if s.version == story.version else []
        if kept:
            n = max(kept)
            return story.text[n:position], s.checkpoints[n], ""
        states, notice = self._story_start(s, story)
        return story.text[:position][-self.rebuild_chars:], states, notice

    def _story_start(self, s: ChatSession, story) -> tuple[np.ndarray, str]:
        """The state a stored story's tail is read from: its novel's start, or no novel's when this model
        lacks that novel (another MODEL_DIR, a fine-tune), which the chat is told once."""
        if story.book is None or story.book in self.model.books:
            return self.start_state(story.book), ""
        told, s.novel_explained = s.novel_explained == story.version, story.version
        return self.start_state(None), "" if told else texts.novel_gone(story.book)

    def _part(self, chat_id: int, prepare, notice: str, user_id: int | None) -> "PartContext":
        return PartContext(self, chat_id, self.session(chat_id), prepare, notice,
                           chat_id if user_id is None else user_id)


PARAGRAPH = "\n\u3000\u3000"  # how the novels (and the model) begin a paragraph: a newline, two ideographic spaces


def paragraph(story: str, line: str) -> str:
    """`line` as a new paragraph after `story` (a person's own words stand apart from the bot's)."""
    return ("\u3000\u3000" if story.endswith("\n") else PARAGRAPH) + line


def is_locked(error: BaseException) -> bool:
    """SQLite's "database is locked" (another program holds the file): busy, not broken."""
    return isinstance(error, sqlite3.OperationalError) and getattr(error, "sqlite_errorcode", None) in (
        getattr(sqlite3, "SQLITE_BUSY", 5), getattr(sqlite3, "SQLITE_LOCKED", 6))


def report_failure(error: BaseException, database) -> str:
    """Log why a request failed and return what to tell the user. A storage failure (a full
    disk, a read-only file) gets its cause in one line and a reply saying nothing was lost."""
    if is_locked(error):
        log.warning("database busy (locked by another program), nothing was changed: %s (%s)", error, database)
        return texts.STORAGE_BUSY
    if isinstance(error, sqlite3.Error):
        log.error("database write failed, nothing was changed: %s (%s)", error, database)
        return texts.STORAGE_FAILED
    log.error("handler failed: %s", error, exc_info=error)
    return texts.APOLOGY


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
            try:
                self.job = self.engine.scheduler.submit(opening.read, opening.states, settings.length,
                                                        settings.temperature)
            except Busy:
                raise UserError(texts.BUSY_GLOBAL) from None
        except BaseException:
            if reserved:
                limits.refund(self.user_id, reserved)
            self.session.lock.release()
            self.engine.forget_if_empty(self.chat_id, self.session)  # a refused request leaves nothing behind
            raise
        self.opening = opening
        ahead, seconds = self.engine.scheduler.queue_wait(self.job)
        # Told only if whole rounds come first, and enough of them: a short wait is not worth a message.
        queued = texts.QUEUED.format(ahead=ahead) if seconds and seconds >= QUEUE_NOTICE_SECONDS else ""
        notice = "\n".join(n for n in (self.notice, opening.notice, queued) if n)
        self.part = Part(self.chat_id, opening.version, opening.start, opening.header, notice,
                         _run=self.engine.scheduler.stream(self.job), roles=played)
        return self.part

    def keep(self, length: int) -> None:
        """Keep the state at the story's new end (length characters), the newest CHECKPOINTS of them. A part
        cut short (before someone's character spoke) has no state at its end: the next part reads its text."""
        if self.part.turn is not None:
            self.session.states = None
            return
        kept = self.session.checkpoints
        kept[length] = self.job.states
        kept.move_to_end(length)
        while len(kept) > CHECKPOINTS:
            kept.popitem(last=False)

    async def __aexit__(self, exc_type, exc, tb) -> None:
        opening = self.opening
        try:
            complete = exc_type is None and (self.job.remaining <= 0 or self.part.turn is not None)
            if self.part.turn is not None:
                self.job.cancel()  # stopped before someone's character spoke: nothing more is written
            if complete and opening.new_story:
                # Only a new story's whole first part replaces the old story: a failed /write keeps it.
                version = await self.engine.store.start_story(
                    self.chat_id, *opening.new_story, part=self.part.text, replaces=opening.replaces,
                    parts=opening.parts + [NewPart(opening.start, self.part.text, "bot")])
                if version is None:  # the story it would replace changed meanwhile (another process): keep theirs
                    self.session.states = None
                    raise UserError(texts.STORY_CHANGED)
                opening.version = self.part.version = version  # what its buttons carry
                self.session.version, self.session.states = opening.version, self.job.states
                self.session.before_last = (opening.read, opening.states)
                self.session.checkpoints.clear()
                self.keep(len(opening.before) + len(self.part.text))
            elif complete:
                story_text = opening.before + self.part.text
                added = opening.parts + [NewPart(opening.start, self.part.text, "bot")]
                if not await self.engine.store.save_story(self.chat_id, opening.version, story_text, opening.start,
                                                          parts=added, rewrite=opening.rewrite):
                    # The stored story is no longer this one (a /reset, or another process): keep theirs.
                    self.session.states = None
                    raise UserError(texts.STORY_CHANGED)
                self.session.version, self.session.states = opening.version, self.job.states
                self.session.before_last = (opening.read, opening.states)  # what 重写 starts from
                changed = opening.parts[0].start if opening.parts else opening.start  # where the new text begins
                for n in [n for n in self.session.checkpoints if n > changed]:
                    del self.session.checkpoints[n]  # states past it are of text that is gone
                self.keep(len(story_text))
            else:
                self.job.cancel()
                if self.session.version == opening.version and not opening.new_story:
                    self.session.states = None  # the state no longer matches the stored story
        finally:
            self.session.lock.release()
