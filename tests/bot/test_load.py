"""A small load test through real HTTP: every chat is answered in full, first text comes soon."""

import pytest

from tests.bot.loadtest import run_load


@pytest.mark.slow
def test_eight_chats_at_once(fake, start_bot):
    bot = start_bot(fake, LOG_LEVEL="INFO")
    result = run_load(fake, chats=8, length=200)
    print(result)
    assert result["all_complete"]
    assert " ERROR " not in bot.log()
    assert result["first_p95_s"] < result["final_p95_s"]
    assert result["first_p95_s"] < 5.0
