"""Parts stream from tasks the bot owns, not from the handler that asked for them.

A handler that starts a part (/write, /continue, 继续, 重写) hands its streaming to
`PartTasks.start` and returns at once, so a slow or hung Bot API holds no update slot:
other chats' commands and presses are answered meanwhile. At most `limit` parts are in
flight (writing, or still sending their text); past that a request is told the bot is
busy, so MAX_JOBS bounds what a stall can pile up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine

log = logging.getLogger(__name__)


class PartTasks:
    def __init__(self, limit: int):
        self.limit = limit  # parts in flight at most (MAX_JOBS)
        self.tasks: set[asyncio.Task] = set()
        self.per_chat: dict[int, int] = {}  # chat id -> its parts in flight
        self.lines_waiting: set[int] = set()  # chats where a line was queued while a part was in flight

    def start(self, chat_id: int, part: Callable[[], Coroutine]) -> bool:
        """Run `part()` (streaming one part into `chat_id`) in a task of its own; False (and nothing
        run) when `limit` parts are in flight already."""
        if len(self.tasks) >= self.limit:
            return False

        async def run() -> None:
            try:
                await part()
            finally:  # the chat is free the moment `part` returns: no await between its last check and this
                left = self.per_chat.pop(chat_id, 1) - 1
                if left > 0:
                    self.per_chat[chat_id] = left

        task = asyncio.get_running_loop().create_task(run(), name=f"part in chat {chat_id}")
        self.tasks.add(task)
        self.per_chat[chat_id] = self.per_chat.get(chat_id, 0) + 1
        task.add_done_callback(self._done)
        return True

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the part reports its own failures
            log.error("a part's task failed: %s", task.exception())

    def line_queued(self, chat_id: int) -> None:
        """A line joined the chat's queue while its part is in flight: that part takes the queue's turn."""
        self.lines_waiting.add(chat_id)

    def take_lines(self, chat_id: int) -> bool:
        """Whether lines were queued in the chat while its part was in flight (and forget it): only then
        does the part's task look at the queue, so a chat is free the moment its part is shown."""
        if chat_id in self.lines_waiting:
            self.lines_waiting.discard(chat_id)
            return True
        return False

    def writing(self, chat_id: int) -> bool:
        """A part of this chat is in flight (being written or sent)."""
        return chat_id in self.per_chat

    async def stop(self, timeout: float = 2.0) -> None:
        """Give the parts in flight `timeout` seconds to tell their chats they stopped, then cancel them."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        for task in list(self.tasks):
            task.cancel()
