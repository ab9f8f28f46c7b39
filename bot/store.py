"""The bot's SQLite database (aiosqlite): per-chat settings and stories.

One module owns the database: every SQL statement is a named string here, and the
schema grows only by numbered migrations recorded in `schema_migrations`. The bot
refuses to open a database whose newest migration is newer than this code knows.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

DEFAULT_TEMPERATURE = 0.8  # sampling temperature for a chat that never set one
DEFAULT_LENGTH = 300  # characters one /write or /continue adds, by default
# Seconds a statement waits for a database another program has locked before failing: short,
# because the store runs one operation at a time and every chat would wait behind it.
LOCK_WAIT = 0.5
DEFAULT_BOOK = "auto"  # the novel a chat's stories are in: "auto" picks it from each /write's names

MIGRATIONS: list[str] = [
    # 1: settings and stories
    """
    CREATE TABLE settings (
        chat_id     INTEGER PRIMARY KEY,
        temperature REAL    NOT NULL,
        length      INTEGER NOT NULL
    );
    CREATE TABLE stories (
        chat_id         INTEGER PRIMARY KEY,
        version         INTEGER NOT NULL,       -- bumped by /write and /reset; buttons carry it
        text            TEXT    NOT NULL,       -- the whole story: prompt and every part since
        last_part_start INTEGER NOT NULL        -- where the newest generated part begins (for 重写)
    );
    """,
    # 2: the novel a chat writes in (/book), and the novel each story started in (to rebuild its state)
    """
    ALTER TABLE settings ADD COLUMN book TEXT NOT NULL DEFAULT 'auto';
    ALTER TABLE stories ADD COLUMN book TEXT;   -- NULL: no novel
    """,
    # 3: who wrote what: the story's parts in order, each with its author and kind, for /story who and /undo
    """
    CREATE TABLE parts (
        chat_id     INTEGER NOT NULL,
        seq         INTEGER NOT NULL,           -- 1, 2, … in story order
        start       INTEGER NOT NULL,           -- where it begins in the story's text (characters)
        text        TEXT    NOT NULL,
        kind        TEXT    NOT NULL,           -- prompt, bot, text (a person's line), earlier (before this table)
        author_id   INTEGER,                    -- NULL: the bot
        author_name TEXT,
        undone      INTEGER NOT NULL DEFAULT 0, -- 1: taken back by /undo (/redo puts it back)
        PRIMARY KEY (chat_id, seq)
    );
    INSERT INTO parts (chat_id, seq, start, text, kind)
        SELECT chat_id, 1, 0, text, 'earlier' FROM stories WHERE text != '';
    """,
    # 4: the character each person plays in a chat (/role)
    """
    CREATE TABLE roles (
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        name    TEXT    NOT NULL,
        PRIMARY KEY (chat_id, user_id)
    );
    """,
]

CREATE_MIGRATIONS = """
    CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"""
SELECT_SCHEMA_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
RECORD_MIGRATION = "INSERT INTO schema_migrations (version, applied_at) VALUES (?, datetime('now'))"
SELECT_SETTINGS = "SELECT temperature, length, book FROM settings WHERE chat_id = ?"
UPSERT_TEMPERATURE = """
    INSERT INTO settings (chat_id, temperature, length) VALUES (?, ?, ?)
    ON CONFLICT(chat_id) DO UPDATE SET temperature = excluded.temperature"""
UPSERT_LENGTH = """
    INSERT INTO settings (chat_id, temperature, length) VALUES (?, ?, ?)
    ON CONFLICT(chat_id) DO UPDATE SET length = excluded.length"""
UPSERT_BOOK = """
    INSERT INTO settings (chat_id, temperature, length, book) VALUES (?, ?, ?, ?)
    ON CONFLICT(chat_id) DO UPDATE SET book = excluded.book"""
SELECT_STORY = "SELECT version, text, last_part_start, book FROM stories WHERE chat_id = ?"
# A new story replaces the chat's (version :replaces, 0 for none): if that changed meanwhile, nothing is written.
START_STORY = """
    INSERT INTO stories (chat_id, version, text, last_part_start, book) VALUES (:chat, 1, :text, :start, :book)
    ON CONFLICT(chat_id) DO UPDATE SET version = stories.version + 1, text = excluded.text,
                                       last_part_start = excluded.last_part_start, book = excluded.book
    WHERE :replaces IS NULL OR stories.version = :replaces
    RETURNING version"""
SAVE_STORY = "UPDATE stories SET text = ?, last_part_start = ? WHERE chat_id = ? AND version = ? RETURNING version"
RESET_STORY = "UPDATE stories SET version = version + 1, text = '', last_part_start = 0 WHERE chat_id = ?"
# A group that became a supergroup has a new chat id: its rows move there (replacing any), in one transaction.
MOVE_SETTINGS = """
    INSERT OR REPLACE INTO settings (chat_id, temperature, length, book)
    SELECT ?, temperature, length, book FROM settings WHERE chat_id = ?"""
MOVE_STORY = """
    INSERT OR REPLACE INTO stories (chat_id, version, text, last_part_start, book)
    SELECT ?, version, text, last_part_start, book FROM stories WHERE chat_id = ?"""
DELETE_SETTINGS = "DELETE FROM settings WHERE chat_id = ?"
DELETE_STORY = "DELETE FROM stories WHERE chat_id = ?"
MOVE_PARTS = "UPDATE parts SET chat_id = ? WHERE chat_id = ?"
MOVE_ROLES = "UPDATE OR REPLACE roles SET chat_id = ? WHERE chat_id = ?"
SELECT_ROLE = "SELECT name FROM roles WHERE chat_id = ? AND user_id = ?"
SELECT_ROLES = "SELECT DISTINCT name FROM roles WHERE chat_id = ? ORDER BY name"
SET_ROLE = "INSERT INTO roles (chat_id, user_id, name) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET name = excluded.name"
CLEAR_ROLE = "DELETE FROM roles WHERE chat_id = ? AND user_id = ?"
DELETE_PARTS = "DELETE FROM parts WHERE chat_id = ?"
DELETE_UNDONE = "DELETE FROM parts WHERE chat_id = ? AND undone = 1"  # a new part: what /undo took is gone
ADD_PART = """
    INSERT INTO parts (chat_id, seq, start, text, kind, author_id, author_name)
    VALUES (:chat, (SELECT COALESCE(MAX(seq), 0) + 1 FROM parts WHERE chat_id = :chat), :start, :text, :kind,
            :author_id, :author_name)"""
# 重写: the newest part (the bot's, just regenerated) is replaced
DROP_NEWEST_PART = """
    DELETE FROM parts WHERE chat_id = ? AND seq = (SELECT MAX(seq) FROM parts WHERE chat_id = ? AND undone = 0)"""
SELECT_PARTS = """
    SELECT seq, start, text, kind, author_id, author_name, undone FROM parts WHERE chat_id = ? ORDER BY seq"""
SET_UNDONE = "UPDATE parts SET undone = ? WHERE chat_id = ? AND seq = ?"


class StoreError(Exception):
    """A database the bot cannot use; the message says which file and why."""


@dataclass
class Settings:
    temperature: float = DEFAULT_TEMPERATURE
    length: int = DEFAULT_LENGTH
    book: str = DEFAULT_BOOK  # "auto" or a novel's name


@dataclass
class StoredPart:
    seq: int
    start: int  # where it begins in the story's text
    text: str
    kind: str  # "prompt", "bot", "text" (a person's line), "earlier" (stored before parts were)
    author_id: int | None = None  # None: the bot
    author_name: str | None = None
    undone: bool = False  # taken back by /undo


@dataclass
class NewPart:
    """A part about to be stored: what `start_story` and `save_story` record beside the text."""

    start: int
    text: str
    kind: str
    author_id: int | None = None
    author_name: str | None = None

    def row(self, chat_id: int) -> dict:
        return {"chat": chat_id, "start": self.start, "text": self.text, "kind": self.kind,
                "author_id": self.author_id, "author_name": self.author_name}


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
        row = await self._fetchone(SELECT_SETTINGS, (chat_id,))
        return Settings(*row) if row else Settings()

    async def set_temperature(self, chat_id: int, value: float) -> None:
        await self._write(UPSERT_TEMPERATURE, (chat_id, value, DEFAULT_LENGTH))

    async def set_length(self, chat_id: int, value: int) -> None:
        await self._write(UPSERT_LENGTH, (chat_id, DEFAULT_TEMPERATURE, value))

    async def set_book(self, chat_id: int, value: str) -> None:
        await self._write(UPSERT_BOOK, (chat_id, DEFAULT_TEMPERATURE, DEFAULT_LENGTH, value))

    async def story(self, chat_id: int) -> Story | None:
        row = await self._fetchone(SELECT_STORY, (chat_id,))
        return Story(*row) if row else None

    async def start_story(self, chat_id: int, prompt: str, book: str | None = None, part: str = "",
                          replaces: int | None = None, parts: list[NewPart] | None = None) -> int | None:
        """Replace the chat's story with a new one: the prompt and its first part, in `book`; its version.
        With `replaces` (the version it was seen at; 0: no story), None and nothing written if the
        stored story is no longer that one. `parts`: who wrote what (default: the prompt, then the bot's part)."""
        if parts is None:
            parts = [NewPart(0, prompt, "prompt")] + ([NewPart(len(prompt), part, "bot")] if part else [])
        rows = await self._transaction(
            [(START_STORY, {"chat": chat_id, "text": prompt + part, "start": len(prompt), "book": book,
                            "replaces": replaces}), (DELETE_PARTS, (chat_id,))]
            + [(ADD_PART, p.row(chat_id)) for p in parts], guarded=True)
        return rows[0][0] if rows else None

    async def save_story(self, chat_id: int, version: int, text: str, last_part_start: int,
                         parts: list[NewPart] | None = None, rewrite: bool = False) -> bool:
        """Save a part's story; False (nothing written) if the stored story is no longer `version`. `parts`:
        the parts it adds (what /undo had taken is then gone); `rewrite`: they replace the newest part."""
        parts = parts or []
        drop = [(DROP_NEWEST_PART, (chat_id, chat_id))] if rewrite else []
        rows = await self._transaction(
            [(SAVE_STORY, (text, last_part_start, chat_id, version))] + drop
            + ([(DELETE_UNDONE, (chat_id,))] if parts else []) + [(ADD_PART, p.row(chat_id)) for p in parts],
            guarded=True)
        return bool(rows)

    async def parts(self, chat_id: int) -> list[StoredPart]:
        """The story's parts in order, those /undo took back included (undone)."""
        async with self.lock:
            rows = await self.db.execute_fetchall(SELECT_PARTS, (chat_id,))
        return [StoredPart(*r[:6], undone=bool(r[6])) for r in rows]

    async def set_undone(self, chat_id: int, version: int, text: str, last_part_start: int, seq: int,
                         undone: bool) -> bool:
        """/undo (undone) or /redo of part `seq`, with the story's text as it then reads; False if the
        story is no longer `version` (nothing written)."""
        rows = await self._transaction([(SAVE_STORY, (text, last_part_start, chat_id, version)),
                                        (SET_UNDONE, (int(undone), chat_id, seq))], guarded=True)
        return bool(rows)

    async def reset_story(self, chat_id: int) -> None:
        await self._transaction([(RESET_STORY, (chat_id,)), (DELETE_PARTS, (chat_id,))])

    async def move_chat(self, old: int, new: int) -> None:
        """Settings and story of chat `old` now belong to `new` (a group upgraded to a supergroup).
        Moving a chat with nothing stored (or moving it twice) changes nothing."""
        await self._transaction([(MOVE_SETTINGS, (new, old)), (MOVE_STORY, (new, old)),
                                 (DELETE_SETTINGS, (old,)), (DELETE_STORY, (old,)),
                                 (DELETE_PARTS, (new,)), (MOVE_PARTS, (new, old)), (MOVE_ROLES, (new, old))])

    async def role(self, chat_id: int, user_id: int) -> str | None:
        """The character `user_id` plays in this chat (None: none)."""
        row = await self._fetchone(SELECT_ROLE, (chat_id, user_id))
        return row[0] if row else None

    async def roles(self, chat_id: int) -> list[str]:
        """Every character someone plays in this chat."""
        async with self.lock:
            rows = await self.db.execute_fetchall(SELECT_ROLES, (chat_id,))
        return [r[0] for r in rows]

    async def set_role(self, chat_id: int, user_id: int, name: str | None) -> None:
        """Play `name` in this chat (None: play no one)."""
        if name is None:
            await self._write(CLEAR_ROLE, (chat_id, user_id))
        else:
            await self._write(SET_ROLE, (chat_id, user_id, name))


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
    await db.execute(CREATE_MIGRATIONS)
    async with db.execute(SELECT_SCHEMA_VERSION) as cur:
        (current,) = await cur.fetchone()
    if current > len(MIGRATIONS):
        raise StoreError(f"{path}: database schema version {current} is newer than this bot "
                         f"(knows up to {len(MIGRATIONS)}); upgrade the bot")
    for number in range(current + 1, len(MIGRATIONS) + 1):
        await db.executescript(f"BEGIN; {MIGRATIONS[number - 1]} {RECORD_MIGRATION.replace('?', str(number))}; COMMIT;")
