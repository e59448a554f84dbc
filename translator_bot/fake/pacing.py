"""When the fake's translated audio leaves: the `stream_pace` fault control for a response's deltas,
and `translation_start` for when the translate endpoint starts speaking the next sentence.

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


def translation_start(ready_at: float, previous_end: float | None, pause_s: float, break_s: float) -> float:
    """When the translate endpoint starts speaking a sentence's translation (times in seconds).

    `ready_at`: when it could (the sentence was heard and understood); `previous_end`: when the
    previous translation's audio ended (None: none yet); `pause_s`: the speaker's pause before this
    sentence. Translations never overlap and are separated by the speaker's pause, but by at most
    `break_s` (a sentence break) when the output is behind. The endpoint speaks on its input's
    clock (each output delta carries the `elapsed_ms` of the input frame it was produced in; silence
    is input time like speech), so a translation longer than its original runs into the pause after
    it rather than pushing every later sentence back: the output's lag behind the speaker stays
    bounded. Keeping the whole pause after such a translation would add the difference to the lag of
    every later sentence, seconds after a few.
    """
    if previous_end is None:
        return ready_at
    return max(ready_at, previous_end + min(pause_s, break_s))
