"""A small load test through real HTTP: every chat is answered in full, first text comes soon."""

import pytest

from tests.bot.fake_telegram import FakeTelegram
from tests.bot.harness import BotProcess
from tests.bot.loadtest import run_load


@pytest.mark.slow
def test_eight_chats_at_once(tiny_model_dir, tmp_path):
    fake = FakeTelegram().start()
    bot = BotProcess(fake, tiny_model_dir, tmp_path / "db.sqlite3", tmp_path / "bot.log", LOG_LEVEL="INFO").start()
    try:
        result = run_load(fake, chats=8, length=200)
    finally:
        bot.stop()
        fake.stop()
    print(result)
    assert result["all_complete"]
    assert " ERROR " not in bot.log()
    assert result["first_p95_s"] < result["final_p95_s"]
    assert result["first_p95_s"] < 5.0
