"""Small pure pieces of the Telegram adapter: which failures are safe to repeat, the file URL."""

import httpx
from telegram.error import NetworkError, TimedOut

from bot.telegram_app import file_url, never_sent


def raised_from(error: Exception, cause: Exception) -> Exception:
    try:
        raise error from cause
    except Exception as e:  # noqa: BLE001
        return e


def test_only_failures_before_any_byte_was_sent_are_safe_to_repeat():
    request = httpx.Request("POST", "http://127.0.0.1/bot/sendMessage")
    assert never_sent(raised_from(NetworkError("x"), httpx.ConnectError("refused", request=request)))
    assert never_sent(raised_from(TimedOut(), httpx.ConnectTimeout("slow", request=request)))
    assert not never_sent(raised_from(TimedOut(), httpx.ReadTimeout("late", request=request)))
    assert not never_sent(raised_from(NetworkError("x"), httpx.RemoteProtocolError("cut", request=request)))
    # A message that merely mentions connecting is not a connect error (the old check read the text).
    assert not never_sent(NetworkError("Connection reset by peer"))


def test_file_url_changes_only_the_last_bot():
    assert file_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_url("http://botapi.example:8081/bot") == "http://botapi.example:8081/file/bot"
