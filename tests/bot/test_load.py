"""A small load test through real HTTP: every chat is answered in full, first text comes soon."""

import pytest

from bench.load import run_load
from tests.bot.fake_telegram import FakeTelegram


@pytest.mark.slow
def test_eight_chats_at_once(fake, start_bot):
    bot = start_bot(fake, LOG_LEVEL="INFO")
    result = run_load(fake, chats=8, length=200)
    print(result)
    assert result["all_complete"]
    assert " ERROR " not in bot.log()
    assert result["first_p95_s"] < result["final_p95_s"]


@pytest.mark.slow
def test_chats_and_groups_within_telegrams_flood_limits(start_bot):
    """Against a fake that answers 429 past Telegram's limits exactly (no slack), the bot's own budget,
    10 % under them, gets none."""
    with FakeTelegram(flood_limits=True, flood_slack=0) as fake:
        start_bot(fake, LOG_LEVEL="INFO")
        result = run_load(fake, chats=12, length=300, groups=0.25)
        assert result["groups"] == 3 and result["all_complete"]
        assert result["refused_429"] == 0
        assert fake.flood.admit(1) == 0  # (the fake does count: a burst into one chat is refused)
        assert any(fake.flood.admit(2) for _ in range(6))
