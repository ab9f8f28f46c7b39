"""Co-writing's costs and guarantees on a model: three next beats against one, and a role in 100 parts.

    python -m bench.cowriting [--model DIR] [--repeats 20] [--parts 100] [--length 300] [--role 乔峰]

1. Offering choices (/choices on): the time of OPTIONS beats from one state, written as the
   bot writes them (rows of the scheduler's rounds, each done at its first sentence end, at
   most BEAT_MAX characters), against one beat; and the same with every beat written to its
   full BEAT_MAX characters,
   interleaved, --repeats of each: the fastest of each (the least disturbed by the rest of
   the machine) and the medians; also the model call alone (rows of one `generate`). The
   issue asks for less than 1.5× the time of one.
2. Playing a character: --parts parts through the story engine in stories where --role is
   played, counting parts whose text has the role begin to speak by the bot's own rule
   (bot.roles.speaks_at: must be 0) and by a looser reader's rule (the name, then an opening
   quote within 12 characters of the same sentence: 乔峰哈哈大笑，“…), with how many parts stopped
   for the person's turn and their mean length.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import result_line
from bench.chats import UNLIMITED
from bot import choices, roles
from bot.engine import StoryEngine
from bot.limits import Limits
from bot.scheduler import Scheduler
from bot.store import Store

PROMPTS = ["{role}带阿朱", "{role}心想", "{role}走进客栈", "只听得{role}", "{role}对段誉说", "{role}大怒",
           "{role}哈哈一笑", "{role}低声道", "{role}站起身来", "{role}回头一看"]


async def beats_seconds(scheduler: Scheduler, states: np.ndarray, rows: int, until=choices.has_beat) -> float:
    """Seconds for `rows` beats from `states`, written as the bot's offer writes them (until=None: all
    BEAT_MAX characters of each)."""
    started = time.perf_counter()
    jobs = [scheduler.submit("", states, choices.BEAT_MAX, 0.8, chunk=choices.BEAT_ROUND, until=until)
            for _ in range(rows)]
    await asyncio.gather(*(drain(scheduler, j) for j in jobs))
    return time.perf_counter() - started


async def drain(scheduler: Scheduler, job) -> None:
    async for _ in scheduler.stream(job):
        pass


def call_seconds(model, states: np.ndarray, rows: list[int], repeats: int) -> list[float]:
    """The fastest of `repeats` `generate` calls of BEAT_MAX characters from `states`, per number of rows
    (interleaved)."""
    times = {n: [] for n in rows}
    for i in range(repeats):
        for n in rows:
            started = time.perf_counter()
            model.generate([""] * n, np.repeat(states, n, axis=1), length=choices.BEAT_MAX, temperature=0.8, seed=i)
            times[n].append(time.perf_counter() - started)
    return [min(times[n]) for n in rows]


LOOSE = "[^。！？\n]{0,12}?“"  # the name, then an opening quote in the same sentence


async def cowriting(model, db: Path, repeats: int, parts: int, length: int, role: str) -> dict:
    store = await Store.open(db)
    scheduler = Scheduler(model)
    scheduler.start()
    engine = StoryEngine(store, scheduler, limits=Limits(UNLIMITED))
    try:
        _, states = model.generate(["乔峰带阿朱"], length=0)
        await beats_seconds(scheduler, states, 1)  # warm-up
        runs = {(rows, full): [] for rows in (1, choices.OPTIONS) for full in (False, True)}
        for _ in range(repeats):  # interleaved, so a busy moment of the machine falls on each
            for (rows, full), times in runs.items():
                times.append(await beats_seconds(scheduler, states, rows, None if full else choices.has_beat))
        one, three = min(runs[1, False]), min(runs[choices.OPTIONS, False])
        one_full, three_full = min(runs[1, True]), min(runs[choices.OPTIONS, True])
        median_ratio = statistics.median(runs[choices.OPTIONS, False]) / statistics.median(runs[1, False])
        call_one, call_three = call_seconds(model, states, [1, choices.OPTIONS], repeats)
        chats = list(range(1, len(PROMPTS) + 1))
        for c in chats:
            await store.set_length(c, length)
            await store.set_role(c, 10**6, role)
        texts, turns = [], 0
        while len(texts) < parts:
            batch = chats[: parts - len(texts)]
            openings = [engine.write(c, PROMPTS[c - 1].format(role=role)) if not texts else engine.continue_story(c)
                        for c in batch]
            written = await asyncio.gather(*(run_part(o) for o in openings))
            for text, turn in written:
                texts.append(text)
                turns += turn is not None
    finally:
        await scheduler.stop()
        await store.close()
    strict = sum(roles.speaks_at(t, [role]) is not None for t in texts)
    found = [m.group(0) for t in texts if (m := re.search(re.escape(role) + LOOSE, t))]
    loose = len(found)
    return {"beat_chars": choices.BEAT_MAX, "options": choices.OPTIONS, "one_beat_s": round(one, 4),
            "three_beats_s": round(three, 4), "three_vs_one": round(three / one, 2),
            "three_vs_one_medians": round(median_ratio, 2), "one_full_beat_s": round(one_full, 4),
            "three_full_beats_s": round(three_full, 4), "three_vs_one_full": round(three_full / one_full, 2),
            "call_one_s": round(call_one, 4), "call_three_s": round(call_three, 4),
            "call_three_vs_one": round(call_three / call_one, 2), "role": role, "parts": len(texts),
            "parts_speaking_for_role": strict, "parts_loosely_speaking_for_role": loose,
            "parts_stopped_for_turn": turns, "loose_examples": found[:8],
            "mean_part_chars": round(sum(map(len, texts)) / len(texts), 1)}


async def run_part(opening) -> tuple[str, str | None]:
    async with opening as part:
        async for _ in part.pieces():
            pass
    return part.text, part.turn


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cowriting", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--parts", type=int, default=100)
    ap.add_argument("--length", type=int, default=300, help="characters each part is asked for")
    ap.add_argument("--role", default="乔峰")
    args = ap.parse_args(argv)
    from model import load  # noqa: PLC0415  (TensorFlow: slow to import)

    m = load(args.model)
    m.warm_up()
    with tempfile.TemporaryDirectory() as d:
        r = asyncio.run(cowriting(m, Path(d) / "bot.sqlite3", args.repeats, args.parts, args.length, args.role))
    print(f"{r['options']} beats of {r['beat_chars']} chars: {r['three_beats_s']:.3f} s against "
          f"{r['one_beat_s']:.3f} s for one = {r['three_vs_one']:.2f}× (asked: < 1.5×; medians "
          f"{r['three_vs_one_medians']:.2f}×); written to {r['beat_chars']} chars each (no early stop): "
          f"{r['three_full_beats_s']:.3f} s against {r['one_full_beat_s']:.3f} s = {r['three_vs_one_full']:.2f}×; "
          f"the model call alone "
          f"{r['call_three_s']:.3f} s against {r['call_one_s']:.3f} s = {r['call_three_vs_one']:.2f}×")
    print(f"{r['parts']} parts with {r['role']} played: {r['parts_speaking_for_role']} speak for them by the bot's "
          f"rule, {r['parts_loosely_speaking_for_role']} by a looser reader's rule; {r['parts_stopped_for_turn']} "
          f"stopped for their turn; {r['mean_part_chars']} chars a part on average")
    return result_line(r)


if __name__ == "__main__":
    sys.exit(main())
