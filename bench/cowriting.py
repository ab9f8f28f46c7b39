"""Co-writing's costs and guarantees on a model: three next beats against one, and a role in 100 parts.

    python -m bench.cowriting [--model DIR] [--repeats 20] [--parts 100] [--length 300] [--role 乔峰]

1. Offering choices (/choices on): the time of OPTIONS beats from one state, written as the
   bot writes them (bot.choices.write_beats: CANDIDATES rows of the scheduler's rounds, each
   done at its first sentence end, at most BEAT_MAX characters, the first OPTIONS to end
   offered), against one beat written the same way; beside it OPTIONS rows all waited for
   (the way before CANDIDATES), and every beat written to its full BEAT_MAX characters;
   interleaved, --repeats of each, from the ends of PROMPTS' stories in turn (a beat's length,
   and so its time, depends on where the story stands): the means and the medians; also the
   model call alone (rows of one `generate`, the fastest). The issue asks for less than 1.5×
   the time of one.
2. Playing a character: --parts parts through the story engine in stories where --role is
   played, counting parts whose text has the role begin to speak by the bot's own rule
   (bot.roles.speaks_at: must be 0) and by a looser reader's rule (the name, then an opening
   quote within 12 characters of the same sentence: 乔峰哈哈大笑，“…), with how many parts stopped
   for the person's turn (the person then says a line, /say, and the bot goes on from it), how many
   were written afresh for speaking for them at once (bot.part.TURN_RETRIES), how many ended
   empty all the same, and their mean length.
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


async def beats_seconds(scheduler: Scheduler, states: np.ndarray, count: int, rows: int) -> float:
    """Seconds for `count` beats from `states` in `rows` rows, as the bot's offer writes them."""
    started = time.perf_counter()
    await choices.write_beats(scheduler, "", states, 0.8, count=count, rows=rows)
    return time.perf_counter() - started


async def full_beats_seconds(scheduler: Scheduler, states: np.ndarray, rows: int) -> float:
    """Seconds for `rows` beats from `states`, each written to all its BEAT_MAX characters."""
    started = time.perf_counter()
    jobs = [scheduler.submit("", states, choices.BEAT_MAX, 0.8, chunk=choices.BEAT_ROUND) for _ in range(rows)]
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


SAID = ["走罢", "你是谁？", "在下有礼了", "好", "且慢！"]  # what the person says when it is their turn
LOOSE = "[^。！？\n]{0,12}?“"  # the name, then an opening quote in the same sentence


async def cowriting(model, db: Path, repeats: int, parts: int, length: int, role: str) -> dict:
    store = await Store.open(db)
    scheduler = Scheduler(model)
    scheduler.start()
    engine = StoryEngine(store, scheduler, limits=Limits(UNLIMITED))
    try:
        starts = [model.generate([p.format(role=role) + "。"], length=0)[1] for p in PROMPTS]  # stories' ends
        states = starts[0]
        await beats_seconds(scheduler, states, 1, 1)  # warm-up
        options, candidates = choices.OPTIONS, choices.CANDIDATES
        ways = {"one": lambda s: beats_seconds(scheduler, s, 1, 1),
                "offer": lambda s: beats_seconds(scheduler, s, options, candidates),
                "all_waited": lambda s: beats_seconds(scheduler, s, options, options),
                "one_full": lambda s: full_beats_seconds(scheduler, s, 1),
                "three_full": lambda s: full_beats_seconds(scheduler, s, options)}
        runs = {way: [] for way in ways}
        for i in range(repeats):  # interleaved, so a busy moment of the machine falls on each; every start in turn
            for way, times in runs.items():
                times.append(await ways[way](starts[i % len(starts)]))
        means = {way: statistics.mean(times) for way, times in runs.items()}
        medians = {way: statistics.median(times) for way, times in runs.items()}
        call_one, call_three = call_seconds(model, states, [1, choices.OPTIONS], repeats)
        chats = list(range(1, len(PROMPTS) + 1))
        for c in chats:
            await store.set_length(c, length)
            await store.set_role(c, 10**6, role)
        texts, turns, afresh, empty, said = [], 0, 0, 0, {}
        while len(texts) < parts:
            batch = chats[: parts - len(texts)]
            # A story goes on by itself until it stops for the role's turn; then the person speaks (/say).
            openings = [engine.write(c, PROMPTS[c - 1].format(role=role)) if not texts
                        else engine.join(c, SAID[len(texts) % len(SAID)], 10**6, "bench", kind="say") if said.get(c)
                        else engine.continue_story(c) for c in batch]
            written = await asyncio.gather(*(run_part(o) for o in openings))
            for c, (text, turn, retries) in zip(batch, written):
                texts.append(text)
                turns += turn is not None
                said[c] = turn is not None
                afresh += retries > 0
                empty += not text
    finally:
        await scheduler.stop()
        await store.close()
    strict = sum(roles.speaks_at(t, [role]) is not None for t in texts)
    names = "|".join(re.escape(n) for n in roles.names_of([role]))  # 乔峰 is 萧峰 too (roles.ALIASES)
    found = [m.group(0) for t in texts if (m := re.search(f"(?:{names}){LOOSE}", t))]
    loose = len(found)
    return {"beat_chars": choices.BEAT_MAX, "options": choices.OPTIONS, "candidates": choices.CANDIDATES,
            "one_beat_s": round(means["one"], 4), "three_beats_s": round(means["offer"], 4),
            "three_vs_one": round(means["offer"] / means["one"], 2),
            "three_vs_one_medians": round(medians["offer"] / medians["one"], 2),
            "all_waited_vs_one": round(means["all_waited"] / means["one"], 2),
            "all_waited_vs_one_medians": round(medians["all_waited"] / medians["one"], 2),
            "one_full_beat_s": round(means["one_full"], 4), "three_full_beats_s": round(means["three_full"], 4),
            "three_vs_one_full": round(means["three_full"] / means["one_full"], 2),
            "call_one_s": round(call_one, 4), "call_three_s": round(call_three, 4),
            "call_three_vs_one": round(call_three / call_one, 2), "role": role, "parts": len(texts),
            "parts_speaking_for_role": strict, "parts_loosely_speaking_for_role": loose,
            "parts_stopped_for_turn": turns, "parts_written_afresh": afresh, "parts_empty": empty,
            "loose_examples": found[:8],
            "mean_part_chars": round(sum(map(len, texts)) / len(texts), 1)}


