"""The bot database's schema and every SQL statement, as named strings (bot.store runs them).

The schema grows only by numbered migrations (MIGRATIONS[n - 1] is migration n), each recorded
in `schema_migrations` when applied.
"""

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
    # 5: the next beats offered after a part (/choices), the votes on them in a group, and lines that wait
    # their turn while the bot writes in a group
    """
    ALTER TABLE settings ADD COLUMN choices INTEGER NOT NULL DEFAULT 0;  -- 1: offer three next beats
    ALTER TABLE parts ADD COLUMN typed TEXT;    -- a person's line as typed, where the story reads it cleaned
    CREATE TABLE choices (
        chat_id INTEGER PRIMARY KEY,            -- one open choice per chat: a newer offer replaces it
        version INTEGER NOT NULL,               -- the story version and length it goes on from: once
        at      INTEGER NOT NULL,               --   the story has moved on, it is closed
        options TEXT    NOT NULL,               -- JSON list of the beats, ① first
        vote    INTEGER NOT NULL,               -- 1: a group votes on it; 0: a press decides
        opened  REAL    NOT NULL,               -- when it was offered (Unix seconds): a vote closes CHOICE_SECONDS on
        thread_id INTEGER                       -- the forum topic it was offered in, if any
    );
    CREATE TABLE votes (
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        option  INTEGER NOT NULL,               -- 0: ①
        PRIMARY KEY (chat_id, user_id)
    );
    CREATE TABLE waiting (
        chat_id     INTEGER NOT NULL,
        seq         INTEGER NOT NULL,           -- arrival order
        kind        TEXT    NOT NULL,           -- text, say, do
        text        TEXT    NOT NULL,           -- the line as it joins the story (a role's form applied)
        typed       TEXT,                       -- as typed, where that differs
        author_id   INTEGER,
        author_name TEXT,
        message_id  INTEGER,                    -- the message it came in (the bot's reply quotes it)
        thread_id   INTEGER,                    -- its forum topic, if any
        PRIMARY KEY (chat_id, seq)
    );
    """,
    # 6: a chat that wants each person's line told its 金庸味 under the part that follows it (/score on)
    """
    ALTER TABLE settings ADD COLUMN flavour INTEGER NOT NULL DEFAULT 0;  -- 1: score people's lines
    """,
]

CREATE_MIGRATIONS = """
    CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"""
SELECT_SCHEMA_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
RECORD_MIGRATION = "INSERT INTO schema_migrations (version, applied_at) VALUES (?, datetime('now'))"
SELECT_SETTINGS = "SELECT temperature, length, book, choices, flavour FROM settings WHERE chat_id = ?"
UPSERT_TEMPERATURE = """
    INSERT INTO settings (chat_id, temperature, length) VALUES (?, ?, ?)
    ON CONFLICT(chat_id) DO UPDATE SET temperature = excluded.temperature"""
UPSERT_LENGTH = """
    INSERT INTO settings (chat_id, temperature, length) VALUES (?, ?, ?)
    ON CONFLICT(chat_id) DO UPDATE SET length = excluded.length"""
UPSERT_BOOK = """
    INSERT INTO settings (chat_id, temperature, length, book) VALUES (?, ?, ?, ?)
    ON CONFLICT(chat_id) DO UPDATE SET book = excluded.book"""
UPSERT_CHOICES = """
    INSERT INTO settings (chat_id, temperature, length, choices) VALUES (?, ?, ?, ?)
    ON CONFLICT(chat_id) DO UPDATE SET choices = excluded.choices"""
UPSERT_FLAVOUR = """
    INSERT INTO settings (chat_id, temperature, length, flavour) VALUES (?, ?, ?, ?)
    ON CONFLICT(chat_id) DO UPDATE SET flavour = excluded.flavour"""
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
    INSERT OR REPLACE INTO settings (chat_id, temperature, length, book, choices, flavour)
    SELECT ?, temperature, length, book, choices, flavour FROM settings WHERE chat_id = ?"""
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
    INSERT INTO parts (chat_id, seq, start, text, kind, author_id, author_name, typed)
    VALUES (:chat, (SELECT COALESCE(MAX(seq), 0) + 1 FROM parts WHERE chat_id = :chat), :start, :text, :kind,
            :author_id, :author_name, :typed)"""
# 重写: the newest part (the bot's, just regenerated) is replaced
DROP_NEWEST_PART = """
    DELETE FROM parts WHERE chat_id = ? AND seq = (SELECT MAX(seq) FROM parts WHERE chat_id = ? AND undone = 0)"""
SELECT_PARTS = """
    SELECT seq, start, text, kind, author_id, author_name, undone, typed FROM parts WHERE chat_id = ? ORDER BY seq"""
SET_UNDONE = "UPDATE parts SET undone = ? WHERE chat_id = ? AND seq = ?"

# A choice: one per chat; any part saved (or a reset) closes it, in the transaction that saves the part.
OPEN_CHOICE = """
    INSERT OR REPLACE INTO choices (chat_id, version, at, options, vote, opened, thread_id)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""
SELECT_CHOICE = "SELECT version, at, options, vote, opened, thread_id FROM choices WHERE chat_id = ?"
SELECT_VOTES = "SELECT user_id, option FROM votes WHERE chat_id = ? ORDER BY user_id"
CAST_VOTE = """
    INSERT INTO votes (chat_id, user_id, option) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM choices WHERE chat_id = ?)
    ON CONFLICT DO UPDATE SET option = excluded.option"""
DELETE_CHOICE = "DELETE FROM choices WHERE chat_id = ?"
DELETE_VOTES = "DELETE FROM votes WHERE chat_id = ?"
# Group choices past their time with a vote cast: the bot decides them (also those open at a restart).
DUE_CHOICES = """
    SELECT chat_id FROM choices WHERE vote = 1 AND opened <= ?
    AND EXISTS (SELECT 1 FROM votes WHERE votes.chat_id = choices.chat_id) ORDER BY opened"""
MOVE_CHOICE = "UPDATE OR REPLACE choices SET chat_id = ? WHERE chat_id = ?"
MOVE_VOTES = "UPDATE OR REPLACE votes SET chat_id = ? WHERE chat_id = ?"
# A line waits its turn only while fewer than :most wait in the chat.
ADD_WAITING = """
    INSERT INTO waiting (chat_id, seq, kind, text, author_id, author_name, message_id, thread_id, typed)
    SELECT :chat, (SELECT COALESCE(MAX(seq), 0) + 1 FROM waiting WHERE chat_id = :chat), :kind, :text, :author_id,
           :author_name, :message_id, :thread_id, :typed
    WHERE (SELECT COUNT(*) FROM waiting WHERE chat_id = :chat) < :most
    RETURNING seq"""
SELECT_WAITING = """
    SELECT seq, kind, text, author_id, author_name, message_id, thread_id, typed FROM waiting WHERE chat_id = ?
    ORDER BY seq"""
DELETE_WAITING = "DELETE FROM waiting WHERE chat_id = ? AND seq <= ?"  # joined: those up to the last one read
CLEAR_WAITING = "DELETE FROM waiting WHERE chat_id = ?"
CHATS_WAITING = "SELECT DISTINCT chat_id FROM waiting ORDER BY chat_id"
MOVE_WAITING = "UPDATE OR REPLACE waiting SET chat_id = ? WHERE chat_id = ?"
