"""Choosing what happens next (bot.choices) on a tiny real model and a real SQLite file."""

import asyncio
import time

import numpy as np
import pytest

from bot import choices, roles, texts
from bot.part import UserError
from bot.store import Choice
from model import load
from tests.bot.test_engine import drain, make_engine, state_at_end


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load(tiny_model_dir)


@pytest.mark.parametrize("text, beat", [
    ("他走了。然后又回来", "他走了。"),
    ("乔峰道：“你来了？”阿朱笑道", "乔峰道：“你来了？”"),  # the closing quote goes with its sentence
    ("“我……我……”他说不下去", "“我……"),
    ("一路向北，过了雁门关，天色已晚", "一路向北，过了雁门关，"),  # no sentence end: to the last pause
    ("雁门关外", "雁门关外"),
])
def test_a_beat_ends_at_its_first_sentence_end(text, beat):
    assert choices.beat(text) == beat


async def offered(engine, store, chat=1, vote=False, played=None):
    await store.set_length(chat, 40)
    await store.set_choices(chat, True)
    for user, role in (played or {}).items():
        await store.set_role(chat, user, role)
    part = await drain(engine.write(chat, "乔峰", user_id=7, user_name="阿朱"))
    return part, await choices.offer(engine, chat, part, 7, vote)


def test_a_beat_is_shown_on_one_line_without_the_closing_quote_it_may_begin_with():
    assert choices.shown("”洪七公道：“好，\n　　你瞧瞧。”") == "洪七公道：“好， 你瞧瞧。”"
    assert choices.display("\n　　”」郭靖道：“好。”") == "郭靖道：“好。”"
    assert choices.shown("郭靖道：“好。”") == "郭靖道：“好。”"


def test_three_beats_are_written_together_in_shared_model_calls_and_end_at_a_sentence(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        part, _ = await offered(engine, store)
        calls, generate = [], sched.model.generate

        def counted(prompts, *args, **kwargs):  # the rows of each model call
            calls.append(len(prompts))
            return generate(prompts, *args, **kwargs)
        sched.model = type("Counted", (), {"generate": staticmethod(counted)})()
        options = await choices.offer(engine, 1, part, 7, False)  # offered again (replacing the first)
        stored = await store.choice(1)
        story = await store.story(1)
        await sched.stop()
        await store.close()
        return options, calls, stored, story
    options, calls, stored, story = asyncio.run(go())
    assert 1 <= len(options) <= choices.OPTIONS and len(set(options)) == len(options)
    assert all(0 < len(o) <= choices.BEAT_MAX and choices.beat(o) == o for o in options)
    assert calls[0] == choices.CANDIDATES  # the first round writes every candidate in one call
    assert len(calls) <= -(-choices.BEAT_MAX // choices.BEAT_ROUND) and calls == sorted(calls, reverse=True)
    assert stored.options == options and (stored.version, stored.at) == (story.version, len(story.text))


def test_a_chosen_beat_joins_the_story_read_exactly_and_the_choice_closes(tiny_model_dir, tmp_path):
    model = load(tiny_model_dir, runtime="float32")

    async def go():
        engine, store, sched = await make_engine(model, tmp_path / "db")
        part, options = await offered(engine, store)
        before = await store.story(1)
        last = len(options) - 1
        after = await drain(choices.choose(engine, 1, before.version, len(before.text), last, 7, "阿朱"))
        states = await state_at_end(engine, 1)
        story = await store.story(1)
        parts = await store.parts(1)
        gone = await store.choice(1)
        with pytest.raises(UserError) as again:  # the same press once more: the choice has closed
            await drain(choices.choose(engine, 1, before.version, len(before.text), 0, 7, "阿朱"))
        await sched.stop()
        await store.close()
        return options[last], before, after, states, story, parts, gone, str(again.value)
    option, before, after, states, story, parts, gone, again = asyncio.run(go())
    # The story keeps the beat as written; its header shows it without a leading line break or closing quote.
    assert story.text == before.text + option + after.text and after.header == choices.display(option)
    assert [(p.kind, p.text, p.author_name) for p in parts[-2:]] == [("choice", option, "阿朱"),
                                                                      ("bot", after.text, None)]
    _, _, whole = model.score([story.text], model.initial_state(1))  # the whole story read from its start
    np.testing.assert_allclose(states, whole, atol=1e-4)
    assert gone is None and again == texts.CHOICE_CLOSED


def test_a_group_vote_closes_on_a_majority_of_the_storys_members_or_on_time(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        await offered(engine, store, chat=-5, vote=True)  # member 7 started the story
        await drain(engine.join(-5, "阿朱笑了", user_id=8, user_name="乔峰"))  # member 8 wrote a line
        story = await store.story(-5)
        at = (story.version, len(story.text))
        await store.open_choice(-5, Choice(*at, ["甲。", "乙。", "丙。"], True, time.time()))
        first = await choices.vote(engine, -5, *at, 1, 7)
        moved = await choices.vote(engine, -5, *at, 0, 7)  # a second press moves the vote
        third = await choices.vote(engine, -5, *at, 1, 9)  # a voter is a member too: 3 members now
        decided = await choices.vote(engine, -5, *at, 1, 8)
        late = await choices.vote(engine, -5, *at, 2, 10, seconds=0)  # time is up: the leader wins
        await drain(engine.continue_story(-5))  # the story moves on: the choice is closed
        with pytest.raises(UserError) as closed:
            await choices.vote(engine, -5, *at, 0, 7)
        await sched.stop()
        await store.close()
        return first, moved, third, decided, late, str(closed.value)
    first, moved, third, decided, late, closed = asyncio.run(go())
    assert (first.counts[:2], first.members, first.decided) == ([0, 1], 2, None)
    assert (moved.counts[:2], moved.decided) == ([1, 0], None)
    assert (third.counts[:2], third.members, third.needed, third.decided) == ([1, 1], 3, 2, None)
    assert (decided.counts[:2], decided.decided) == ([1, 2], 1)
    assert late.decided == 1 and late.counts[:3] == [1, 2, 1]
    assert closed == texts.CHOICE_CLOSED


def test_no_beat_speaks_for_a_played_character(tiny, tmp_path):
    async def go():
        engine, store, sched = await make_engine(tiny, tmp_path / "db")
        found = []
        for chat in range(10, 16):
            _, options = await offered(engine, store, chat=chat, played={7: "乔峰"})
            found += options
        await sched.stop()
        await store.close()
        return found
    found = asyncio.run(go())
    assert found and all(roles.speaks_at(option, ["乔峰"]) is None for option in found)  # rule: test_roles
