"""Running `python -m bot` as a subprocess against the fake Bot API server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.bot.fake_telegram import TOKEN, FakeTelegram
from tests.conftest import ROOT


class BotProcess:
    def __init__(self, fake: FakeTelegram, model_dir: Path, db: Path, log: Path, **env):
        self.fake, self.log_path = fake, log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "TELEGRAM_BOT_TOKEN": TOKEN,
                    "TELEGRAM_BASE_URL": fake.base_url, "MODEL_DIR": str(model_dir), "DATABASE_PATH": str(db),
                    "LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in env.items()}}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "BotProcess":
        polls = self.fake.polls
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "--env-file", "/nonexistent"], cwd=ROOT,
                                     env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while self.fake.polls <= polls:
            if self.proc.poll() is not None:
                raise AssertionError(f"bot exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"bot did not start polling:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        return self

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
