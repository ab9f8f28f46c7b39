"""The story engine on a tiny real model and a real SQLite file."""

import asyncio

import numpy as np
import pytest

from bot import texts
from bot.engine import StoryEngine
from bot.limits import LimitConfig, Limits
from bot.part import UserError
from bot.scheduler import Scheduler
from bot.sentences import SLACK
from bot.store import Store
from model import load
from tests.bot.harness import a_part_of, by_part, joined


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load(tiny_model_dir)


async def make_engine(model, path, **kw):
    store = await Store.open(path)
    scheduler = Scheduler(model)
    scheduler.start()
    return StoryEngine(store, scheduler, **kw), store, scheduler


async def state_at_end(engine, chat_id: int):
    """[S, 1, H]: the chat's state at its story's end, as the next part will start from it (a state kept at
    or before the end, with the characters past it read)."""
    read, states, _ = engine.resume_point(engine.session(chat_id), await engine.store.story(chat_id))
    return engine.model.score([read], states)[2] if read else states


async def drain(opening):
    async with opening as part:
        async for _ in part.pieces():
            pass
    return part


def test_one_generation_per_chat_and_quiet_repeats(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 2000)
        errors = []
        async with engine.write(1, "乔峰") as part:
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
    assert asyncio.run(go()) == texts.TEMP_SHOWN.format(value=0.8)


