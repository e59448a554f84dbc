"""How late a model's audio deltas arrive relative to their media time: the hold a playout needs.

A translation is played from the moment its playout starts, at real time. Delta k of an item, holding
media from position M_k, is needed at `start + M_k`; it arrives at `a_k`. No gap inside the item iff
`start >= a_k - M_k` for every k >= 1. What the playout can learn is each delta's *lateness*

    lateness_k = (a_k - M_k) - min_{j < k} (a_j - M_j)          (k >= 1, same item)

how much later it came than the earliest schedule the deltas before it promised. A stream sent
faster than real time has negative lateness (each delta is early; 3x real time with 100 ms deltas:
-67 ms); a stream at real time with 0..J ms of random delay before each delta has lateness up to J; a
stream slower than real time adds its drift. The hold a new item needs after its first delta is the
peak of recent lateness (the next item may meet the worst delay seen) plus a frame of margin, for
the 20 ms frame grid and the 1.3 ms the upsampler holds back; never below 0, so a stream ahead of
real time starts at once.

Plus headroom for the next delay being worse than the worst seen: as far beyond the peak as the
peak is beyond the bulk of the lateness (its 90th percentile), at most `max_headroom_s`. Delays come
in two shapes. Steady jitter (every delta 0..J ms late) crowds the bulk up to its peak, which is then
a bound: little headroom. Episodes (a loaded host, a congested link: most deltas on time, a few far
late) leave the peak an outlier, and the next episode is often worse than any seen so far: a
webinar's feeds on a busy machine went from a learnt peak of 24 ms to 40 ms late, 19 -> 69 ms,
36 -> 100 ms, each a gap inside a sentence with the peak plus one frame as the hold. A smooth stream
(1-3 ms, all alike) pays a millisecond or so, a stream ahead of real time nothing.

A pause is not jitter: a delta that comes more than `pause_s` later than the one before it predicts
(the speaker stopped mid-item, the model waits for more input) starts a new schedule for its item
and is not counted, or one pause would hold every later translation for a second.

This is the idea of WebRTC's NetEq (learn the arrival jitter, keep just enough buffered), for deltas
that arrive over a WebSocket: in order, never lost, only late. A peak, not a percentile: the target is
no gap at all inside a translation, and a percentile would budget for a few.

Pure: times are given by the caller, nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class JitterConfig:
    # Recent deltas the peak is taken over: ~30 s of a realtime model's 100 ms deltas. Older
    # conditions are forgotten, so a stream that became smooth stops paying for old jitter.
    window: int = 300
    # Added to the measured peak: the 20 ms frame grid and the upsampler's delay.
    margin_s: float = 0.020
    # Also added: how far the peak stands beyond this quantile of the window's lateness (the bulk),
    # up to `max_headroom_s`: room for the next episode of delay to reach further than the last.
    bulk_quantile: float = 0.9
    max_headroom_s: float = 0.050
    # Never hold longer than this, whatever was measured (a stalled model is not jitter).
    max_hold_s: float = 1.0
    # A delta this much later than the previous one predicts ends a pause in the item's audio.
    pause_s: float = 0.5


@dataclass
class _ItemSchedule:
    media_s: float = 0.0  # media received so far for the item
    earliest: float = math.inf  # min over its deltas so far of (arrival - media position)
    last_offset: float = math.inf  # (arrival - media position) of its latest delta


class ArrivalJitterEstimator:
    """Learns delta lateness across the items of one feed; `hold_s()` is how long to wait before
    starting (or restarting) an item after its first delta."""

    def __init__(self, config: JitterConfig | None = None) -> None:
        self.config = config or JitterConfig()
        self._items: dict[Hashable, _ItemSchedule] = {}
        self._lateness: deque[float] = deque(maxlen=self.config.window)
        self._bulk: float | None = None  # bulk_s() of the window, until the next lateness

    def observe(self, item_id: Hashable, arrival_s: float, media_s: float) -> float | None:
        """A delta of `media_s` seconds of audio for `item_id` arrived at `arrival_s`; returns its
        lateness (None for an item's first delta, or the first after a pause: it sets the schedule)."""
        schedule = self._items.get(item_id)
        if schedule is None:
            schedule = self._items[item_id] = _ItemSchedule()
        offset = arrival_s - schedule.media_s
        if math.isinf(schedule.earliest) or offset - schedule.last_offset > self.config.pause_s:
            lateness = None  # the first delta, or the first after a pause: a new schedule
            schedule.earliest = offset
        else:
            lateness = offset - schedule.earliest
            schedule.earliest = min(schedule.earliest, offset)
        schedule.last_offset = offset
        schedule.media_s += max(0.0, media_s)
        if lateness is not None:
            self._lateness.append(lateness)
            self._bulk = None
        return lateness

    def forget(self, item_id: Hashable) -> None:
        """The item is finished or cut: no more deltas of it will be observed."""
        self._items.pop(item_id, None)

    def peak_s(self) -> float | None:
        """The largest lateness in the window (None before any was measured)."""
        return max(self._lateness) if self._lateness else None

    def hold_s(self) -> float:
        """How long after an item's first delta its playout should start: 0 with nothing learnt or
        when deltas come ahead of real time, else the peak lateness plus a margin plus headroom
        (the peak's distance beyond the bulk, bounded), capped."""
        peak = self.peak_s()
        if peak is None:
            return 0.0
        config = self.config
        headroom = min(max(0.0, peak - max(0.0, self.bulk_s())), config.max_headroom_s)
        return min(max(0.0, peak + config.margin_s + headroom), config.max_hold_s)

    def bulk_s(self) -> float:
        """The window's lateness at `bulk_quantile` (nearest rank below; 0 before any)."""
        if self._bulk is None:
            ranked = sorted(self._lateness)
            self._bulk = ranked[int(self.config.bulk_quantile * (len(ranked) - 1))] if ranked else 0.0
        return self._bulk

    @property
    def tracked_items(self) -> int:
        return len(self._items)
