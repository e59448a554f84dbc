"""How often interpreters may be started: per client, per meeting, and with back-off for a meeting
whose interpreter keeps failing (a wrong meeting id, a room that refuses the bot, a provider outage).

Each start is a process that joins a room and may open paid model sessions, so a script looping on
the start button must be slowed down, and a meeting that fails every time must not be retried at the
speed of a click. The policy is a pure object over an injected clock; the server asks it before each
start and tells it how each interpreter ended.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True)
class StartLimits:
    client_starts: int = 20  # start requests per client per window (a page clicks once per meeting)
    meeting_starts: int = 6  # interpreters launched per meeting per window
    window_s: float = 600.0
    backoff_first_s: float = 15.0  # wait after a meeting's first failure; doubles with each one after
    backoff_max_s: float = 900.0
    max_tracked: int = 10_000  # clients and meetings remembered; the oldest are forgotten first


@dataclass(frozen=True)
class Refusal:
    retry_after_s: int
    reason: str


class _Window:
    """Times of recent events, at most `limit` of them."""

    def __init__(self, limit: int) -> None:
        self.times: deque[float] = deque(maxlen=limit)

    def wait(self, now: float, window_s: float) -> float:
        """Seconds until one more event fits (0: it fits now)."""
        if len(self.times) < (self.times.maxlen or 0):
            return 0.0
        return max(0.0, self.times[0] + window_s - now)


@dataclass
class _Failures:
    count: int = 0
    last_at: float = 0.0


class StartLimiter:
    def __init__(self, limits: StartLimits | None = None, *, clock: Callable[[], float]) -> None:
        self.limits = limits or StartLimits()
        self._clock = clock
        self._clients: OrderedDict[str, _Window] = OrderedDict()
        self._meetings: OrderedDict[str, _Window] = OrderedDict()
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def backoff_s(self, failures: int) -> float:
        """Wait after `failures` consecutive failures: 0, first, 2 x first, 4 x first ... up to max."""
        if failures <= 0:
            return 0.0
        limits = self.limits
        return min(limits.backoff_max_s, limits.backoff_first_s * 2.0 ** min(failures - 1, 30))

    def request(self, client: str) -> Refusal | None:
        """A start request from `client`: counted, and refused when the client sends too many."""
        now = self._clock()
        window = self._entry(self._clients, client, lambda: _Window(self.limits.client_starts))
        wait = window.wait(now, self.limits.window_s)
        if wait > 0:
            return Refusal(_seconds(wait), "too many start requests from this address; try again later")
        window.times.append(now)
        return None

    def launch(self, meeting: str) -> Refusal | None:
        """Whether an interpreter may be launched for `meeting` now; counted when it may."""
        now = self._clock()
        failed = self._failures.get(meeting)
        if failed is not None:
            wait = failed.last_at + self.backoff_s(failed.count) - now
            if wait > 0:
                return Refusal(
                    _seconds(wait),
                    f"the interpreter for this meeting failed {failed.count} time"
                    f"{'s' if failed.count > 1 else ''} in a row; the server waits before trying again",
                )
        window = self._entry(self._meetings, meeting, lambda: _Window(self.limits.meeting_starts))
        wait = window.wait(now, self.limits.window_s)
        if wait > 0:
            return Refusal(
                _seconds(wait), "too many interpreters were started for this meeting; try again later"
            )
        window.times.append(now)
        return None

    def ended(self, meeting: str, *, failed: bool) -> None:
        """How a meeting's interpreter ended: a failure extends the back-off, anything else clears it."""
        if not failed:
            self._failures.pop(meeting, None)
            return
        record = self._entry(self._failures, meeting, _Failures)
        record.count += 1
        record.last_at = self._clock()

    def _entry(self, table: OrderedDict[str, _T], key: str, new: Callable[[], _T]) -> _T:
        value = table.get(key)
        if value is None:
            value = table[key] = new()
            while len(table) > self.limits.max_tracked:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return value


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))
