"""Running `python -m bot` as a subprocess against the fake Bot API server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.bot.fake_telegram import TOKEN, FakeTelegram, Sent
from tests.conftest import ROOT


class BotProcess:
    def __init__(self, fake: FakeTelegram, model_dir: Path, db: Path, log: Path, **env):
        self.fake, self.log_path = fake, log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "TELEGRAM_BOT_TOKEN": TOKEN,
                    "TELEGRAM_BASE_URL": fake.base_url, "MODEL_DIR": str(model_dir), "DATABASE_PATH": str(db),
                    "LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in env.items()}}
        self.proc: subprocess.Popen | None = None

    def spawn(self, log_through_pipe: bool = False) -> "BotProcess":
        """Start `python -m bot` and return at once.

        Its output goes straight to the log file, or, with `log_through_pipe`, through a
        pipe to a thread here that writes the file: for a bot whose own file writes fail
        (the disk-full test). Read such a log after `stop()`, which waits for the thread."""
        log = open(self.log_path, "ab")
        out = subprocess.PIPE if log_through_pipe else log
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "--env-file", "/nonexistent"], cwd=ROOT,
                                     env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self._copier = None
        if log_through_pipe:
            self._copier = threading.Thread(target=self._copy_output, args=(self.proc.stdout, log), daemon=True)
            self._copier.start()
        else:
            log.close()  # the bot holds its own copy of the descriptor
        return self

    @staticmethod
    def _copy_output(pipe, log) -> None:
        with pipe, log:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                log.write(chunk)
                log.flush()

    def start(self, timeout: float = 90, log_through_pipe: bool = False) -> "BotProcess":
        """Start it and wait until it polls the fake server (or sets its webhook there)."""
        polls, hooks = self.fake.polls, self.fake.webhooks_set
        self.spawn(log_through_pipe)
        deadline = time.monotonic() + timeout
        while self.fake.polls <= polls and self.fake.webhooks_set <= hooks:
            if self.proc.poll() is not None:
                raise AssertionError(f"bot exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"bot did not start polling:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        return self

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> int:
        """Send `sig` and wait (kill if it hangs); a bot already stopped is left as it is."""
        if self.proc is None:
            return 0
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            return self.proc.returncode
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self._copier is not None:
                self._copier.join(10)

    def rss_mb(self) -> float:
        """The running bot's resident memory."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def joined(before: str, line: str) -> str:
    """`before` with a person's `line` after it as the bot joins it: a paragraph of its own (a newline and two
    ideographic spaces; after a text that ends with a newline, the spaces alone)."""
    return before + ("\u3000\u3000" if before.endswith("\n") else "\n\u3000\u3000") + line


def reply_after(fake: FakeTelegram, chat_id: int, text: str, **kw) -> Sent:
    """Send a command; return the bot's first message after it."""
    before = len(fake.chat(chat_id))
    fake.command(chat_id, text, **kw)
    fake.wait_for(lambda: len(fake.chat(chat_id)) > before, 60, f"a reply to {text!r}")
    return fake.chat(chat_id)[before]


def finished_part(fake: FakeTelegram, chat_id: int, text: str, **kw) -> Sent:
    """Send a generating command; wait for its part to be final (buttons on it)."""
    before = {m.message_id for m in fake.chat(chat_id) if m.reply_markup}
    fake.command(chat_id, text, **kw)
    return fake.wait_for(lambda: next((m for m in fake.chat(chat_id)
                                       if m.reply_markup and m.message_id not in before), None),
                         60, f"the part for {text!r}")


def by_part(who: str) -> list[str]:
    """/story who's text, one entry per part (a part's own text may hold blank lines)."""
    return re.split(r"\n\n(?=【\d+】)", who)


def a_part_of(text: str, target: int) -> bool:
    """`text` is what a part asked for `target` characters (/len) should be: at least that long, at most SLACK
    more, and ending just past a sentence end (or, having run to the most, at a pause or right there)."""
    from bot.sentences import CLOSERS, ENDS, PAUSES, SLACK

    if not target <= len(text) <= target + SLACK:
        return False
    body = text.rstrip(CLOSERS)
    return body.endswith(tuple(ENDS)) or (len(text) > target and text.endswith(tuple(PAUSES))) \
        or len(text) == target + SLACK
