"""The story engine on a tiny real model and a real SQLite file."""

import asyncio

import pytest

from bot import texts
from bot.engine import StoryEngine, UserError
from bot.limits import LimitConfig, Limits
from bot.scheduler import Scheduler
from bot.store import Store
from model import load


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load(tiny_model_dir)


async def make_engine(model, path, **kw):
    store = await Store.open(path)
    scheduler = Scheduler(model)
    scheduler.start()
    return StoryEngine(store, scheduler, **kw), store, scheduler


async def drain(opening):
    async with await opening as part:
        async for _ in part.pieces():
            pass
    return part


def test_one_generation_per_chat_and_quiet_repeats(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 2000)
        errors = []
        async with await engine.write(1, "乔峰") as part:
            for _ in range(3):
                try:
                    await drain(engine.continue_story(1))
                except UserError as e:
                    errors.append(e)
            async for _ in part.pieces():
                pass
        other = await drain(engine.write(2, "段誉"))  # another chat is free meanwhile and after
        await sched.stop()
        await store.close()
        return errors, other
    errors, other = asyncio.run(go())
    assert [str(e) for e in errors] == [texts.BUSY_CHAT] * 3
    assert [e.quiet for e in errors] == [False, True, True]
    assert other.text


def test_rejected_write_keeps_the_old_story(tiny, tmp_path):
    async def go():
        limits = Limits(LimitConfig(user_chars_per_hour=350))
        engine, store, sched = await make_engine(tiny, tmp_path / "db", limits=limits)
        first = await drain(engine.write(1, "阿朱"))
        with pytest.raises(UserError, match=texts.TOO_MUCH):
            await drain(engine.write(1, "新故事"))
        story = await store.story(1)
        await sched.stop()
        await store.close()
        return first, story
    first, story = asyncio.run(go())
    assert story.text == "阿朱" + first.text


def test_database_failure_reaches_the_caller_and_the_engine_goes_on(tiny, tmp_path):
    import sqlite3

    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db", prompt_limit=20000)
        async with store.db.execute("PRAGMA page_count") as cur:
            (pages,) = await cur.fetchone()
        await store.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now "full"
        with pytest.raises(sqlite3.OperationalError, match="full"):
            await drain(engine.write(1, "很长的故事" * 2000))
        shown = await engine.temperature(1, None)  # reads still work
        assert not engine.is_busy(1)  # the failed request released the chat
        await sched.stop()
        await store.close()
        return shown
    assert asyncio.run(go()) == texts.temp_shown(0.8)
