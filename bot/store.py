"""The bot's SQLite database (aiosqlite): per-chat settings and stories.

One module owns the database: it runs every SQL statement, each a named string in
bot.schema (`sql.NAME` here), and the schema grows only by numbered migrations recorded
in `schema_migrations`. The bot refuses to open a database whose newest migration is
newer than this code knows.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite

from bot import schema as sql

DEFAULT_TEMPERATURE = 0.8  # sampling temperature for a chat that never set one
DEFAULT_LENGTH = 300  # characters one /write or /continue adds, by default
# Seconds a statement waits for a database another program has locked before failing: short,
# because the store runs one operation at a time and every chat would wait behind it.
LOCK_WAIT = 0.5
DEFAULT_BOOK = "auto"  # the novel a chat's stories are in: "auto" picks it from each /write's names

class StoreError(Exception):
    """A database the bot cannot use; the message says which file and why."""


@dataclass
class Settings:
    temperature: float = DEFAULT_TEMPERATURE
    length: int = DEFAULT_LENGTH
    book: str = DEFAULT_BOOK  # "auto" or a novel's name
    choices: bool = False  # offer three next beats after each part (/choices)
    flavour: bool = False  # tell each person's line its 金庸味 under the part that follows it (/score on)


@dataclass
class StoredPart:
    seq: int
    start: int  # where it begins in the story's text
    text: str
    kind: str  # "prompt", "bot", "text" (a person's line), "earlier" (stored before parts were)
    author_id: int | None = None  # None: the bot
    author_name: str | None = None
    undone: bool = False  # taken back by /undo
    typed: str | None = None  # a person's line as typed, where the story reads it cleaned (bot.reading)


@dataclass
class NewPart:
    """A part about to be stored: what `start_story` and `save_story` record beside the text."""

    start: int
    text: str
    kind: str
    author_id: int | None = None
    author_name: str | None = None
    typed: str | None = None  # as typed, where that differs from `text`

    def row(self, chat_id: int) -> dict:
        return {"chat": chat_id, "start": self.start, "text": self.text, "kind": self.kind,
                "author_id": self.author_id, "author_name": self.author_name, "typed": self.typed}


@dataclass
class Choice:
    """The beats offered after a part, while the story is still where they go on from."""

    version: int  # the story's version and length then
    at: int
    options: list[str]
    vote: bool  # a group votes on it (else a press decides)
    opened: float  # Unix seconds
    thread_id: int | None = None  # the forum topic it was offered in
    votes: dict[int, int] = field(default_factory=dict)  # user id -> option (0: ①)


@dataclass
class Waiting:
    """A line that waits for the bot's part to end before it joins the story (a group's turn)."""

    seq: int
    kind: str  # text, say, do
    text: str  # as it joins the story
    author_id: int | None = None
    author_name: str | None = None
    message_id: int | None = None  # the message it came in
    thread_id: int | None = None
    typed: str | None = None  # as typed, where that differs from `text`


@dataclass
class Story:
    version: int
    text: str
    last_part_start: int
    book: str | None = None  # the novel it is written in (None: no novel)


def lock_beside(path: Path) -> int:
    """An exclusive lock on PATH.lock, held by this process until closed: two bots on one
    database would each overwrite the other's saves. Returns the lock's file descriptor."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(f"{path}: another bot process is using this database (it holds {lock_path}); "
                         "stop it first, or give this one its own DATABASE_PATH") from None
    return fd


