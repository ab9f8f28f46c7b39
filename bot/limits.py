"""Per-user and global limits: requests per minute and generated characters per hour.

Sliding windows in memory (a restart forgets them, which errs on the side of the
user). Entries older than their window are dropped as they are checked, so memory
stays bounded by the limits themselves.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass


@dataclass
class LimitConfig:
    user_requests_per_minute: int = 20  # commands and button presses of one user
    global_requests_per_minute: int = 600  # of everyone together
    user_chars_per_hour: int = 30_000  # characters generated for one user
    global_chars_per_hour: int = 1_000_000  # for everyone together


class Window:
    """Amounts recorded over the last `seconds`."""

    def __init__(self, seconds: float):
        self.seconds, self.events, self.total = seconds, deque(), 0

    def used(self, now: float) -> int:
        while self.events and self.events[0][0] <= now - self.seconds:
            self.total -= self.events.popleft()[1]
        return self.total

    def add(self, now: float, amount: int) -> None:
        self.events.append((now, amount))
        self.total += amount


class Limits:
    def __init__(self, config: LimitConfig | None = None, clock=time.monotonic):
        self.config, self.clock = config or LimitConfig(), clock
        self.user_requests: dict[int, Window] = {}
        self.user_chars: dict[int, Window] = {}
        self.all_requests, self.all_chars = Window(60), Window(3600)

    def request(self, user_id: int) -> bool:
        """Count one request; False if the user or everyone is over the per-minute limit."""
        now, c = self.clock(), self.config
        mine = self.user_requests.setdefault(user_id, Window(60))
        if mine.used(now) >= c.user_requests_per_minute or self.all_requests.used(now) >= c.global_requests_per_minute:
            return False
        mine.add(now, 1)
        self.all_requests.add(now, 1)
        self._forget_idle(self.user_requests, now)
        return True

    def characters(self, user_id: int, amount: int) -> bool:
        """Reserve `amount` generated characters; False if that would pass an hourly limit."""
        now, c = self.clock(), self.config
        mine = self.user_chars.setdefault(user_id, Window(3600))
        if (mine.used(now) + amount > c.user_chars_per_hour
                or self.all_chars.used(now) + amount > c.global_chars_per_hour):
            return False
        mine.add(now, amount)
        self.all_chars.add(now, amount)
        self._forget_idle(self.user_chars, now)
        return True

    def refund(self, user_id: int, amount: int) -> None:
        """Give back characters reserved for a generation that never started."""
        now = self.clock()
        self.user_chars.setdefault(user_id, Window(3600)).add(now, -amount)
        self.all_chars.add(now, -amount)

    def _forget_idle(self, windows: dict[int, Window], now: float) -> None:
        if len(windows) > 1000:  # drop users with nothing left in their window
            for uid in [u for u, w in windows.items() if w.used(now) == 0]:
                del windows[uid]
