"""The settings/story store: migrations, persistence, versions, file permissions."""

import asyncio
import sqlite3

import pytest

from bot.schema import MIGRATIONS
from bot.store import DEFAULT_LENGTH, DEFAULT_TEMPERATURE, LOCK_WAIT, Store, StoreError


def test_settings_and_stories_persist_across_reopen(tmp_path):
    db = tmp_path / "sub" / "bot.sqlite3"

    async def first():
        s = await Store.open(db)
        assert (await s.settings(1)).temperature == DEFAULT_TEMPERATURE
        await s.set_temperature(1, 0.6)
        await s.set_length(1, 800)
        v = await s.start_story(1, "乔峰")
        await s.save_story(1, v, "乔峰带阿朱", 2)
        await s.close()
        return v

    async def second():
        s = await Store.open(db)
        settings, story = await s.settings(1), await s.story(1)
        v2 = await s.start_story(1, "段誉")
        await s.reset_story(1)
        after = await s.story(1)
        await s.close()
        return settings, story, v2, after

    v = asyncio.run(first())
    settings, story, v2, after = asyncio.run(second())
    assert (settings.temperature, settings.length) == (0.6, 800)
    assert (story.version, story.text, story.last_part_start) == (v, "乔峰带阿朱", 2)
    assert v2 == v + 1 and after.version == v2 + 1 and after.text == ""
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == list(
            range(1, len(MIGRATIONS) + 1))


def test_saving_an_old_version_changes_nothing(tmp_path):
    async def go():
        s = await Store.open(tmp_path / "db")
        v = await s.start_story(5, "旧")
        await s.start_story(5, "新")
        await s.save_story(5, v, "旧的故事", 1)  # a part finishing after a new /write
        story = await s.story(5)
        await s.close()
        return story
    assert asyncio.run(go()).text == "新"


def test_default_length_and_quotes_in_text(tmp_path):
    async def go():
        s = await Store.open(tmp_path / "db")
        await s.set_temperature(9, 1.2)
        v = await s.start_story(9, "'); DROP TABLE settings; --")
        story, settings = await s.story(9), await s.settings(9)
        await s.close()
        return v, story, settings
    v, story, settings = asyncio.run(go())
    assert story.text == "'); DROP TABLE settings; --" and settings.length == DEFAULT_LENGTH


def test_unusable_paths_are_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open database"):
        asyncio.run(Store.open(tmp_path / "file" / "db.sqlite3"))
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="garbage.sqlite3"):
        asyncio.run(Store.open(garbage))


def test_a_database_from_before_novels_migrates_keeping_everything(tmp_path):
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:  # what the bot of schema 1 left behind
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO schema_migrations VALUES (1, datetime('now'))")
        conn.execute("INSERT INTO settings VALUES (7, 1.1, 500)")
        conn.execute("INSERT INTO stories VALUES (7, 3, '乔峰带阿朱', 2)")

    async def go():
        s = await Store.open(db)
        before = await s.settings(7), await s.story(7)
        await s.set_book(7, "天龙八部")
        v = await s.start_story(7, "段誉", "天龙八部")
        after = await s.settings(7), await s.story(7)
        await s.close()
        return before, after, v
    (settings, story), (settings2, story2), v = asyncio.run(go())
    assert (settings.temperature, settings.length, settings.book) == (1.1, 500, "auto")
    assert (story.version, story.text, story.book) == (3, "乔峰带阿朱", None)
    assert settings2.book == "天龙八部" and settings2.temperature == 1.1
    assert (story2.version, story2.text, story2.book) == (v, "段誉", "天龙八部") and v == 4


def test_moving_a_chat_takes_settings_and_story_and_is_idempotent(tmp_path):
    async def go():
        store = await Store.open(tmp_path / "db")
        await store.set_temperature(-5, 0.6)
        version = await store.start_story(-5, "乔峰", "天龙八部")
        await store.save_story(-5, version, "乔峰来了", 2)
        await store.move_chat(-5, -1005)
        await store.move_chat(-5, -1005)  # the second service message finds nothing left to move
        moved = (await store.settings(-1005), await store.story(-1005), await store.story(-5))
        await store.close()
        return moved
    settings, story, old = asyncio.run(go())
    assert settings.temperature == 0.6 and story.text == "乔峰来了" and story.book == "天龙八部"
    assert old is None


def test_a_second_process_on_the_same_database_is_refused(tmp_path):
    async def go():
        first = await Store.open(tmp_path / "db")
        with pytest.raises(StoreError, match="another bot process is using this database"):
            await Store.open(tmp_path / "db")
        await first.close()
        again = await Store.open(tmp_path / "db")  # free once the first has closed
        await again.close()
    asyncio.run(go())


def test_a_database_locked_by_another_program_fails_fast_as_busy(tmp_path):
    import time

    from bot import texts
    from bot.engine import is_locked, report_failure

    async def go():
        store = await Store.open(tmp_path / "db")
        await store.set_temperature(1, 0.5)
        other = sqlite3.connect(tmp_path / "db")
        other.execute("BEGIN EXCLUSIVE")  # e.g. someone's sqlite3 shell in a transaction
        t0 = time.monotonic()
        with pytest.raises(sqlite3.OperationalError) as failed:
            await store.set_temperature(1, 0.9)
        waited = time.monotonic() - t0
        other.rollback()
        other.close()
        kept = (await store.settings(1)).temperature
        (busy_ms,), = await store.db.execute_fetchall("PRAGMA busy_timeout")
        await store.close()
        return failed.value, waited, kept, busy_ms
    error, waited, kept, busy_ms = asyncio.run(go())
    assert is_locked(error) and report_failure(error, "db") == texts.STORAGE_BUSY
    assert busy_ms == LOCK_WAIT * 1000 and waited >= LOCK_WAIT * 0.9  # it waited LOCK_WAIT (0.5 s), then gave up
    assert kept == 0.5


def test_the_database_folder_is_private_and_loose_files_are_tightened(tmp_path):
    import os
    import stat

    loose = tmp_path / "old" / "db"
    loose.parent.mkdir()
    loose.touch(mode=0o666)
    loose.chmod(0o666)  # made under umask 000, as in many containers
    previous = os.umask(0)
    try:
        async def go():
            for path in (tmp_path / "new" / "data" / "db", loose):
                await (await Store.open(path)).close()
        asyncio.run(go())
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new" / "data").stat().st_mode) == 0o700
    for f in (tmp_path / "new" / "data" / "db", loose, loose.with_name("db.lock")):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_a_database_from_before_parts_migrates_each_story_into_one_earlier_part(tmp_path):
    from bot.store import StoredPart

    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:  # what the bot of schema 2 left behind
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for number in (1, 2):
            conn.executescript(MIGRATIONS[number - 1])
            conn.execute("INSERT INTO schema_migrations VALUES (?, datetime('now'))", (number,))
        conn.execute("INSERT INTO stories VALUES (7, 3, '乔峰带阿朱', 2, '天龙八部')")
        conn.execute("INSERT INTO stories VALUES (8, 2, '', 0, NULL)")  # reset: no part

    async def go():
        s = await Store.open(db)
        found = await s.parts(7), await s.parts(8), await s.story(7)
        await s.close()
        return found
    parts7, parts8, story = asyncio.run(go())
    assert parts7 == [StoredPart(1, 0, "乔峰带阿朱", "earlier")] and parts8 == []
    assert (story.version, story.text, story.book) == (3, "乔峰带阿朱", "天龙八部")