class Store:
    def __init__(self, db: aiosqlite.Connection, path: Path, lock_fd: int | None = None):
        self.db, self.path, self.lock_fd = db, path, lock_fd
        # Handlers run concurrently on one connection: a commit while another handler's statement
        # is open fails ("SQL statements in progress"), so each operation runs whole, one at a time.
        self.lock = asyncio.Lock()

    async def _fetchone(self, sql: str, params: tuple):
        async with self.lock:
            rows = await self.db.execute_fetchall(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: tuple, fetch: bool = False):
        rows = await self._transaction([(sql, params)])
        return rows[0] if fetch and rows else None

    async def _transaction(self, statements: list[tuple[str, tuple]], guarded: bool = False) -> list:
        """Run the statements as one transaction (all or nothing); the last one's rows. `guarded`: the first
        statement's RETURNING decides: no row, and nothing is written ([] returned)."""
        first: list = []
        async with self.lock:
            try:
                for i, (sql, params) in enumerate(statements):
                    rows = await self.db.execute_fetchall(sql, params)
                    if i == 0:
                        first = rows
                        if guarded and not rows:
                            await self.db.rollback()
                            return []
                await self.db.commit()
            except BaseException:
                await self.db.rollback()
                raise
        return first if guarded else rows

    @staticmethod
    def take_lock(path: str | Path) -> int:
        """Make the database's folder if needed (0700) and take its lock (see lock_beside): the file
        descriptor, held until closed. StoreError if another process holds it or the folder is unusable."""
        path = Path(path)
        try:
            private_folder(path.parent)
            fd = lock_beside(path)
        except OSError as e:
            raise StoreError(f"{path}: cannot open database ({e})") from None
        owner_only(path)
        return fd

    @classmethod
    async def open(cls, path: str | Path, lock_fd: int | None = None) -> "Store":
        """Open (creating if needed, readable by its owner only) and migrate the database. `lock_fd`: its
        lock, already taken by this process (Store.take_lock); it is released when the store closes."""
        path = Path(path)
        if lock_fd is None:
            lock_fd = Store.take_lock(path)
        try:
            return cls(await connect(path), path, lock_fd)
        except BaseException:
            os.close(lock_fd)  # not opened: the next try (or another process) may have it
            raise

    async def close(self) -> None:
        try:
            await self.db.close()
        finally:
            if self.lock_fd is not None:
                os.close(self.lock_fd)  # releases the lock
                self.lock_fd = None

    async def settings(self, chat_id: int) -> Settings:
        row = await self._fetchone(sql.SELECT_SETTINGS, (chat_id,))
        return Settings(row[0], row[1], row[2], bool(row[3]), bool(row[4])) if row else Settings()

    async def set_temperature(self, chat_id: int, value: float) -> None:
        await self._write(sql.UPSERT_TEMPERATURE, (chat_id, value, DEFAULT_LENGTH))

    async def set_length(self, chat_id: int, value: int) -> None:
        await self._write(sql.UPSERT_LENGTH, (chat_id, DEFAULT_TEMPERATURE, value))

    async def set_book(self, chat_id: int, value: str) -> None:
        await self._write(sql.UPSERT_BOOK, (chat_id, DEFAULT_TEMPERATURE, DEFAULT_LENGTH, value))

    async def set_choices(self, chat_id: int, on: bool) -> None:
        await self._write(sql.UPSERT_CHOICES, (chat_id, DEFAULT_TEMPERATURE, DEFAULT_LENGTH, int(on)))

    async def set_flavour(self, chat_id: int, on: bool) -> None:
        await self._write(sql.UPSERT_FLAVOUR, (chat_id, DEFAULT_TEMPERATURE, DEFAULT_LENGTH, int(on)))

    async def story(self, chat_id: int) -> Story | None:
        row = await self._fetchone(sql.SELECT_STORY, (chat_id,))
        return Story(*row) if row else None

    async def start_story(self, chat_id: int, prompt: str, book: str | None = None, part: str = "",
                          replaces: int | None = None, parts: list[NewPart] | None = None,
                          waited: int | None = None) -> int | None:
        """Replace the chat's story with a new one: the prompt and its first part, in `book`; its version.
        With `replaces` (the version it was seen at; 0: no story), None and nothing written if the
        stored story is no longer that one. `parts`: who wrote what (default: the prompt, then the bot's part);
        `waited`: the last of the chat's waiting lines it joined (they are no longer waiting)."""
        if parts is None:
            parts = [NewPart(0, prompt, "prompt")] + ([NewPart(len(prompt), part, "bot")] if part else [])
        rows = await self._transaction(
            [(sql.START_STORY, {"chat": chat_id, "text": prompt + part, "start": len(prompt), "book": book,
                                "replaces": replaces}), (sql.DELETE_PARTS, (chat_id,))]
            + [(sql.ADD_PART, p.row(chat_id)) for p in parts] + self._moved_on(chat_id, waited), guarded=True)
        return rows[0][0] if rows else None

    async def save_story(self, chat_id: int, version: int, text: str, last_part_start: int,
                         parts: list[NewPart] | None = None, rewrite: bool = False, waited: int | None = None) -> bool:
        """Save a part's story; False (nothing written) if the stored story is no longer `version`. `parts`:
        the parts it adds (what /undo had taken is then gone); `rewrite`: they replace the newest part;
        `waited`: the last of the chat's waiting lines it joined. The chat's open choice closes."""
        parts = parts or []
        drop = [(sql.DROP_NEWEST_PART, (chat_id, chat_id))] if rewrite else []
        rows = await self._transaction(
            [(sql.SAVE_STORY, (text, last_part_start, chat_id, version))] + drop
            + ([(sql.DELETE_UNDONE, (chat_id,))] if parts else []) + [(sql.ADD_PART, p.row(chat_id)) for p in parts]
            + self._moved_on(chat_id, waited), guarded=True)
        return bool(rows)

    @staticmethod
    def _moved_on(chat_id: int, waited: int | None) -> list[tuple[str, tuple]]:
        """What saving a part also does: the chat's choice closes; the waiting lines it joined leave the queue."""
        done = [(sql.DELETE_WAITING, (chat_id, waited))] if waited is not None else []
        return [(sql.DELETE_CHOICE, (chat_id,)), (sql.DELETE_VOTES, (chat_id,))] + done

    async def parts(self, chat_id: int) -> list[StoredPart]:
        """The story's parts in order, those /undo took back included (undone)."""
        async with self.lock:
            rows = await self.db.execute_fetchall(sql.SELECT_PARTS, (chat_id,))
        return [StoredPart(*r[:6], undone=bool(r[6]), typed=r[7]) for r in rows]

    async def set_undone(self, chat_id: int, version: int, text: str, last_part_start: int, seq: int,
                         undone: bool) -> bool:
        """/undo (undone) or /redo of part `seq`, with the story's text as it then reads; False if the
        story is no longer `version` (nothing written)."""
        rows = await self._transaction([(sql.SAVE_STORY, (text, last_part_start, chat_id, version)),
                                        (sql.SET_UNDONE, (int(undone), chat_id, seq))] + self._moved_on(chat_id, None),
                                       guarded=True)
        return bool(rows)

    async def reset_story(self, chat_id: int) -> None:
        await self._transaction([(sql.RESET_STORY, (chat_id,)), (sql.DELETE_PARTS, (chat_id,)),
                                 (sql.CLEAR_WAITING, (chat_id,))] + self._moved_on(chat_id, None))

    async def move_chat(self, old: int, new: int) -> None:
        """Settings and story of chat `old` now belong to `new` (a group upgraded to a supergroup).
        Moving a chat with nothing stored (or moving it twice) changes nothing."""
        await self._transaction([(sql.MOVE_SETTINGS, (new, old)), (sql.MOVE_STORY, (new, old)),
                                 (sql.DELETE_SETTINGS, (old,)), (sql.DELETE_STORY, (old,)),
                                 (sql.DELETE_PARTS, (new,)), (sql.MOVE_PARTS, (new, old)),
                                 (sql.MOVE_ROLES, (new, old)), (sql.MOVE_CHOICE, (new, old)),
                                 (sql.MOVE_VOTES, (new, old)), (sql.MOVE_WAITING, (new, old))])

    async def role(self, chat_id: int, user_id: int) -> str | None:
        """The character `user_id` plays in this chat (None: none)."""
        row = await self._fetchone(sql.SELECT_ROLE, (chat_id, user_id))
        return row[0] if row else None

    async def roles(self, chat_id: int) -> list[str]:
        """Every character someone plays in this chat."""
        async with self.lock:
            rows = await self.db.execute_fetchall(sql.SELECT_ROLES, (chat_id,))
        return [r[0] for r in rows]

    async def set_role(self, chat_id: int, user_id: int, name: str | None) -> None:
        """Play `name` in this chat (None: play no one)."""
        if name is None:
            await self._write(sql.CLEAR_ROLE, (chat_id, user_id))
        else:
            await self._write(sql.SET_ROLE, (chat_id, user_id, name))

    async def open_choice(self, chat_id: int, choice: Choice) -> None:
        """Offer `choice` in the chat (replacing any choice before it, and its votes)."""
        await self._transaction([(sql.DELETE_VOTES, (chat_id,)), (sql.OPEN_CHOICE, (
            chat_id, choice.version, choice.at, json.dumps(choice.options, ensure_ascii=False), int(choice.vote),
            choice.opened, choice.thread_id))])

    async def choice(self, chat_id: int) -> Choice | None:
        """The chat's open choice with its votes (None: none; it may belong to a story since moved on)."""
        async with self.lock:
            rows = await self.db.execute_fetchall(sql.SELECT_CHOICE, (chat_id,))
            votes = await self.db.execute_fetchall(sql.SELECT_VOTES, (chat_id,)) if rows else []
        if not rows:
            return None
        version, at, options, vote, opened, thread_id = rows[0]
        return Choice(version, at, json.loads(options), bool(vote), opened, thread_id, dict(votes))

    async def vote(self, chat_id: int, user_id: int, option: int) -> None:
        """`user_id` votes for `option` of the chat's choice (a second vote moves theirs; no choice: nothing)."""
        await self._write(sql.CAST_VOTE, (chat_id, user_id, option, chat_id))

    async def due_choices(self, opened_before: float) -> list[int]:
        """Chats whose group choice was offered before `opened_before` and has a vote: theirs to decide."""
        async with self.lock:
            rows = await self.db.execute_fetchall(sql.DUE_CHOICES, (opened_before,))
        return [r[0] for r in rows]

    async def add_waiting(self, chat_id: int, line: Waiting, most: int) -> int | None:
        """Queue a line behind the part being written; its place (1: next), or None when `most` wait already."""
        row = await self._write(sql.ADD_WAITING, {
            "chat": chat_id, "kind": line.kind, "text": line.text, "author_id": line.author_id,
            "author_name": line.author_name, "message_id": line.message_id, "thread_id": line.thread_id,
            "typed": line.typed,
            "most": most}, fetch=True)
        if row is None:
            return None
        return sum(1 for w in await self.waiting(chat_id) if w.seq <= row[0])

    async def waiting(self, chat_id: int) -> list[Waiting]:
        """The lines waiting their turn in the chat, in arrival order."""
        async with self.lock:
            rows = await self.db.execute_fetchall(sql.SELECT_WAITING, (chat_id,))
        return [Waiting(*r) for r in rows]

    async def chats_waiting(self) -> list[int]:
        """Chats with lines waiting (after a restart, their parts are written)."""
        async with self.lock:
            rows = await self.db.execute_fetchall(sql.CHATS_WAITING, ())
        return [r[0] for r in rows]


