"""/book: choosing the novel a chat's stories are written in, on a tiny world model and a real SQLite file."""

import asyncio

import numpy as np
import pytest

from bot import texts
from bot.engine import StoryEngine
from bot.scheduler import Scheduler
from bot.store import Store
from model import load
from tests.conftest import WORLD_CASTS


@pytest.fixture(scope="module")
def world(tiny_world_run):
    return load(tiny_world_run / "saved_model")


async def drain(opening):
    async with opening as part:
        async for _ in part.pieces():
            pass
    return part


def run_engine(model, path, body):
    """Run body(engine, store) against a fresh engine on `path`; what it returns."""
    async def go():
        store = await Store.open(path)
        scheduler = Scheduler(model)
        scheduler.start()
        try:
            return await body(StoryEngine(store, scheduler), store)
        finally:
            await scheduler.stop()
            await store.close()
    return asyncio.run(go())


def test_book_lists_sets_and_rejects_without_changing_the_setting(world, tmp_path):
    async def body(engine, store):
        shown = await engine.book(1, None)
        done = await engine.book(1, "射雕")
        bad = await engine.book(1, "红楼梦")
        kept = (await store.settings(1)).book
        back = await engine.book(1, "AUTO")
        return shown, done, bad, kept, back, (await store.settings(1)).book, await engine.book(1, "")
    shown, done, bad, kept, back, final, shown_again = run_engine(world, tmp_path / "db", body)
    assert shown == texts.book_list(list(WORLD_CASTS), "auto") and "《天龙》" in shown and "《射雕》" in shown
    assert done == texts.book_set("射雕")
    assert bad == texts.book_unknown("红楼梦", list(WORLD_CASTS)) and "没有改变" in bad
    assert kept == "射雕" and final == "auto" and back == texts.book_set(texts.BOOK_AUTO)
    assert "自动" in shown_again


def test_write_starts_in_the_picked_novel_says_so_and_a_restart_rebuilds_from_it(world, tmp_path):
    db = tmp_path / "db"

    async def first(engine, store):
        auto = await drain(engine.write(1, "郭靖对黄蓉说"))
        await engine.book(2, "天龙")
        chosen = await drain(engine.write(2, "郭靖对黄蓉说"))  # the chat's choice beats the names
        plain = await drain(engine.write(3, "他走进客栈"))  # no names: no novel, nothing said
        return auto, chosen, plain, await store.story(1), await store.story(2), await store.story(3)
    auto, chosen, plain, s1, s2, s3 = run_engine(world, db, first)
    assert auto.notice == texts.book_picked("射雕") and s1.book == "射雕"
    assert chosen.notice == "" and s2.book == "天龙"
    assert plain.notice == "" and s3.book is None

    async def after_restart(engine, store):
        seen = []
        submit = engine.scheduler.submit
        engine.scheduler.submit = lambda read, states, *a: seen.append((read, states)) or submit(read, states, *a)
        await drain(engine.continue_story(1))
        return seen
    (read, states), = run_engine(world, db, after_restart)
    assert read == s1.text[-1000:]  # the state is rebuilt by reading the story's tail ...
    np.testing.assert_array_equal(states, world.initial_state(1, "射雕"))  # ... from its novel's start


def test_a_model_without_novels_says_book_is_not_used(tiny_model_dir, tmp_path):
    async def body(engine, store):
        return await engine.book(1, None), await engine.book(1, "天龙八部"), (await store.settings(1)).book
    shown, refused, setting = run_engine(load(tiny_model_dir), tmp_path / "db", body)
    assert shown == refused == texts.NO_BOOKS and setting == "auto"
