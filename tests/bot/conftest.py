"""Fixtures for the bot's end-to-end tests: a fake Bot API server and bots started against it."""

import pytest

from tests.bot.fake_telegram import FakeTelegram
from tests.bot.harness import BotProcess


@pytest.fixture
def fake():
    """A fake Bot API server of this test's own."""
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def start_bot(tiny_model_dir, tmp_path):
    """start_bot(fake, db="db", log="bot.log", log_through_pipe=False, **env): `python -m bot` on the
    tiny model, polling `fake`; every bot started is stopped when the test ends."""
    started = []

    def start(fake, db="db", log="bot.log", log_through_pipe=False, **env) -> BotProcess:
        bot = BotProcess(fake, tiny_model_dir, tmp_path / db, tmp_path / log, **env).start(
            log_through_pipe=log_through_pipe)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.stop()