def private_folder(folder: Path) -> None:
    """Create `folder` (and its parents) readable by its owner only, whatever the umask (0777 in many
    containers); a folder that already exists is left as its owner set it."""
    if folder.exists():
        return
    folder.mkdir(parents=True, mode=0o700)
    folder.chmod(0o700)


def owner_only(path: Path) -> None:
    """Tighten the database and its side files to 0600 where they are looser (made under another umask)."""
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
              path.with_name(path.name + ".lock")):
        try:
            if f.stat().st_mode & 0o077:
                f.chmod(0o600)
        except FileNotFoundError:
            pass


async def connect(path: Path) -> aiosqlite.Connection:
    """Create the file if needed (mode 0600), connect, and migrate; StoreError if unusable."""
    try:
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        db = await aiosqlite.connect(path, timeout=LOCK_WAIT)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"{path}: cannot open database ({e})") from None
    try:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await migrate(db, path)
    except sqlite3.Error as e:
        await db.close()
        raise StoreError(f"{path}: cannot use database ({e})") from None
    except StoreError:
        await db.close()
        raise
    return db


async def migrate(db: aiosqlite.Connection, path: Path) -> None:
    await db.execute(sql.CREATE_MIGRATIONS)
    async with db.execute(sql.SELECT_SCHEMA_VERSION) as cur:
        (current,) = await cur.fetchone()
    if current > len(sql.MIGRATIONS):
        raise StoreError(f"{path}: database schema version {current} is newer than this bot "
                         f"(knows up to {len(sql.MIGRATIONS)}); upgrade the bot")
    for number in range(current + 1, len(sql.MIGRATIONS) + 1):
        record = sql.RECORD_MIGRATION.replace("?", str(number))
        await db.executescript(f"BEGIN; {sql.MIGRATIONS[number - 1]} {record}; COMMIT;")
