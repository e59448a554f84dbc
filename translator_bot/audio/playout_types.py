"""The playout's vocabulary, shared by its queue, its track and the meeting: the key audio is queued
under, and what the queue reports as it happens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PlayoutKey:
    """One item of one lane: what a feed's playout queues audio under (a lane's items are the model's)."""

    lane: str
    item: str

    def __str__(self) -> str:
        return f"{self.item!r} of lane {self.lane}"


class PlayoutReport(Protocol):
    """What the queue tells its owner, as it happens."""

    def warning(self, reason: str, message: str) -> None:
        """Something unexpected was absorbed (a bad chunk, a stalled item, an internal error)."""

    def dropped(self, reason: str, ms: float) -> None:
        """Audio that will never be played: cleared, over the lag bound, or late for its item."""

    def underrun(self, frames: int) -> None:
        """`frames` frames of a gap inside a translation: an item that had started could not fill
        them, and more of its audio came after (reported when it comes, or as each frame is pulled
        once it has)."""

    def ran_dry(self, key: PlayoutKey, played_s: float, hold_s: float, peak_s: float | None) -> None:
        """`key` had run out of audio `played_s` into it, and more of it has come since: a gap inside
        the translation. `hold_s`: the hold a new item got when it ran dry; `peak_s`: the learnt peak
        lateness then (None: none yet)."""

    def queue_lag(self, seconds: float) -> None:
        """Audio queued ahead of the playout, observed as a chunk arrives."""

    def cut_short(self, key: PlayoutKey, heard_samples: int) -> None:
        """The listener did not hear the rest of `key`: only its first `heard_samples` (24 kHz)."""
