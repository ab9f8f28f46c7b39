"""The cross-chat scheduler, on a fake model: batching, joining, fairness, bounds, failures."""

import asyncio

import numpy as np
import pytest

from bot.scheduler import Busy, Scheduler, SchedulerConfig


class FakeModel:
    """Each row's state counts the characters it has read or written; text repeats the row's prompt mark."""

    num_states, units = 1, 2

    def __init__(self, delay=0.01, fail_on=None):
        self.calls, self.delay, self.fail_on = [], delay, fail_on

    def initial_state(self, batch=1):
        return np.zeros((1, batch, 2), np.float32)

    def generate(self, prompts, states, length, temperature):
        import time

        time.sleep(self.delay)
        self.calls.append((list(prompts), length, list(temperature)))
        if self.fail_on and any(self.fail_on in p for p in prompts):
            raise RuntimeError("model failed")
        states = states.copy()
        states[0, :, 0] += [len(p) + length for p in prompts]
        marks = [p[:1] if p else "·" for p in prompts]
        return [m * length for m in marks], states


async def collect(sched, job):
    return "".join([piece async for piece in sched.stream(job)])


def run(coro):
    return asyncio.run(coro)


def test_rows_keep_their_own_state_and_temperature():
    async def go():
        model = FakeModel()
        sched = Scheduler(model, SchedulerConfig(first_chunk=4, chunk=8))
        sched.start()
        a = sched.submit("甲甲甲", model.initial_state(), 20, 0.5)
        b = sched.submit("乙", model.initial_state(), 20, 1.5)
        texts = await asyncio.gather(collect(sched, a), collect(sched, b))
        await sched.stop()
        return model, texts, a, b
    model, texts, a, b = run(go())
    assert [len(t) for t in texts] == [20, 20]
    assert a.states[0, 0, 0] == 3 + 20 and b.states[0, 0, 0] == 1 + 20
    prompts, length, temps = model.calls[0]
    assert prompts == ["甲甲甲", "乙"] and length == 4 and temps == [0.5, 1.5]
    assert all(p == ["", ""] for p, _, _ in model.calls[1:])  # later rounds carry the state, no re-read


async def served(job) -> None:
    """Until the scheduler has served `job` a round (polling; the caller bounds the wait)."""
    while not job.last_served:
        await asyncio.sleep(0.005)


def test_new_job_joins_at_the_next_round_and_short_stories_finish_first():
    async def go():
        model = FakeModel(delay=0.02)
        sched = Scheduler(model, SchedulerConfig(first_chunk=10, chunk=10))
        sched.start()
        done = []
        long = sched.submit("长", model.initial_state(), 2000, 1.0)

        async def watch(name, job):
            await collect(sched, job)
            done.append(name)

        t_long = asyncio.create_task(watch("long", long))
        await asyncio.wait_for(served(long), 10)  # the long story is under way
        short = sched.submit("短", model.initial_state(), 100, 1.0)
        await watch("short", short)
        await t_long
        await sched.stop()
        return model, done
    model, done = run(go())
    assert done == ["short", "long"]
    joined = next(i for i, (p, _, _) in enumerate(model.calls) if "短" in p)
    assert sorted(model.calls[joined][0]) == ["", "短"]  # read its prompt in a shared round
    shared = [c for c in model.calls if len(c[0]) == 2]
    assert len(shared) == 10  # 100 characters at 10 a round, every round shared


def test_bounded_queue_answers_busy():
    async def go():
        model = FakeModel(delay=0.05)
        sched = Scheduler(model, SchedulerConfig(max_jobs=2))
        sched.start()
        sched.submit("a", model.initial_state(), 100, 1.0)
        sched.submit("b", model.initial_state(), 100, 1.0)
        with pytest.raises(Busy):
            sched.submit("c", model.initial_state(), 100, 1.0)
        await sched.stop()
    run(go())


def test_batch_size_is_capped_and_everyone_advances():
    async def go():
        model = FakeModel(delay=0.0)
        sched = Scheduler(model, SchedulerConfig(max_batch=3, max_jobs=10, first_chunk=5, chunk=5))
        sched.start()
        jobs = [sched.submit(str(i), model.initial_state(), 20, 1.0) for i in range(7)]
        texts = await asyncio.gather(*(collect(sched, j) for j in jobs))
        await sched.stop()
        return model, texts
    model, texts = run(go())
    assert all(len(t) == 20 and t.startswith(str(i) * 5) for i, t in enumerate(texts))
    assert max(len(p) for p, _, _ in model.calls) == 3


