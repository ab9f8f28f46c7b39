"""Memory after many distinct chats: each writes one short part through the story engine.

    python -m bench.chats --chats 100000 [--length 8] [--slice 1000] [--model DIR]

Runs in this process what the bot runs (the model, the scheduler, a real SQLite file,
the engine with the default MAX_RESIDENT_CHATS), without Telegram: every chat sends one
/write, a slice of chats at a time, all of a slice at once. Prints the RSS as it goes
and after the last chat, how many chats keep a state in memory, and whether the first
chat (long since evicted) can still /continue its story. Quotas are lifted: they are
not what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench import result_line
from bench.speed import rss_mb
from bot.engine import MAX_RESIDENT_CHATS, StoryEngine
from bot.limits import LimitConfig, Limits
from bot.scheduler import Scheduler
from bot.sentences import SLACK
from bot.store import Store

UNLIMITED = LimitConfig(user_requests_per_minute=10**9, global_requests_per_minute=10**9,
                        user_chars_per_hour=10**12, global_chars_per_hour=10**12)


async def read_all(opening) -> str:
    """Run one part to its end; its text."""
    async with opening as part:
        async for _ in part.pieces():
            pass
    return part.text


async def many_chats(model, db: Path, chats: int, length: int, slice_size: int, resident: int, report) -> dict:
    store = await Store.open(db)
    scheduler = Scheduler(model)
    scheduler.start()
    engine = StoryEngine(store, scheduler, limits=Limits(UNLIMITED), max_resident_chats=resident)
    t0 = time.perf_counter()
    try:
        for start in range(0, chats, slice_size):
            ids = range(start + 1, min(chats, start + slice_size) + 1)
            await asyncio.gather(*(store.set_length(c, length) for c in ids))
            await asyncio.gather(*(read_all(engine.write(c, "乔峰")) for c in ids))
            if (start // slice_size) % 10 == 0:
                report(f"{ids[-1]:,} chats: RSS {rss_mb():.0f} MB, {time.perf_counter() - t0:.0f} s")
        seconds = time.perf_counter() - t0
        after = rss_mb()
        resident_now = len(engine.sessions)
        before = (await store.story(1)).text
        await read_all(engine.continue_story(1))
        continued = (await store.story(1)).text
    finally:
        await scheduler.stop()
        await store.close()
    return {"chats": chats, "length": length, "seconds": round(seconds, 1), "rss_mb": round(after),
            "resident_chats": resident_now, "max_resident_chats": resident,
            "first_chat_continued": continued.startswith(before)
            and length <= len(continued) - len(before) <= length + SLACK}  # a part runs on to a sentence end


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.chats", description=__doc__.split("\n")[0])
    ap.add_argument("--chats", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=8, help="characters each chat's part gets")
    ap.add_argument("--slice", type=int, default=1000, help="chats writing at once")
    ap.add_argument("--resident", type=int, default=MAX_RESIDENT_CHATS, help="MAX_RESIDENT_CHATS")
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    args = ap.parse_args(argv)
    from model import load  # noqa: PLC0415  (TensorFlow: slow to import)

    m = load(args.model)
    m.warm_up()
    with tempfile.TemporaryDirectory() as d:
        result = asyncio.run(many_chats(m, Path(d) / "bot.sqlite3", args.chats, args.length, args.slice,
                                        args.resident, print))
    print(f"{result['chats']:,} chats × {result['length']} chars in {result['seconds']:.0f} s: "
          f"RSS {result['rss_mb']} MB, {result['resident_chats']:,} states in memory "
          f"(MAX_RESIDENT_CHATS {result['max_resident_chats']:,}); "
          f"the first chat's /continue {'worked' if result['first_chat_continued'] else 'FAILED'}")
    return result_line(result)


if __name__ == "__main__":
    sys.exit(main())
