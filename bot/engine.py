"""The story engine: what /write, /continue, a person's line (/add, /say, /do), 重写, /role, /temp, /len,
/book, /reset and /story do (/undo and /redo: bot.history; one part in the making: bot.part).

Transport-free: the Telegram handlers and the console are thin adapters over it.
It keeps one GRU state per chat in memory (the state after the story's last
character) and everything that must survive a restart in the Store. A chat whose
state was lost (a restart) gets it back by reading the tail of its stored story.
One generation at a time per chat: a second request meanwhile is told to wait.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections import OrderedDict

import numpy as np

from bot import reading, roles, texts
from bot.limits import Limits
from bot.part import ChatSession, Opening, PartContext, UserError, busy
from bot.scheduler import Scheduler
from bot.store import NewPart, Store

log = logging.getLogger(__name__)


# A story's cap in characters (about 300 KB as UTF-8): every part rewrites the whole stored text,
# and /story sends it as one file, so a story without end would grow every save and upload.
STORY_MAX_CHARS = 100_000
# Chats whose state stays in memory (~25 KiB each for the shipped model: the state, and the one before
# the newest part for 重写): 10,000 ≈ 250 MB. Past it the chat idle longest forgets its state, and its
# next part reads its story's tail again, as after a restart.
MAX_RESIDENT_CHATS = 10_000
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

    async def choices(self, chat_id: int, raw: str | None) -> str:
        """/choices: show whether three next beats are offered after each part, or turn it on or off."""
        word = (raw or "").strip().lower()
        if not word:
            return texts.choices_shown((await self.store.settings(chat_id)).choices)
        if word not in ("on", "off"):
            return texts.CHOICES_INVALID.format(raw=raw.strip())  # the setting stays as it was
        await self.store.set_choices(chat_id, word == "on")
        return texts.choices_set(word == "on")

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
        prompt, notice = self.cut_prompt(prompt)

        async def prepare(s: ChatSession, settings) -> Opening:
            if not prompt:
                raise UserError(texts.WRITE_USAGE)
            book = self.book_for(settings.book, prompt)
            picked = texts.book_picked(book) if book and settings.book == texts.BOOK_AUTO else ""
            old = await self.store.story(chat_id)
            return Opening(0, prompt, prompt, self.start_state(book), len(prompt), header=prompt, notice=picked,
                           new_story=(prompt, book), replaces=old.version if old else 0,
                           parts=[NewPart(0, prompt, "prompt", user_id, user_name)])

        return self.part(chat_id, prepare, notice, user_id)

    def join(self, chat_id: int, line: str | None, user_id: int | None = None,
             user_name: str | None = None, kind: str = "text") -> "PartContext":
        """A person's own line joins the story as a paragraph of its own, read into the chat's state, and the
        bot goes on from it with one part; with no story yet, the line starts one (as /write does).
        kind "say" / "do": the line is what the person's character says or does (/say, /do)."""
        line, notice = self.cut_prompt(line)

        async def prepare(s: ChatSession, settings) -> Opening:
            text, typed = await self.line_for(chat_id, line, user_id, kind)
            return await self.opening_with(s, settings, chat_id, [NewPart(0, text, kind, user_id, user_name, typed)])

        return self.part(chat_id, prepare, notice, user_id)

    def cut_prompt(self, text: str | None) -> tuple[str, str]:
        """(the text stripped, its last prompt_limit characters if longer, and a notice that says so, else "")."""
        text = (text or "").strip()
        if len(text) > self.prompt_limit:
            return text[-self.prompt_limit:], texts.PROMPT_CUT.format(limit=self.prompt_limit)
        return text, ""

    async def line_for(self, chat_id: int, line: str, user_id: int | None, kind: str) -> tuple[str, str | None]:
        """(a person's line as it joins the story: cleaned as the corpus was (bot.reading), for /say and /do in
        their character's form; the line as typed where cleaning changed it, else None), or UserError saying
        why it cannot join: empty, nothing the model reads, no character."""
        role = None
        if kind in ("say", "do"):
            role = await self.store.role(chat_id, user_id if user_id is not None else chat_id)
            if role is None:
                raise UserError(texts.ROLE_NEEDED)
        if not line:
            raise UserError({"say": texts.SAY_USAGE, "do": texts.DO_USAGE}.get(kind, texts.ADD_USAGE))
        read = reading.as_read(line)
        if not any(c in self.known for c in read):
            raise UserError(texts.ADD_UNREADABLE)  # only emoji, Latin letters …: the model would read [UNK]s
        typed = line if read != line else None
        if role is not None:
            read = (roles.say if kind == "say" else roles.act)(role, read)
        return read, typed

    async def opening_with(self, s: ChatSession, settings, chat_id: int, lines: list[NewPart],
                           waited: int | None = None) -> Opening:
        """Where the bot goes on once people's `lines` (each a paragraph of its own; their starts are set
        here) join the story; with no story yet, they start one (as /write does)."""
        story = await self.store.story(chat_id)
        before = story.text if story else ""
        added = ""
        for line in lines:
            line.text = paragraph(before + added, line.text) if before + added else line.text
            line.start = len(before) + len(added)
            added += line.text
        if not before:  # no story: the lines are its opening
            book = self.book_for(settings.book, added)
            picked = texts.book_picked(book) if book and settings.book == texts.BOOK_AUTO else ""
            lines[0].kind = "prompt" if lines[0].kind == "text" else lines[0].kind
            return Opening(0, added, added, self.start_state(book), len(added), header=added, notice=picked,
                           new_story=(added, book), replaces=story.version if story else 0, parts=lines,
                           waited=waited)
        if len(before) + len(added) + settings.length > self.story_limit:
            raise UserError(texts.STORY_FULL.format(limit=self.story_limit))
        read, states, said = self.resume_point(s, story)
        return Opening(story.version, before + added, read + added, states, len(before) + len(added), notice=said,
                       parts=lines, waited=waited)

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
            read, states, notice = self.resume_point(s, story)
            return Opening(story.version, story.text, read, states, len(story.text), notice=notice)

        return self.part(chat_id, prepare, "", user_id)

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

        return self.part(chat_id, prepare, "", user_id)

    def resume_point(self, s: ChatSession, story) -> tuple[str, np.ndarray, str]:
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

    def part(self, chat_id: int, prepare, notice: str, user_id: int | None) -> "PartContext":
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
