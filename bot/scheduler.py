"""Cross-chat batching: every chat that is generating shares one batched model call per chunk.

One worker task runs the model in a single background thread (never on the event
loop). Each round it takes up to `max_batch` active jobs — those served longest ago
first — and generates one chunk for all of them in one `generate` call: rows read
their own prompt (new jobs) or carry on from their own state. A job that arrives
while a round is running joins at the next round instead of waiting for the others
to finish, and every job gets one chunk per round, so a 2,000-character story and a
100-character one advance side by side. More than `max_jobs` jobs at once: `Busy`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

import numpy as np

log = logging.getLogger(__name__)


class Busy(Exception):
    """Too many generations in flight; try again shortly."""


class Stopped(Exception):
    """The bot is shutting down: this job was abandoned before it finished."""


MARKS = 3  # round ends whose state a job keeps (its newest), for a part cut short of the job's end


class JobState(Enum):
    QUEUED = "queued"  # still reading `read` (its first rounds)
    RUNNING = "running"  # has read it: each round writes a chunk from its state
    DONE = "done"  # wrote all it was asked for
    CANCELLED = "cancelled"  # its listener stopped, or the scheduler stopped
    FAILED = "failed"  # a model call failed (its stream raised the error)


@dataclass(eq=False)  # a job is itself: compared by identity
class Job:
    read: str  # text still to read before generating (a prompt, or a story's tail after a restart)
    states: np.ndarray  # [S, 1, H], the state the job starts from, then its latest state
    remaining: int  # characters still to generate
    temperature: float
    pieces: asyncio.Queue = field(default_factory=asyncio.Queue)  # str pieces, then None (or an exception)
    state: JobState = JobState.QUEUED
    last_served: float = 0.0
    order: int = 0
    chunk: int | None = None  # characters in each of its rounds (None: first_chunk, then chunk)
    until: Callable[[str], bool] | None = None  # done early once its text so far satisfies it
    written: str = ""  # its text so far (kept only for `until`)
    produced: int = 0  # characters written so far
    # (characters written, state [S, 1, H] there) at its newest round ends: a part cut short of its end
    # (at a sentence end) goes on from the nearest of these, reading only the few characters past it.
    marks: deque = field(default_factory=lambda: deque(maxlen=MARKS))

    @property
    def active(self) -> bool:
        """Still wants rounds (queued or running)."""
        return self.state in (JobState.QUEUED, JobState.RUNNING)

    def cancel(self) -> None:
        """Stop giving it rounds (nothing more is written to its stream); a finished job stays as it was."""
        if self.active:
            self.state = JobState.CANCELLED


@dataclass
class SchedulerConfig:
    max_batch: int = 32  # rows in one model call
    max_jobs: int = 1000  # jobs in flight (writing or waiting their turn) before new ones get Busy
    first_chunk: int = 12  # characters in a job's first round: the first text appears soon
    chunk: int = 64  # characters per round after the first
    read_chunk: int = 64  # characters of a job's prompt read per round: a 1,000-character read holds no one up


class Scheduler:
    def __init__(self, model, config: SchedulerConfig | None = None):
        self.model = model
        self.config = config or SchedulerConfig()
        self.jobs: list[Job] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self._task: asyncio.Task | None = None
        self._counter = itertools.count()
        self._closing = False
        self.rounds = 0  # model calls made (for benchmarks)
        self.round_seconds = 0.0  # how long a model call takes lately (a moving average), for queue estimates

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        """Abandon every job (their streams end with Stopped) and stop the worker."""
        self._closing = True
        for job in self.jobs:
            job.cancel()
            job.pieces.put_nowait(Stopped())
        self.jobs.clear()
        self._wake.set()
        if self._task:
            await asyncio.wait([self._task], timeout=10)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def submit(self, read: str, states: np.ndarray, length: int, temperature: float, chunk: int | None = None,
               until: Callable[[str], bool] | None = None) -> Job:
        """A job that reads `read` from `states`, then writes `length` characters, or fewer: it is done as soon
        as `until(text so far)` holds, checked after each of its rounds of `chunk` characters (bot.choices'
        beats: done at their first sentence end)."""
        if self._closing:
            raise Busy("shutting down")
        if len(self.jobs) >= self.config.max_jobs:
            raise Busy(f"{len(self.jobs)} generations in flight")
        job = Job(read, states, length, temperature, order=next(self._counter), chunk=chunk, until=until)
        if length <= 0:
            job.state = JobState.DONE
            job.pieces.put_nowait(None)
            return job
        self.jobs.append(job)
        self._wake.set()
        return job

    def queue_wait(self, job: Job) -> tuple[int, float]:
        """(jobs that must be served before `job`'s first text, the seconds that should take).

        Jobs not yet served come first, oldest first, max_batch a round, so a new job waits
        for those submitted before it: a round per max_batch of them."""
        if job.last_served:
            return 0, 0.0
        ahead = sum(1 for j in self.jobs if j.active and not j.last_served and j.order < job.order)
        return ahead, (ahead // self.config.max_batch) * self.round_seconds

    async def stream(self, job: Job):
        """Yield the job's text pieces as rounds produce them."""
        try:
            while True:
                piece = await job.pieces.get()
                if piece is None:
                    return
                if isinstance(piece, BaseException):
                    raise piece
                yield piece
        finally:
            job.cancel()  # a consumer that stops listening frees its row

    async def call(self, fn):
        """fn() on the model's thread, between rounds (a scoring call: bot.flavour), off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            self.jobs = [j for j in self.jobs if j.active]
            if not self.jobs:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = sorted(self.jobs, key=lambda j: (j.last_served, j.order))[: self.config.max_batch]
            # Jobs with more to read than one round's share read it first, in a call of their own that
            # writes nothing; the others write meanwhile (each call is read_chunk or chunk steps).
            reading = [j for j in batch if j.state is JobState.QUEUED and len(j.read) > self.config.read_chunk]
            if reading and not await self._read(loop, reading):
                continue
            batch = [j for j in batch if j not in reading and j.active]
            if not batch:
                continue
            # Jobs with a round size of their own (beats that stop at a sentence end) take the others' rounds
            # when they share one, so they never make the others' rounds shorter.
            usual = [self.config.chunk if j.state is JobState.RUNNING else self.config.first_chunk
                     for j in batch if not j.chunk]
            n = min(min(j.remaining for j in batch), min(usual) if usual else min(j.chunk for j in batch))
            prompts = [j.read for j in batch]  # "" once read
            states = np.concatenate([j.states for j in batch], axis=1)
            temps = [j.temperature for j in batch]
            done = await self._call(loop, batch, partial(self.model.generate, prompts, states, length=n,
                                                         temperature=temps))
            if done is None:
                continue
            texts, new_states = done
            self.rounds += 1
            now = time.monotonic()
            for i, j in enumerate(batch):
                if not j.active:  # cancelled while the round ran
                    continue
                j.state, j.read, j.last_served = JobState.RUNNING, "", now
                j.states = new_states[:, i:i + 1, :].copy()
                j.remaining -= n
                j.produced += n
                j.marks.append((j.produced, j.states))
                j.pieces.put_nowait(texts[i])
                if j.until is not None:
                    j.written += texts[i]
                    if j.until(j.written):
                        j.remaining = 0
                if j.remaining <= 0:
                    j.state = JobState.DONE
                    j.pieces.put_nowait(None)

    async def _read(self, loop, jobs: list[Job]) -> bool:
        """Read the next read_chunk characters of each job's text (nothing written); False if it failed."""
        size = self.config.read_chunk
        done = await self._call(loop, jobs, partial(self.model.generate, [j.read[:size] for j in jobs],
                                                    np.concatenate([j.states for j in jobs], axis=1), length=0,
                                                    temperature=[j.temperature for j in jobs]))
        if done is None:
            return False
        self.rounds += 1
        now = time.monotonic()
        for i, j in enumerate(jobs):
            j.read, j.states, j.last_served = j.read[size:], done[1][:, i:i + 1, :].copy(), now
        return True

    async def _call(self, loop, jobs: list[Job], call):
        """Run one model call off the event loop: its result, or None when it failed (its jobs fail with it)."""
        try:
            started = time.monotonic()
            result = await loop.run_in_executor(self._executor, call)
            self.round_seconds = 0.8 * self.round_seconds + 0.2 * (time.monotonic() - started)
            return result
        except Exception as e:  # a failed round fails its jobs, not the bot
            log.exception("generation round failed")
            for j in jobs:
                j.state = JobState.FAILED
                j.pieces.put_nowait(e)
            return None
