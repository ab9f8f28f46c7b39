"""Small pure pieces of the Telegram adapter: which failures are safe to repeat, the file URL."""

import httpx
from telegram.error import NetworkError, TimedOut

from bot.telegram_app import file_url
from bot.telegram_send import never_sent


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


def test_intermediate_edits_wait_while_telegrams_budget_is_short_first_and_final_texts_do_not():
    import asyncio
    from types import SimpleNamespace

    from bot.flood import FloodLimiter
    from bot.telegram_send import StreamingReply

    limiter = FloodLimiter(per_second=2)
    calls = []

    async def send_message(chat_id, text, reply_markup=None, **where):
        calls.append(("send", text))
        return SimpleNamespace(message_id=1)

    async def edit_message_text(text, chat_id, message_id, reply_markup=None):
        calls.append(("edit", text))

    bot = SimpleNamespace(rate_limiter=limiter, send_message=send_message, edit_message_text=edit_message_text)

    async def go():
        reply = StreamingReply(bot, 7)
        limiter.waiting = 3  # three messages waiting for a budget of two a second
        assert limiter.under_pressure()
        await reply.update("乔峰")  # the first text goes all the same
        reply.last_edit = 0.0  # (long enough ago for an edit)
        await reply.update("乔峰道")  # an intermediate edit: skipped while crowded
        limiter.waiting = 0
        await reply.update("乔峰道：")  # and made once the budget is free again
        limiter.waiting = 3
        reply.last_edit = 0.0
        await reply.finish("乔峰道：“走。”")  # the final text always
    asyncio.run(go())
    assert calls == [("send", "乔峰"), ("edit", "乔峰道："), ("edit", "乔峰道：“走。”")]