async def run_part(opening) -> tuple[str, str | None, int]:
    async with opening as part:
        async for _ in part.pieces():
            pass
    return part.text, part.turn, part.retries


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cowriting", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--parts", type=int, default=100)
    ap.add_argument("--length", type=int, default=300, help="characters each part is asked for")
    ap.add_argument("--role", default="乔峰")
    ap.add_argument("--candidates", type=int, default=choices.CANDIDATES, help="rows written for the beats offered")
    args = ap.parse_args(argv)
    choices.CANDIDATES = args.candidates
    from model import load  # noqa: PLC0415  (TensorFlow: slow to import)

    m = load(args.model)
    m.warm_up()
    with tempfile.TemporaryDirectory() as d:
        r = asyncio.run(cowriting(m, Path(d) / "bot.sqlite3", args.repeats, args.parts, args.length, args.role))
    r["runtime"] = m.runtime_form  # with int8, up to how many rows the one-row kernel runs here (calibrated)
    print(f"runtime: {r['runtime']}")
    print(f"{r['options']} beats of {r['beat_chars']} chars: {r['three_beats_s']:.3f} s against "
          f"{r['one_beat_s']:.3f} s for one = {r['three_vs_one']:.2f}× (means; asked: < 1.5×; medians "
          f"{r['three_vs_one_medians']:.2f}×; from {r['candidates']} rows; all of {r['options']} rows waited for: "
          f"{r['all_waited_vs_one']:.2f}×, medians {r['all_waited_vs_one_medians']:.2f}×); "
          f"written to {r['beat_chars']} chars each (no early stop): "
          f"{r['three_full_beats_s']:.3f} s against {r['one_full_beat_s']:.3f} s = {r['three_vs_one_full']:.2f}×; "
          f"the model call alone "
          f"{r['call_three_s']:.3f} s against {r['call_one_s']:.3f} s = {r['call_three_vs_one']:.2f}×")
    print(f"{r['parts']} parts with {r['role']} played: {r['parts_speaking_for_role']} speak for them by the bot's "
          f"rule, {r['parts_loosely_speaking_for_role']} by a looser reader's rule; {r['parts_stopped_for_turn']} "
          f"stopped for their turn, each answered by a line of theirs (/say); {r['parts_written_afresh']} written "
          f"afresh for speaking for them at once, {r['parts_empty']} empty after all; "
          f"{r['mean_part_chars']} chars a part on average")
    return result_line(r)


if __name__ == "__main__":
    sys.exit(main())
