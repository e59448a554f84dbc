"""When the bot stays in a meeting and when it goes: pure decisions, no I/O.

- A meeting ends (a success, exit 0) when its room is destroyed or no longer exists when the bot
  comes back, or when nobody but interpreters has been in it for a while.
- A lost room connection is retried with capped, jittered exponential backoff until a window runs
  out (a failure, exit 3).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# First retry at once (a dropped socket to a healthy server usually comes back on the first try, and
# a session Janus keeps for a claim should be claimed while it is there), then 0.5, 1, 2, 4, 8, 10 s.
BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 10.0
BACKOFF_JITTER = 0.2  # +-20 %: bots of many meetings behind one proxy do not retry in lockstep


def reconnect_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before reconnect attempt number `attempt` (0 = the first one)."""
    if attempt <= 0:
        return 0.0
    base = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2.0 ** (attempt - 1))
    return base * (1.0 + BACKOFF_JITTER * (2.0 * rand() - 1.0))


def next_attempt_at(lost_at: float, now: float, delay: float, window_s: float) -> float | None:
    """When to try again, or None to give up: no attempt starts after the window has run out, but
    the last one is moved up to the window's end rather than dropped."""
    deadline = lost_at + window_s
    if now >= deadline:
        return None
    return min(now + delay, deadline)


@dataclass(frozen=True)
class Presence:
    """Whether anyone the bot interprets for is in the room, and since when it has been alone."""

    alone_since: float | None  # None: someone is there

    def update(self, people_present: bool, now: float) -> Presence:
        if people_present:
            return Presence(None)
        return self if self.alone_since is not None else Presence(now)

    def leave_at(self, empty_room_s: float) -> float | None:
        """When an empty room ends the meeting (None: not empty, or `empty_room_s` 0 = never)."""
        if self.alone_since is None or empty_room_s <= 0:
            return None
        return self.alone_since + empty_room_s


def empty_room_verdict(presence: Presence, now: float, empty_room_s: float) -> str | None:
    """A reason to leave when the room has held nobody but interpreters for `empty_room_s`."""
    at = presence.leave_at(empty_room_s)
    if at is None or now < at:
        return None
    return f"nobody but interpreters in the room for {empty_room_s:g} s"
