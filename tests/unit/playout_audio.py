"""Helpers for the playout track's tests: model audio, frames pulled, what they hold.

Frames are pulled with `next_frame()`: the track's paced schedule as the PCM it then encodes, so these
tests pin the samples exactly; what the Opus packets of `recv()` decode to is test_opus_out.py's."""

from __future__ import annotations

import numpy as np

from translator_bot import metrics
from translator_bot.audio.clock import FakeClock
from translator_bot.audio.playout import OutFrame, PlayoutKey, PlayoutTrack

MS = 24  # 24 kHz samples per millisecond


def key(item: str) -> PlayoutKey:
    return PlayoutKey("p1->es", item)


def pcm_tone(ms: float, amplitude: float = 0.3, freq: float = 440.0) -> bytes:
    t = np.arange(round(ms * MS)) / 24_000
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def pcm_const(ms: float, value: int) -> bytes:
    return np.full(round(ms * MS), value, dtype="<i2").tobytes()


async def pull(track: PlayoutTrack, frames: int) -> list[OutFrame]:
    return [await track.next_frame() for _ in range(frames)]


def mono(frames: list[OutFrame]) -> np.ndarray:
    """The samples of the frames, one after the other."""
    return np.concatenate([f.pcm for f in frames]).astype(np.float64)


def audible(frame: OutFrame) -> bool:
    return bool(np.abs(frame.pcm).max() > 0)


def counter(counter: object, **labels: str) -> float:
    return metrics.counter_value(counter, **labels)  # type: ignore[arg-type]


def new_track(**kwargs: object) -> tuple[PlayoutTrack, FakeClock]:
    clock = FakeClock(100.0)
    return PlayoutTrack(clock=clock, **kwargs), clock  # type: ignore[arg-type]