def test_a_write_refused_by_a_full_scheduler_keeps_the_old_story(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        first = await drain(engine.write(1, "阿朱"))
        sched.config.max_jobs = 0  # every generation slot taken
        with pytest.raises(UserError, match=texts.BUSY_GLOBAL):
            await drain(engine.write(1, "新故事"))
        story = await store.story(1)
        sched.config.max_jobs = 64
        more = await drain(engine.continue_story(1))  # the old story goes on from its state
        await sched.stop()
        await store.close()
        return first, story, more
    first, story, more = asyncio.run(go())
    assert story.text == "阿朱" + first.text and more.text


def test_rewrite_after_a_refused_continue_starts_from_the_newest_part(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        first = await drain(engine.write(1, "乔峰"))
        await drain(engine.continue_story(1))
        sched.config.max_jobs = 0
        with pytest.raises(UserError, match=texts.BUSY_GLOBAL):
            await drain(engine.continue_story(1))
        sched.config.max_jobs = 64
        read, states = engine.sessions[1].before_last  # where 重写 of the newest part starts
        story = await store.story(1)
        again = await drain(engine.rewrite(1, story.version, story.last_part_start))
        await sched.stop()
        await store.close()
        return first, read, states, story, again
    first, read, states, story, again = asyncio.run(go())
    assert story.last_part_start == len("乔峰" + first.text) == again.start
    # The state before the second part: kept at a round end of the first (which stopped at a sentence end),
    # and the characters of it past that end; read, they give the state after the first part exactly.
    assert ("乔峰" + first.text).endswith(read)
    _, _, before_second = tiny.score([read], states)
    _, _, whole = tiny.score(["乔峰" + first.text], tiny.initial_state(1))
    np.testing.assert_allclose(before_second, whole, atol=1e-4)


def test_reset_while_writing_is_told_to_wait_and_never_queues(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 300)
        async with engine.write(1, "乔峰") as part:
            answers = [await engine.reset(1) for _ in range(20)]  # each returns at once
            async for _ in part.pieces():
                pass
        story = await store.story(1)
        done = await engine.reset(1)
        await sched.stop()
        await store.close()
        return answers, story, part, done
    answers, story, part, done = asyncio.run(go())
    assert answers == [texts.BUSY_CHAT] + [None] * 19  # told once, then quiet
    assert story.text == "乔峰" + part.text and done == texts.RESET_DONE


def test_a_part_whose_story_was_replaced_meanwhile_is_not_saved(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.start_story(1, "旧的故事")  # version 1, which the new story would replace
        with pytest.raises(UserError, match=texts.STORY_CHANGED):
            async with engine.write(1, "乔峰") as part:
                await store.reset_story(1)  # as another process sharing the database would (version 2)
                async for _ in part.pieces():
                    pass
        story = await store.story(1)
        await sched.stop()
        await store.close()
        return story
    story = asyncio.run(go())
    assert story.text == "" and story.version == 2


def test_a_story_stops_growing_at_its_cap(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db", story_limit=200)
        await store.set_length(1, 60)
        first = await drain(engine.write(1, "乔峰"))
        refused = None
        for _ in range(10):  # parts of 60 (or up to SLACK more, to a sentence end) until the cap refuses one
            try:
                await drain(engine.continue_story(1))
            except UserError as e:
                refused = str(e)
                break
        story = await store.story(1)
        await sched.stop()
        await store.close()
        return first, story, refused
    first, story, refused = asyncio.run(go())
    assert "上限" in refused and story.text.startswith("乔峰" + first.text)
    assert 200 - 60 < len(story.text) <= 200 + SLACK  # refused once one more part of 60 would pass it


def test_a_limit_everyone_shares_is_not_blamed_on_the_user():
    from bot.limits import EVERYONE, USER

    now = [0.0]
    limits = Limits(LimitConfig(user_requests_per_minute=3, global_requests_per_minute=5), clock=lambda: now[0])
    assert [limits.request(1) for _ in range(4)] == [None, None, None, USER]  # one user too fast
    assert [limits.request(2) for _ in range(3)] == [None, None, EVERYONE]  # everyone's minute is used up
    now[0] = 61.0
    assert limits.request(2) is None


def test_a_write_refused_by_the_global_hourly_budget_says_so(tiny, tmp_path):
    async def go():
        limits = Limits(LimitConfig(global_chars_per_hour=400))
        engine, store, sched = await make_engine(tiny, tmp_path / "db", limits=limits)
        await drain(engine.write(2, "阿朱"))  # 300 of everyone's 400
        with pytest.raises(UserError) as refused:
            await drain(engine.write(1, "乔峰"))
        await sched.stop()
        await store.close()
        return str(refused.value)
    assert asyncio.run(go()) == texts.BUSY_GLOBAL


def test_states_in_memory_are_bounded_and_a_forgotten_chat_still_continues(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db", max_resident_chats=3)
        for chat in range(1, 6):
            await store.set_length(chat, 20)
            await drain(engine.write(chat, "乔峰"))
        kept = list(engine.sessions)
        part = await drain(engine.continue_story(1))  # chat 1 was forgotten: it reads its story's tail again
        story = await store.story(1)
        after = list(engine.sessions)
        await sched.stop()
        await store.close()
        return kept, after, part, story
    kept, after, part, story = asyncio.run(go())
    assert kept == [3, 4, 5]  # the three used last
    assert after == [4, 5, 1]
    assert a_part_of(part.text, 20) and story.text.endswith(part.text)
    assert a_part_of(story.text[len("乔峰"):-len(part.text)], 20)


def test_refused_requests_leave_nothing_behind(tiny, tmp_path):
    async def go():
        limits = Limits(LimitConfig(user_chars_per_hour=500))
        engine, store, sched = await make_engine(tiny, tmp_path / "db", limits=limits)
        await store.set_length(9, 2000)
        refused = []
        for opening in (engine.continue_story(7),  # no story yet
                        engine.write(8, ""),  # no prompt
                        engine.write(9, "乔峰")):  # 2,000 characters: over this user's hourly 500
            try:
                await drain(opening)
            except UserError as e:
                refused.append(str(e))
        sessions = dict(engine.sessions)
        await sched.stop()
        await store.close()
        return refused, sessions
    refused, sessions = asyncio.run(go())
    assert refused == [texts.NO_STORY, texts.WRITE_USAGE, texts.TOO_MUCH]
    assert sessions == {}  # no state kept in memory for any of them


def test_quotas_forget_users_whose_window_emptied_without_scanning_them_all():
    """An hour of many distinct users: each is forgotten once its window empties (the oldest first)."""
    from bot.limits import USER, Quota

    quota = Quota(seconds=60, per_user=10, everyone=10**9)
    for user in range(5000):  # all within one window: every one is still counted
        assert quota.take(float(user) / 100, user, 3) is None
    assert len(quota.users) == 5000
    assert quota.take(49.0, 0, 8) == USER  # user 0 still has 3 of 10 in its window
    assert quota.take(200.0, 99_999, 1) is None  # a minute later than everyone: only the newcomer is left
    assert list(quota.users) == [99_999]
    assert quota.take(200.0, 7, 11) == USER and 7 not in quota.users  # one request over the limit alone


def test_a_part_that_will_wait_is_told_its_place_in_the_queue(tiny, tmp_path, monkeypatch):
    import bot.part

    monkeypatch.setattr(bot.part, "QUEUE_NOTICE_SECONDS", 0.0)  # any wait counts (rounds are fast here)

    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        sched.config.max_batch = 1
        sched.round_seconds = 1.0  # as if rounds were slow
        parts = await asyncio.gather(*(drain(engine.write(chat, "乔峰")) for chat in range(1, 5)))
        await sched.stop()
        await store.close()
        return [p.notice for p in parts]
    notices = asyncio.run(go())
    assert any("排队中，前面还有" in n for n in notices)
    assert not all("排队中" in n for n in notices)  # the first in line is not told to wait


def test_a_stored_story_in_a_novel_this_model_lacks_goes_on_with_none_and_says_so_once(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 50)
        # Written on another model (another MODEL_DIR, a fine-tune) in a novel this one does not know.
        await store.start_story(1, "乔峰带阿朱", "某部别的小说")
        first = await drain(engine.continue_story(1))
        rewritten = await drain(engine.rewrite(1, first.version, first.start))
        engine.sessions.clear()  # a restart: the state is rebuilt again, and nothing more is said
        again = await drain(engine.continue_story(1))
        story = await store.story(1)
        await sched.stop()
        await store.close()
        return first, rewritten, again, story
    first, rewritten, again, story = asyncio.run(go())
    assert first.notice == texts.novel_gone("某部别的小说")
    assert rewritten.notice == ""  # told once for the story
    assert a_part_of(first.text, 50) and a_part_of(rewritten.text, 50) and a_part_of(again.text, 50)
    assert story.text == "乔峰带阿朱" + rewritten.text + again.text


def test_a_write_that_fails_midway_keeps_the_old_story(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 200)
        old = await drain(engine.write(1, "段誉"))
        with pytest.raises(RuntimeError):
            async with engine.write(1, "新的开头") as part:
                async for _ in part.pieces():
                    raise RuntimeError("the Bot API failed mid-part")
        kept = await store.story(1)
        more = await drain(engine.continue_story(1))  # the old story goes on from its own state
        story = await store.story(1)
        await sched.stop()
        await store.close()
        return old, kept, more, story
    old, kept, more, story = asyncio.run(go())
    assert kept.text == "段誉" + old.text and kept.version == old.version
    assert story.text == "段誉" + old.text + more.text


@pytest.mark.parametrize("runtime", ["int8", "float32"])
def test_a_persons_line_is_read_into_the_state_exactly(tiny_model_dir, tmp_path, runtime):
    model = load(tiny_model_dir, runtime=runtime)

    async def go():
        engine, store, sched = await make_engine(model, tmp_path / "db")
        await store.set_length(1, 40)
        await drain(engine.write(1, "乔峰"))
        joined = await drain(engine.join(1, "段誉笑道：“好。”"))
        story = await store.story(1)
        # Where the next part goes on from: the state at a round end of the bot's part (which stopped at a
        # sentence end), and the few characters past it still to read (or the exact end state, none to read).
        read, states, _ = engine.resume_point(engine.sessions[1], story)
        await sched.stop()
        await store.close()
        return joined, read, states, story
    joined, read, states, story = asyncio.run(go())
    assert story.text.endswith("\n\u3000\u3000段誉笑道：“好。”" + joined.text) and a_part_of(joined.text, 40)
    assert joined.start == len(story.text) - len(joined.text)  # 重写 regenerates the bot's part, not the line
    assert len(read) < len(joined.text) and story.text.endswith(read)
    _, _, at_end = model.score([read], states)
    _, _, whole = model.score([story.text], model.initial_state(1))  # the whole story read from its start
    np.testing.assert_allclose(at_end, whole, atol=1e-4)


def test_lines_that_cannot_join_are_refused_and_change_nothing(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 50)
        first = await drain(engine.join(1, "乔峰带阿朱"))  # no story yet: the line starts one
        before = await store.story(1)
        refusals = []
        for line in ("", "   ", "😀😀😀", "hello world"):
            with pytest.raises(UserError) as e:
                await drain(engine.join(1, line))
            refusals.append(str(e.value))
        after = await store.story(1)
        await sched.stop()
        await store.close()
        return first, before, refusals, after
    first, before, refusals, after = asyncio.run(go())
    assert before.text == "乔峰带阿朱" + first.text
    assert refusals == [texts.ADD_USAGE] * 2 + [texts.ADD_UNREADABLE] * 2
    assert after == before


def test_undo_and_redo_go_back_exactly_and_keep_who_wrote_what(tiny, tmp_path):
    from bot import history

    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 30)
        first = await drain(engine.write(1, "乔峰", user_id=7, user_name="阿朱"))
        mine = await drain(engine.join(1, "乔峰拔刀", user_id=7, user_name="阿朱"))
        said = [await history.undo(engine, 1)]  # takes back the bot's part after the line
        after_undo = await store.story(1)
        again = await drain(engine.continue_story(1))  # from exactly the state after the line
        states = await state_at_end(engine, 1)
        said.append(await history.redo(engine, 1))  # a new part came since: nothing to redo
        who = await history.story_with_authors(engine, 1)
        for _ in range(3):
            said.append(await history.undo(engine, 1))  # again's part, the line, the first part
        said.append(await history.redo(engine, 1))  # the first part back
        middle = await store.story(1)
        for _ in range(2):
            said.append(await history.undo(engine, 1))  # the first part, then the prompt
        said.append(await history.undo(engine, 1))
        empty = await store.story(1)
        await sched.stop()
        await store.close()
        return first, mine, after_undo, again, states, said, who, middle, empty
    first, mine, after_undo, again, states, said, who, middle, empty = asyncio.run(go())
    line = joined(first.text, "乔峰拔刀")[len(first.text):]  # as the line was joined after the first part
    assert after_undo.text == "乔峰" + first.text + line
    assert said[0] == texts.undone(texts.AUTHOR_BOT, len(mine.text)) and said[1] == texts.NOTHING_TO_REDO
    _, _, whole = tiny.score(["乔峰" + first.text + line + again.text], tiny.initial_state(1))
    np.testing.assert_allclose(states, whole, atol=1e-4)
    assert by_part(who)[0] == "【1】阿朱（开头）\n乔峰"
    assert by_part(who)[2] == "【3】阿朱（自己写的一句）\n乔峰拔刀"
    assert "【4】金庸体机器人（续写）" in who and "【5】" not in who
    assert said[2:5] == [texts.undone(texts.AUTHOR_BOT, len(again.text)), texts.undone("阿朱", len(line)),
                         texts.undone(texts.AUTHOR_BOT, len(first.text))]
    assert said[5] == texts.redone(texts.AUTHOR_BOT, len(first.text))
    assert middle.text == "乔峰" + first.text and middle.last_part_start == 2  # 重写 works on the bot's part again
    assert said[-1] == texts.NOTHING_TO_UNDO and empty.text == ""
    assert mine.text


def test_undo_goes_back_twenty_parts_and_survives_a_restart(tiny, tmp_path):
    from bot import history

    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 50)
        await drain(engine.write(1, "段誉"))
        texts_after = []
        for _ in range(21):
            await drain(engine.continue_story(1))
            texts_after.append((await store.story(1)).text)
        engine.sessions.clear()  # a restart
        said = [await history.undo(engine, 1) for _ in range(20)]
        back = await store.story(1)
        more = await drain(engine.continue_story(1))
        await sched.stop()
        await store.close()
        return texts_after, said, back, more
    texts_after, said, back, more = asyncio.run(go())
    sizes = [len(b) - len(a) for a, b in zip(texts_after, texts_after[1:])]  # each part's length
    assert said == [texts.undone(texts.AUTHOR_BOT, n) for n in reversed(sizes)]
    assert back.text == texts_after[0] and a_part_of(more.text, 50)


def test_a_played_character_is_never_spoken_for_and_say_and_do_join_in_their_form(tiny, tmp_path):
    from bot.roles import speaks_at

    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 80)
        said = [await engine.role(1, 7, raw) for raw in ("", "段誉！", "段誉段誉段誉段誉段", "段誉", "")]
        await drain(engine.write(1, "段誉", user_id=7))
        parts = [await drain(engine.continue_story(1, user_id=7)) for _ in range(30)]
        end_states = engine.sessions[1].states, engine.sessions[1].checkpoints.copy()
        spoke = await drain(engine.join(1, "阿朱，出掌", user_id=7, kind="say"))  # (words the tiny model knows)
        states = await state_at_end(engine, 1)
        story = await store.story(1)
        with pytest.raises(UserError, match=texts.ROLE_NEEDED):
            await drain(engine.join(1, "阿朱", user_id=8, kind="say"))  # user 8 plays no one
        did = await drain(engine.join(1, "拔剑", user_id=7, kind="do"))
        kinds = [p.kind for p in await store.parts(1)][-4:]
        off = await engine.role(1, 7, "off")
        await sched.stop()
        await store.close()
        return said, parts, end_states, spoke, states, story, did, kinds, off
    said, parts, end_states, spoke, states, story, did, kinds, off = asyncio.run(go())
    assert said[0] == texts.ROLE_NONE and said[1].startswith("角色名只能是") and said[2].startswith("角色名最多")
    assert said[3] == texts.role_set("段誉") and said[4] == texts.role_shown("段誉")
    assert all(speaks_at(p.text, ["段誉"]) is None for p in parts), "the bot never writes 段誉's speech"
    assert "\n\u3000\u3000段誉道：“阿朱，出掌。”" + spoke.text in story.text
    _, _, whole = tiny.score([story.text], tiny.initial_state(1))
    np.testing.assert_allclose(states, whole, atol=1e-4)  # exact after cut parts too
    assert did.start > 0 and kinds == ["say", "bot", "do", "bot"] and off == texts.ROLE_OFF


class ScriptedModel:
    """Writes a script, whatever it read (the text a real model might write); each row's state counts
    the characters read and written, so a test can tell what was read where."""

    num_states, units = 1, 2
    books: list = []

    def __init__(self, script: str):
        self.script, self.reads = script, []

    def chars(self):
        return ["[UNK]"] + sorted(set(self.script + "段誉乔峰拔剑阿朱"))

    def initial_state(self, batch=1, book=None):
        return np.zeros((1, batch, 2), np.float32)

    def pick_book(self, prompt):
        return None

    def generate(self, prompts, states, length, temperature):
        self.reads.append(list(prompts))
        states = states.copy()
        states[0, :, 0] += [len(p) + length for p in prompts]
        return [(self.script * (length // len(self.script) + 1))[:length] for _ in prompts], states


def test_a_part_stops_before_a_played_character_speaks_and_the_next_reads_what_was_kept(tmp_path):
    model = ScriptedModel("萧峰拔剑。段誉道：“乔峰！”")  # 段誉 speaks within the first chunk (12 characters)

    async def go():
        engine, store, sched = await make_engine(model, tmp_path / "db")
        await store.set_length(1, 60)
        await engine.role(1, 7, "段誉")
        opening = await drain(engine.write(1, "乔峰", user_id=7))
        model.reads.clear()
        more = await drain(engine.join(1, "阿朱拔剑", user_id=7))
        story = await store.story(1)
        await sched.stop()
        await store.close()
        return opening, more, story, model.reads
    opening, more, story, reads = asyncio.run(go())
    assert opening.text == "萧峰拔剑。" and opening.turn == "段誉"  # stopped where 段誉 would speak
    assert more.text == "萧峰拔剑。" and more.turn == "段誉"
    # The cut part's state was not kept: the next part read the story again from its start, then the line.
    assert ["乔峰萧峰拔剑。\n\u3000\u3000阿朱拔剑"] in reads
    assert story.text == "乔峰萧峰拔剑。\n\u3000\u3000阿朱拔剑萧峰拔剑。"


def test_a_typed_line_joins_cleaned_as_the_corpus_and_who_keeps_it_as_typed(tiny, tmp_path):
    from bot import history

    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 20)
        await drain(engine.write(1, "乔峰"))
        await drain(engine.join(1, '段譽說:"走吧..."', user_id=5, user_name="阿朱"))
        story = await store.story(1)
        who = await history.story_with_authors(engine, 1)
        await sched.stop()
        await store.close()
        return story, who
    story, who = asyncio.run(go())
    assert "\n\u3000\u3000段誉说：“走吧……”" in story.text and '"' not in story.text
    assert "【3】阿朱（自己写的一句）\n段誉说：“走吧……”\n（原文：段譽說:\"走吧...\"）" in who


def test_twenty_two_steps_back_after_a_restart_each_to_exactly_the_text_before_it(tiny, tmp_path):
    """/undo goes at least 20 steps back, also after a restart; each step leaves the story as it read
    before that part, and the next part goes on from exactly that state."""
    from bot import history

    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 50)
        await drain(engine.write(1, "乔峰", user_id=7, user_name="阿朱"))  # the prompt and the bot's part
        for i in range(11):  # a person's line and the bot's part after it, eleven times: 24 parts in all
            await drain(engine.join(1, "乔峰拔刀" if i % 2 else "阿朱叹了口气", user_id=7, user_name="阿朱"))
        story = await store.story(1)
        parts = [p for p in await store.parts(1) if not p.undone]
        await sched.stop()
        await store.close()
        engine, store, sched = await make_engine(tiny, tmp_path / "db")  # a restart: nothing kept in memory
        said, texts_before = [], [story.text[:p.start] for p in reversed(parts)]
        after = []
        for _ in range(22):
            said.append(await history.undo(engine, 1))
            after.append((await store.story(1)).text)
        again = await drain(engine.continue_story(1))
        states = await state_at_end(engine, 1)
        redo = await history.redo(engine, 1)
        await sched.stop()
        await store.close()
        return parts, said, after, texts_before, again, states, redo

    parts, said, after, texts_before, again, states, redo = asyncio.run(go())
    assert len(parts) == 24
    assert after == texts_before[:22]  # each undo took exactly the newest part
    assert all(s != texts.NOTHING_TO_UNDO for s in said)
    _, _, whole = tiny.score([after[-1] + again.text], tiny.initial_state(1))
    np.testing.assert_allclose(states, whole, atol=1e-4)  # went on from exactly where the text ends
    assert redo == texts.NOTHING_TO_REDO  # a new part came since


class AlwaysSpeaksFor:
    """The tiny model, but every character it writes is 黄蓉道：“走罢。” over and over (states as the model's)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, prompts, states, length, **kw):
        texts, states = self.model.generate(prompts, states, length=length, **kw)
        self.calls += length > 0
        return [("黄蓉道：“走罢。”" * (1 + length // 8))[:length] for _ in texts], states


def test_a_part_that_only_ever_speaks_for_her_is_not_stored_after_her_line(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await store.set_length(1, 30)
        await drain(engine.write(1, "乔峰", user_id=7, user_name="阿朱"))
        assert await engine.role(1, 7, "黄蓉") == texts.role_set("黄蓉")
        sched.model = AlwaysSpeaksFor(tiny)
        before = await store.story(1)
        part = await drain(engine.join(1, "黄蓉点了点头", user_id=7, user_name="阿朱", kind="do"))
        story, parts = await store.story(1), [p for p in await store.parts(1) if not p.undone]
        calls = sched.model.calls
        await sched.stop()
        await store.close()
        return before, part, story, parts, calls
    before, part, story, parts, calls = asyncio.run(go())
    # A first try and three more (the scheduler may run a round on before a job's cancel reaches it).
    assert part.turn == "黄蓉" and part.text == "" and part.retries == 3 and calls >= 4
    assert story.text.startswith(before.text) and story.text.endswith("黄蓉点了点头。")
    assert [p.kind for p in parts][-2:] == ["bot", "do"]  # her action is the newest part: no empty one of the bot's
