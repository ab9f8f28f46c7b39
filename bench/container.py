"""The container image, run as a user would run it, against the tests' fake Bot API on this machine.

    python -m bench.container [--image jinyong-bot] [--engine podman|docker] [--run-arg=--runtime=runc ...]

Starts the fake Bot API server (tests/bot/fake_telegram.py) on 127.0.0.1, then the image
with the host's network, the token and the Bot API's URL from the environment and a named
volume for /data; and checks, printing each: the bot answers /write with a whole part;
the health check is healthy, and unhealthy once the Bot API is gone; the bot runs as a
user other than root and its database on the volume is readable by that user alone; it
stops within 10 s of SIGTERM; a new container on the same volume goes on with the story.
Prints `RESULT {json}`; exit status 1 if a check failed. Build the image first
(`docker build -t jinyong-bot .`; docs/container.md says how it was built here).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid

from bench import result_line
from tests.bot.fake_telegram import TOKEN, FakeTelegram


def engine_cmd(engine: str, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([engine, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode:
        raise RuntimeError(f"{engine} {args[0]}: {done.stderr.strip()[-500:]}")
    return done


def start(engine: str, image: str, volume: str, base_url: str, run_args: list[str]) -> str:
    """A detached container of the image on the host's network; its id."""
    return engine_cmd(engine, "run", "-d", "--network", "host", *run_args, "-v", f"{volume}:/data",
                      "-e", f"TELEGRAM_BOT_TOKEN={TOKEN}", "-e", f"TELEGRAM_BASE_URL={base_url}",
                      image, check=True).stdout.strip()


def part_of(fake: FakeTelegram, chat: int, before: int) -> str:
    """The text of the newest finished part (a message with buttons) after the first `before` messages."""
    fake.wait_for(lambda: any(m.reply_markup for m in fake.chat(chat)[before:]), 600, "a finished part")
    return [m for m in fake.chat(chat)[before:] if m.reply_markup][-1].text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.container", description=__doc__.split("\n")[0])
    ap.add_argument("--image", default="jinyong-bot")
    ap.add_argument("--engine", default="podman", help="podman or docker")
    ap.add_argument("--run-arg", action="append", default=[], help="passed to `run` as is (e.g. --runtime=runc)")
    args = ap.parse_args(argv)
    e, volume, checks = args.engine, f"jinyong-check-{uuid.uuid4().hex[:8]}", {}
    fake = FakeTelegram().__enter__()
    box = start(e, args.image, volume, fake.base_url, args.run_arg)
    try:
        fake.command(7, "/len 60")
        fake.wait_for(lambda: fake.chat(7), 600, "the bot's answer to /len (the model loading first)")
        fake.command(7, "/write 乔峰带阿朱")
        written = part_of(fake, 7, len(fake.chat(7)))
        checks["answers /write with a whole part"] = written.startswith("乔峰带阿朱") and len(written) >= 60
        checks["health check healthy"] = engine_cmd(e, "healthcheck", "run", box).returncode == 0
        whoami = engine_cmd(e, "exec", box, "sh", "-c", "id -u; stat -c '%a %U' /data/bot.sqlite3").stdout.split()
        checks["runs as a user other than root"] = whoami[:1] != ["0"] and len(whoami) == 3
        checks["database readable by that user alone"] = whoami[1:] == ["600", "bot"]
        t0 = time.monotonic()
        engine_cmd(e, "stop", "-t", "10", box, check=True)
        checks["stops within 10 s of SIGTERM"] = time.monotonic() - t0 < 10
        engine_cmd(e, "rm", box)
        box = start(e, args.image, volume, fake.base_url, args.run_arg)  # the same volume
        before = len(fake.chat(7))
        fake.command(7, "/continue")
        more = part_of(fake, 7, before)
        fake.command(7, "/story")
        fake.wait_for(lambda: any(m.document for m in fake.chat(7)[before:]), 600, "/story after a restart")
        story = next(m.document for m in fake.chat(7)[before:] if m.document)
        story = story.decode("utf-8") if isinstance(story, bytes) else str(story)
        checks["a new container goes on with the story"] = story.startswith(written) and more in story
        fake.__exit__(None, None, None)  # the Bot API is gone
        checks["health check unhealthy without the Bot API"] = engine_cmd(e, "healthcheck", "run", box).returncode != 0
    finally:
        engine_cmd(e, "rm", "-f", box)
        engine_cmd(e, "volume", "rm", "-f", volume)
    for name, ok in checks.items():
        print(f"{'ok ' if ok else 'FAIL'} {name}")
    result_line({"image": args.image, "engine": e, "checks": checks})
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
