"""Load test: N chats /write at once through real HTTP (fake Bot API server + python -m bot).

    python -m bench.load --chats 1000 [--groups 0.1] [--length 50] [--model model/default]

The fake server enforces Telegram's flood limits with 429s (30 messages a second in
all, 20 a minute into a group, about 1 a second into a chat; --no-flood-limits turns
that off). A share of the chats (--groups) are supergroups. Reports the 429s the bot
received, whether every chat got its whole part, p50/p95 time from each /write to its
first text and to its final text, and the bot's memory afterwards. The test suite runs
it with a few chats on a tiny model (tests/bot/test_load.py).

    python -m bench.load --hang 300 [--model model/default]

instead stalls the Bot API for N chats (each part's first send hangs a minute) and times
/help from another chat meanwhile, against the same /help with nothing stalled. The fake server and the
bot's subprocess are the end-to-end tests' own (tests/bot/fake_telegram.py, harness.py):
run it from the repository root.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import result_line
from bot.sentences import SLACK
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.harness import BotProcess


def chat_ids(chats: int, groups: float, first_chat: int = 10_000) -> list[int]:
    """Private chats (positive ids) with every round(1/groups)-th a supergroup (-100… ids)."""
    every = round(1 / groups) if groups > 0 else 0
    return [-(1_000_000_000_000 + c) if every and i % every == every - 1 else c
            for i, c in enumerate(range(first_chat, first_chat + chats))]


def run_load(fake: FakeTelegram, chats: int, length: int, timeout: float = 300, first_chat: int = 10_000,
             groups: float = 0.0) -> dict:
    ids = chat_ids(chats, groups, first_chat)
    kind = {c: "supergroup" if c < 0 else "private" for c in ids}
    for c in ids:
        fake.command(c, f"/len {length}", user_id=abs(c) % 1_000_000_000, chat_type=kind[c])
    fake.wait_for(lambda: all(fake.chat(c) for c in ids), timeout, "the /len replies")
    sent = {}
    for c in ids:
        sent[c] = time.monotonic()
        fake.command(c, f"/write 第{abs(c)}回 乔峰", user_id=abs(c) % 1_000_000_000, chat_type=kind[c])
    parts = {}

    def all_done():
        for c in ids:
            if c not in parts:
                done = [m for m in fake.chat(c) if m.reply_markup]
                if done:
                    parts[c] = done[-1]
        return len(parts) == len(ids)

    fake.wait_for(all_done, timeout, f"{chats} finished parts")
    first = [parts[c].created - sent[c] for c in ids]
    final = [parts[c].finished - sent[c] for c in ids]
    lengths = [len(parts[c].text) - len(f"第{abs(c)}回 乔峰") for c in ids]
    return {"chats": chats, "groups": sum(c < 0 for c in ids), "length": length,
            "all_complete": all(length <= n <= length + SLACK for n in lengths),  # to a sentence end
            "refused_429": fake.flood.refused if fake.flood else None,
            "first_p50_s": float(np.percentile(first, 50)), "first_p95_s": float(np.percentile(first, 95)),
            "final_p50_s": float(np.percentile(final, 50)), "final_p95_s": float(np.percentile(final, 95))}


def run_stall(fake: FakeTelegram, hung: int, first_chat: int = 20_000) -> dict:
    """/help's round trip in a calm bot, then while `hung` chats' parts hang on their first send."""
    def help_seconds(chat: int) -> float:
        before, t0 = len(fake.chat(chat)), time.monotonic()
        fake.command(chat, "/help")
        fake.wait_for(lambda: len(fake.chat(chat)) > before, 120, "the answer to /help")
        return time.monotonic() - t0

    calm = help_seconds(1)
    ids = range(first_chat, first_chat + hung)
    for c in ids:
        fake.fail("sendMessage", "hang", 60, chat_id=c)
    for c in ids:
        fake.command(c, "/write 乔峰")
    fake.wait_for(lambda: fake.hanging >= min(hung, 250), 120, "the parts' first sends hanging")
    stalled = [help_seconds(2 + i) for i in range(5)]
    return {"hung_parts": hung, "hanging_requests": fake.hanging, "help_calm_s": calm,
            "help_stalled_max_s": max(stalled), "help_stalled_p50_s": float(np.median(stalled))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    ap.add_argument("--chats", type=int, default=32)
    ap.add_argument("--length", type=int, default=300)
    ap.add_argument("--groups", type=float, default=0.1, help="share of the chats that are supergroups")
    ap.add_argument("--model", type=Path, default=Path("model/default"))
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for every part")
    ap.add_argument("--no-flood-limits", action="store_true", help="the fake server answers every request")
    ap.add_argument("--flood-slack", type=float, default=1.0,
                    help="messages the fake lets through over each limit (0: exactly 30/s, 20/min, 3 then 1/s)")
    ap.add_argument("--hang", type=int, default=0, help="instead: N parts whose first send hangs, and /help meanwhile")
    args = ap.parse_args(argv)
    if args.hang:
        return stall(args)
    with FakeTelegram(flood_limits=not args.no_flood_limits, flood_slack=args.flood_slack) as fake, \
            tempfile.TemporaryDirectory() as d:
        bot = BotProcess(fake, args.model, Path(d) / "db.sqlite3", Path(d) / "bot.log", LOG_LEVEL="INFO",
                         MAX_JOBS=max(1000, args.chats), RATE_GLOBAL_PER_MIN=10**6,
                         CHARS_GLOBAL_PER_HOUR=10**9).start()
        try:
            result = run_load(fake, args.chats, args.length, args.timeout, groups=args.groups)
            result["bot_rss_mb"] = bot.rss_mb()
        finally:
            bot.stop()
        log = bot.log().splitlines()
        result["log_errors"] = sum(" ERROR " in line for line in log)
        result["log_warnings"] = sum(" WARNING " in line for line in log)
    r = result
    rows = [("chats (supergroups)", f"{r['chats']} ({r['groups']}), {r['length']} characters each"),
            ("429s from the fake", r["refused_429"]),
            ("every part whole", "yes" if r["all_complete"] else "NO"),
            ("first text p50 / p95", f"{r['first_p50_s']:.2f} / {r['first_p95_s']:.2f} s"),
            ("final text p50 / p95", f"{r['final_p50_s']:.2f} / {r['final_p95_s']:.2f} s"),
            ("the bot's memory afterwards", f"{r['bot_rss_mb']:.0f} MB"),
            ("errors / warnings logged", f"{r['log_errors']} / {r['log_warnings']}")]
    for label, value in rows:
        print(f"{label:>28}  {value}")
    return result_line(result)


def stall(args) -> int:
    with FakeTelegram() as fake, tempfile.TemporaryDirectory() as d:
        bot = BotProcess(fake, args.model, Path(d) / "db.sqlite3", Path(d) / "bot.log", LOG_LEVEL="INFO",
                         RATE_GLOBAL_PER_MIN=10**6, CHARS_GLOBAL_PER_HOUR=10**9).start()
        try:
            result = run_stall(fake, args.hang)
            result["bot_rss_mb"] = bot.rss_mb()
        finally:
            bot.stop()
    r = result
    print(f"{'parts hung on their first send':>32}  {r['hung_parts']} ({r['hanging_requests']} requests held)")
    print(f"{'/help from another chat, calm':>32}  {r['help_calm_s']:.3f} s")
    print(f"{'/help meanwhile, p50 / max of 5':>32}  {r['help_stalled_p50_s']:.3f} / {r['help_stalled_max_s']:.3f} s")
    print(f"{'the bot memory meanwhile':>32}  {r['bot_rss_mb']:.0f} MB")
    return result_line(result)


if __name__ == "__main__":
    sys.exit(main())
