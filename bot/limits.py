"""Per-user and global limits: requests per minute and generated characters per hour.

Sliding windows in memory (a restart forgets them, which errs on the side of the
user). Entries older than their window are dropped as they are checked, so memory
stays bounded by the limits themselves.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class LimitConfig:
    user_requests_per_minute: int = 20  # commands and button presses of one user
    global_requests_per_minute: int = 600  # of everyone together
    user_chars_per_hour: int = 30_000  # characters generated for one user
    global_chars_per_hour: int = 1_000_000  # for everyone together


# Why a quota refused: the user's own limit, or everyone's together (not this user's doing).
USER, EVERYONE = "user", "everyone"


class Window:
    """Amounts recorded over the last `seconds`.

    Events are a list read from `first` on (compacted when half is spent) rather than a
    deque: one window is kept per user for an hour, and an empty deque alone is ~600 bytes
    (100,000 users in an hour: ~60 MB more)."""

    __slots__ = ("seconds", "events", "first", "total")

    def __init__(self, seconds: float):
        self.seconds, self.events, self.first, self.total = seconds, [], 0, 0

    def used(self, now: float) -> int:
        events = self.events
        while self.first < len(events) and events[self.first][0] <= now - self.seconds:
            self.total -= events[self.first][1]
            self.first += 1
        if self.first * 2 > len(events):
            del events[:self.first]
            self.first = 0
        return self.total

    @property
    def empty(self) -> bool:
        return self.first == len(self.events)

    def add(self, now: float, amount: int) -> None:
        self.events.append((now, amount))
        self.total += amount


class Quota:
    """A limit per user and a limit for everyone together, over one sliding window."""

    def __init__(self, seconds: float, per_user: int, everyone: int):
        self.seconds, self.per_user, self.everyone_limit = seconds, per_user, everyone
        self.users: OrderedDict[int, Window] = OrderedDict()  # least recently counted first
        self.everyone = Window(seconds)

    def take(self, now: float, user_id: int, amount: int) -> str | None:
        """Count `amount`; or, counting nothing, say which limit it would pass (USER or EVERYONE)."""
        mine = self.users.get(user_id)
        if (mine.used(now) if mine else 0) + amount > self.per_user:
            return USER
        if self.everyone.used(now) + amount > self.everyone_limit:
            return EVERYONE
        self.add(now, user_id, amount)
        return None

    def add(self, now: float, user_id: int, amount: int) -> None:
        self.users.setdefault(user_id, Window(self.seconds)).add(now, amount)
        self.users.move_to_end(user_id)
        self.everyone.add(now, amount)
        # Users whose window has emptied are forgotten, oldest first: each one's window empties
        # `seconds` after it was last counted, so this stops at the first that still counts
        # (a few steps per call, however many users an hour brings; scanning them all was quadratic).
        while self.users:
            oldest = next(iter(self.users.values()))
            oldest.used(now)  # drops its events that left the window
            if not oldest.empty:
                break
            self.users.popitem(last=False)


class Limits:
    def __init__(self, config: LimitConfig | None = None, clock=time.monotonic):
        c = self.config = config or LimitConfig()
        self.clock = clock
        self.requests = Quota(60, c.user_requests_per_minute, c.global_requests_per_minute)
        self.chars = Quota(3600, c.user_chars_per_hour, c.global_chars_per_hour)

    def request(self, user_id: int) -> str | None:
        """Count one request; or USER / EVERYONE: who is over the per-minute limit."""
        return self.requests.take(self.clock(), user_id, 1)

    def characters(self, user_id: int, amount: int) -> str | None:
        """Reserve `amount` generated characters; or USER / EVERYONE: whose hourly limit it would pass."""
        return self.chars.take(self.clock(), user_id, amount)

    def refund(self, user_id: int, amount: int) -> None:
        """Give back characters reserved for a generation that never started."""
        self.chars.add(self.clock(), user_id, -amount)
