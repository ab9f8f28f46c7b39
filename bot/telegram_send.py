"""Sending to Telegram: one Bot API call with its retries, a part streamed by edits, a chat's Output.

A part's text appears with its first chunk and grows by edits, at most one edit per
second per message; text past 4,096 characters continues in a new message. Every
message of a part goes to the forum topic it was asked in, and a reply to a command
still arrives when the command was deleted meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from telegram import ReplyParameters
from telegram.constants import MessageLimit
from telegram.error import BadRequest, NetworkError, TelegramError, TimedOut

log = logging.getLogger(__name__)
CALL_ATTEMPTS = 9  # tries of one Bot API call (429s and network failures waited out between them)
EDIT_INTERVAL = 1.0  # seconds between edits of one message (Telegram's flood limits)


def never_sent(error: NetworkError) -> bool:
    """True when the request cannot have reached Telegram: the connection never opened, or no
    pooled connection was free (PTB raises its errors from httpx's)."""
    return isinstance(error.__cause__, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


async def call_telegram(fn, /, *args, idempotent: bool = False, **kwargs):
    """Call a Bot API method, waiting out network failures; 'not modified' is not an error.

    (429s are waited out below this, by the application's rate limiter: see build_application.)
    A call that timed out may have reached Telegram, so it is repeated only when
    repeating is harmless (`idempotent`, e.g. an edit to the same text); a send
    that timed out is not sent again, so no text is ever sent twice.
    """
    delay = 1.0
    for _ in range(CALL_ATTEMPTS - 1):
        try:
            return await fn(*args, **kwargs)
        except BadRequest as e:
            if "not modified" in str(e).lower():
                return None
            raise
        except NetworkError as e:  # TimedOut included
            # A connection that never opened carried nothing: safe to repeat. A timeout or a
            # dropped answer may follow a delivered send, so then only idempotent calls repeat.
            timed_out = isinstance(e, TimedOut)
            if not (idempotent or never_sent(e)):
                raise
            log.warning("%s %s; trying again in %.0f s", fn.__name__, "timed out" if timed_out else f"failed ({e})",
                        delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30.0)
    return await fn(*args, **kwargs)


class StreamingReply:
    """One part's text on Telegram: pages of at most 4,096 characters, kept up to date by edits."""

    def __init__(self, bot, chat_id: int, limit: int = MessageLimit.MAX_TEXT_LENGTH, thread_id: int | None = None):
        self.bot, self.chat_id, self.limit = bot, chat_id, limit
        self.thread_id = thread_id  # the forum topic the part was asked in (None: the chat itself, or General)
        self.sent: list[tuple[int, str]] = []  # (message_id, text shown) per page
        self.last_edit = 0.0

    def pages(self, text: str) -> list[str]:
        return [text[i:i + self.limit] for i in range(0, len(text), self.limit)] or [""]

    async def update(self, text: str) -> None:
        """Show `text` if a second has passed since the last edit (the first text at once), and
        skip the edit while Telegram's budget in all is short (the next one carries its text)."""
        if self.sent and (time.monotonic() - self.last_edit < EDIT_INTERVAL or self.crowded()):
            return
        await self._sync(text, None)

    def crowded(self) -> bool:
        """Telegram's budget in all is short (the bot's FloodLimiter says; a bot without a limiter never is)."""
        limiter = self.bot.rate_limiter
        return limiter is not None and limiter.under_pressure()

    async def finish(self, text: str, markup=None) -> None:
        """Deliver the final text in full, buttons under the last page."""
        wait = EDIT_INTERVAL - (time.monotonic() - self.last_edit)
        if self.sent and wait > 0:
            await asyncio.sleep(wait)
        await self._sync(text, markup)

    async def _sync(self, text: str, markup) -> None:
        pages = [p for p in self.pages(text) if p.strip()]
        if not pages:
            if markup is None:
                return  # nothing visible yet
            pages = ["……"]  # a part of only blank lines still gets its buttons
        for i, page in enumerate(pages):
            last = i == len(pages) - 1
            kb = markup if last else None
            if i < len(self.sent):
                message_id, shown = self.sent[i]
                if shown == page and kb is None:
                    continue
                await call_telegram(self.bot.edit_message_text, page, chat_id=self.chat_id,
                                    message_id=message_id, reply_markup=kb, idempotent=True)
                self.sent[i] = (message_id, page)
            else:
                try:
                    msg = await call_telegram(self.bot.send_message, self.chat_id, page, reply_markup=kb,
                                              message_thread_id=self.thread_id)
                except TimedOut:
                    # It may have arrived: never send it again. While streaming, the next update sends
                    # the grown page as a new message; a timed-out final send is left as it is.
                    log.warning("sending to chat %s timed out after %s; not repeating it", self.chat_id,
                                "the final text" if markup is not None else "a first chunk")
                    return
                self.sent.append((msg.message_id, page))
        self.last_edit = time.monotonic()


def topic_of(message) -> int | None:
    """The forum topic a message is in (None outside topics: a private chat, a group, General)."""
    if message is None or not getattr(message, "is_topic_message", False):
        return None
    return message.message_thread_id


def cause(error: BaseException) -> str:
    """One line naming what went wrong: the error's type and text, and the network error below it."""
    text = f"{type(error).__name__}: {error}"
    below = error.__cause__
    return f"{text} (from {type(below).__name__})" if below is not None else text


class TelegramOutput:
    """bot.frontend's Output for one chat: messages, a part streamed by edits with its buttons, a document.

    `message` is the command answered, if any: in a group the reply quotes it, and is sent all the
    same if it was deleted meanwhile. Everything goes to the topic the request came from."""

    def __init__(self, bot, chat_id: int, message=None, thread_id: int | None = None, buttons=None,
                 votes: bool | None = None, reply_to: int | None = None):
        self.bot, self.chat_id, self.message = bot, chat_id, message
        self.thread_id = thread_id if thread_id is not None else topic_of(message)
        self.buttons = buttons  # part -> InlineKeyboardMarkup under a finished part
        in_group = message is not None and getattr(message.chat, "type", "private") != "private"
        self.votes = in_group if votes is None else votes  # a group votes on choices (bot.choices)
        self.reply_to = reply_to  # a message id to quote, in a group (a line that waited its turn)

    def _quote(self) -> ReplyParameters | None:
        if self.reply_to is not None:
            return ReplyParameters(self.reply_to, allow_sending_without_reply=True)
        message = self.message
        if message is None or getattr(message.chat, "type", "private") == "private":
            return None  # in a private chat a reply needs no quote
        return ReplyParameters(message.message_id, allow_sending_without_reply=True)

    async def say(self, text: str) -> None:
        await call_telegram(self.bot.send_message, self.chat_id, text, message_thread_id=self.thread_id,
                            reply_parameters=self._quote())

    def part_view(self) -> "TelegramPart":
        return TelegramPart(StreamingReply(self.bot, self.chat_id, thread_id=self.thread_id), self.buttons)

    async def send_story(self, text: str) -> None:
        await call_telegram(self.bot.send_document, self.chat_id, text.encode("utf-8"), filename="story.txt",
                            message_thread_id=self.thread_id)


class TelegramPart:
    """A part streamed into a chat. If showing it fails (the message was deleted, the bot blocked, a
    dropped connection, a 429 past its retries), the part is still written and saved: the text shown
    stops growing, and the whole part is sent afresh at the end."""

    def __init__(self, reply: StreamingReply, buttons):
        self.reply, self.buttons, self.failed = reply, buttons, False

    async def update(self, text: str) -> None:
        if not self.failed:
            self.failed = not await self._shown(self.reply.update(text))

    async def finish(self, text: str, part) -> None:
        if self.failed:  # what was shown is gone: the whole part in new messages
            self.reply = StreamingReply(self.reply.bot, self.reply.chat_id, thread_id=self.reply.thread_id)
        await self._shown(self.reply.finish(text, self.buttons(part) if self.buttons else None))

    async def _shown(self, call) -> bool:
        try:
            await call
            return True
        except TelegramError as e:  # any Bot API failure: showing stops, writing and saving go on
            log.warning("could not show a part in chat %s (%s); it is written and saved all the same",
                        self.reply.chat_id, cause(e))
            return False
