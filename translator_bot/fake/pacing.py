"""When the deltas of one response leave the fake: the `stream_pace` fault control.

By default the fake streams a response `FakeOptions.realtime_speed` times faster than real time, one
delta after another. The real service has slower days: a model that streams at about real time, each
delta a little late. With a `StreamPace`, delta k of a response is due `M_k / real_time_factor` after
the response's first audio (M_k: the audio sent before it) and leaves after a further random delay of
0..jitter_ms. The delays do not add up (each is counted from the delta's own due time), and a delta
never leaves before the one ahead of it, as on one ordered socket. Seeded: a run can be repeated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class StreamPace:
    real_time_factor: float  # 1.0: one second of audio per second; 0.95: slower than real time
    jitter_ms: float  # uniform 0..jitter_ms of extra delay before each delta
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.real_time_factor > 0:
            raise ValueError(f"real_time_factor must be > 0, got {self.real_time_factor}")
        if not 0 <= self.jitter_ms <= 10_000:
            raise ValueError(f"jitter_ms must be within 0..10000, got {self.jitter_ms}")


class DeltaSchedule:
    """The send times of one response's deltas, on the caller's clock."""

    def __init__(self, pace: StreamPace, rng: random.Random, start: float) -> None:
        self._pace = pace
        self._rng = rng
        self._start = start
        self._media_s = 0.0
        self._last = start

    def next_send_at(self, media_s: float) -> float:
        """When to send the next delta, which holds `media_s` seconds of audio."""
        due = self._start + self._media_s / self._pace.real_time_factor
        self._media_s += media_s
        self._last = max(self._last, due + self._rng.uniform(0, self._pace.jitter_ms / 1000))
        return self._last