def test_a_failed_round_fails_its_jobs_not_the_scheduler():
    async def go():
        model = FakeModel(fail_on="坏")
        sched = Scheduler(model)
        sched.start()
        bad = sched.submit("坏", model.initial_state(), 10, 1.0)
        with pytest.raises(RuntimeError):
            await collect(sched, bad)
        good = sched.submit("好", model.initial_state(), 10, 1.0)
        text = await collect(sched, good)
        await sched.stop()
        return text
    assert run(go()) == "好" * 10


def test_a_long_read_goes_in_chunks_and_holds_no_one_up():
    async def go():
        model = FakeModel()
        sched = Scheduler(model, SchedulerConfig(first_chunk=4, chunk=8, read_chunk=8))
        sched.start()
        long = sched.submit("甲" * 30, model.initial_state(), 10, 1.0)  # a story's tail, read to rebuild a state
        short = sched.submit("乙", model.initial_state(), 10, 1.0)
        texts = await asyncio.gather(collect(sched, long), collect(sched, short))
        await sched.stop()
        return model, texts, long
    model, texts, long = run(go())
    assert [len(t) for t in texts] == [10, 10]
    assert long.states[0, 0, 0] == 30 + 10  # every character read once, then ten written
    assert max(len(p) for prompts, _, _ in model.calls for p in prompts) <= 8
    (first_read, n0, _), (first_write, n1, _) = model.calls[:2]
    assert first_read == ["甲" * 8] and n0 == 0  # the long read's first share, writing nothing
    assert first_write == ["乙"] and n1 == 4  # the other chat's first text comes in the same round


def test_a_new_job_knows_how_many_wait_before_it_and_about_how_long():
    async def go():
        model = FakeModel(delay=0.05)
        sched = Scheduler(model, SchedulerConfig(max_batch=2, first_chunk=4, chunk=4))
        sched.start()
        first = sched.submit("甲", model.initial_state(), 8, 1.0)
        await collect(sched, first)  # rounds have been timed
        jobs = [sched.submit(c, model.initial_state(), 4, 1.0) for c in "乙丙丁戊己"]  # all before any round
        waits = [sched.queue_wait(j) for j in jobs]
        await asyncio.gather(*(collect(sched, j) for j in jobs))
        after = sched.queue_wait(jobs[-1])
        await sched.stop()
        return waits, after, sched.round_seconds
    waits, after, round_seconds = run(go())
    assert [ahead for ahead, _ in waits] == [0, 1, 2, 3, 4]
    assert round_seconds >= 0.01  # a moving average of the 0.05 s rounds, from zero
    assert waits[4][1] == pytest.approx(2 * waits[2][1]) and waits[1][1] == 0  # rounds of two before each
    assert after == (0, 0.0)  # once served, nothing to wait for


def test_a_job_done_early_by_its_rule_never_shortens_the_rounds_of_others():
    async def go():
        model = FakeModel()
        sched = Scheduler(model, SchedulerConfig(first_chunk=4, chunk=8))
        sched.start()
        alone = sched.submit("甲", model.initial_state(), 40, 1.0, chunk=2, until=lambda text: len(text) >= 6)
        short = await collect(sched, alone)
        calls_alone = [length for _, length, _ in model.calls]
        model.calls.clear()
        other = sched.submit("乙", model.initial_state(), 20, 1.0)
        beat = sched.submit("丙", model.initial_state(), 40, 1.0, chunk=2, until=lambda text: len(text) >= 6)
        texts = await asyncio.gather(collect(sched, other), collect(sched, beat))
        await sched.stop()
        return short, calls_alone, texts, [length for _, length, _ in model.calls]
    short, calls_alone, texts, lengths = run(go())
    assert len(short) == 6 and calls_alone == [2, 2, 2]  # alone: its own rounds, done as soon as its rule holds
    assert [len(t) for t in texts] == [20, 12] and lengths[:2] == [4, 8]  # together: the other's rounds
