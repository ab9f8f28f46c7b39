"""`python -m bot --check`, the container's health check: healthy only while the Bot API answers this token."""

import socket
import subprocess
import sys

from tests.bot.fake_telegram import TOKEN
from tests.conftest import ROOT


def check(**env) -> subprocess.CompletedProcess:
    settings = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TELEGRAM_BOT_TOKEN": TOKEN, **env}
    return subprocess.run([sys.executable, "-m", "bot", "--check", "--env-file", "/nonexistent"], cwd=ROOT,
                          env=settings, capture_output=True, text=True, timeout=60)


def a_closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once this closes


def test_healthy_while_the_bot_api_answers_and_not_otherwise(fake):
    ok = check(TELEGRAM_BASE_URL=fake.base_url)
    assert ok.returncode == 0 and ok.stdout.startswith("healthy: @"), ok.stdout + ok.stderr
    gone = check(TELEGRAM_BASE_URL=f"http://127.0.0.1:{a_closed_port()}/bot", TELEGRAM_TIMEOUT="3")
    assert gone.returncode == 1 and gone.stdout.startswith("unhealthy: Bot API at") and "ConnectError" in gone.stdout
    refused = check(TELEGRAM_BASE_URL=fake.base_url, TELEGRAM_BOT_TOKEN="123456789:AAOtherTokenTheFakeDoesNotKnow_xyz")
    assert refused.returncode == 1 and "refused TELEGRAM_BOT_TOKEN" in refused.stdout
    missing = check(TELEGRAM_BASE_URL=fake.base_url, TELEGRAM_BOT_TOKEN="")
    assert missing.returncode == 1 and "TELEGRAM_BOT_TOKEN is not set" in missing.stdout
    for done in (ok, gone, refused, missing):  # one line, no traceback, never the token
        assert len(done.stdout.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert TOKEN not in done.stdout + done.stderr and "AAOtherToken" not in done.stdout + done.stderr
