"""Telegram's flood limits, kept before every request to a chat (python-telegram-bot's rate-limiter hook).

Telegram allows a bot about 30 messages a second in all, 20 a minute into one group and
about one a second into one chat; past them it answers 429 with a time to wait. Every
send and edit waits here for its turn in all three (leaky buckets from aiolimiter), at
90 % of those rates by default (Telegram's own counting is not ours to see: a margin),
and a 429 pauses only the chat it was for: PTB's own AIORateLimiter would pause every chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

CHAT_BURST = 3  # messages one chat may get at once (a notice, a part's first page …), then CHAT_RATE a second
CHAT_RATE = 0.9  # messages a second into one chat: Telegram's "about one", less 10 %
BUCKETS_KEPT = 10_000  # chats and groups whose buckets are kept; past it the idle ones are forgotten


def seconds(retry_after) -> float:
    """RetryAfter.retry_after is an int or a timedelta, depending on PTB settings."""
    return retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else float(retry_after)


class FloodLimiter(BaseRateLimiter[int]):
    def __init__(self, per_second: int = 27, group_per_minute: int = 18, chat_per_second: float = CHAT_RATE,
                 max_retries: int = 8):
        self.overall = AsyncLimiter(per_second, 1)
        self.group_per_minute, self.chat_per_second, self.max_retries = group_per_minute, chat_per_second, max_retries
        self.groups: dict[int | str, AsyncLimiter] = {}
        self.chats: dict[int | str, AsyncLimiter] = {}
        self.paused_until: dict[int | str, float] = {}  # chat -> time.monotonic() its 429 ends
        self.waiting = 0  # messages waiting for their turn now

    def under_pressure(self) -> bool:
        """More than a second's worth of messages in all is waiting: intermediate edits should wait
        (be skipped: the next one, or the final text, carries their text) so first and final texts go."""
        return self.waiting > self.overall.max_rate

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _bucket(self, buckets: dict, key, rate: float, period: float) -> AsyncLimiter:
        if key not in buckets and len(buckets) >= BUCKETS_KEPT:
            for idle in [k for k, b in buckets.items() if b.has_capacity(b.max_rate)]:
                del buckets[idle]
        return buckets.setdefault(key, AsyncLimiter(rate, period))

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        chat = data.get("chat_id")
        if chat is None:  # not a message to a chat (getUpdates, answerCallbackQuery …)
            return await callback(*args, **kwargs)
        with contextlib.suppress(ValueError, TypeError):
            chat = int(chat)
        self.waiting += 1
        try:
            return await self._in_turn(callback, args, kwargs, endpoint, chat)
        finally:
            self.waiting -= 1

    async def _in_turn(self, callback, args, kwargs, endpoint, chat):
        for attempt in range(self.max_retries + 1):
            wait = self.paused_until.get(chat, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.paused_until.get(chat, 0.0) <= time.monotonic():
                self.paused_until.pop(chat, None)
            async with contextlib.AsyncExitStack() as turns:
                await turns.enter_async_context(
                    self._bucket(self.chats, chat, CHAT_BURST, CHAT_BURST / self.chat_per_second))
                if not isinstance(chat, int) or chat < 0:  # a group, supergroup or channel
                    await turns.enter_async_context(self._bucket(self.groups, chat, self.group_per_minute, 60))
                await turns.enter_async_context(self.overall)
                try:
                    return await callback(*args, **kwargs)
                except RetryAfter as e:
                    if attempt == self.max_retries:
                        raise
                    pause = seconds(e.retry_after) + 0.1
                    log.warning("Telegram asked to wait %.0f s (429) before %s to chat %s", pause, endpoint, chat)
                    self.paused_until[chat] = time.monotonic() + pause
        return None  # not reached: the last attempt returns or raises
