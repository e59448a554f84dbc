"""Clocks for pacing audio: the real monotonic one, and a controllable one for tests and simulations.

Pacing code asks for absolute deadlines (`sleep_until(start + n * period)`) instead of relative sleeps,
so that lateness of one wake-up never accumulates into drift.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a clock that never jumps backwards (its origin is arbitrary)."""
        ...

    async def sleep_until(self, t: float) -> None:
        """Return once `now() >= t`; at once if `t` has already passed."""
        ...


class MonotonicClock:
    """`time.monotonic()`: unaffected by wall-clock adjustments, unlike the `time.time()` aiortc uses."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, t: float) -> None:
        delay = t - time.monotonic()
        # asyncio's default loop times its timers with time.monotonic() too, so this wakes at or just
        # after `t` (epoll rounds its timeout up to the next millisecond), never before it.
        # A deadline already past still yields once (sleep(0)): a paced loop catching up after a
        # stall must let the loop read its sockets between frames, or it plays out the audio queued
        # before the stall and then silence for the audio that is waiting unread in a socket.
        await asyncio.sleep(max(delay, 0.0))


class FakeClock:
    """A clock that moves only when told to.

    With `auto_advance=True` (the default) a sleeper jumps the clock straight to its deadline, so a
    paced loop runs as fast as the CPU allows while seeing exactly the times it asked for. With
    `auto_advance=False` sleepers wait until a test calls `advance()` / `set()`, which lets a test
    make the consumer late on purpose.
    """

    def __init__(self, start: float = 0.0, *, auto_advance: bool = True) -> None:
        self._now = start
        self.auto_advance = auto_advance
        self.sleeps: list[float] = []  # every deadline asked for, in order
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, t: float) -> None:
        self.sleeps.append(t)
        if t <= self._now:
            # A real sleep of zero still yields to the loop; keep that property so code under test
            # cannot starve other tasks only when run against this clock.
            await asyncio.sleep(0)
            return
        if self.auto_advance:
            self.set(t)
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (t, next(self._order), future))
        await future

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)

    def set(self, t: float) -> None:
        """Move the clock to `t` (never backwards) and wake every sleeper whose deadline has come."""
        self._now = max(self._now, t)
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)

    @property
    def waiting(self) -> int:
        """How many sleepers are blocked on a deadline still in the future."""
        return sum(1 for _, _, future in self._waiters if not future.done())
