"""Helpers for the playout track's tests: model audio, frames pulled, what they hold."""

from __future__ import annotations

import av
import numpy as np

from translator_bot import metrics
from translator_bot.audio.clock import FakeClock
from translator_bot.audio.playout import PlayoutKey, PlayoutTrack

MS = 24  # 24 kHz samples per millisecond


def key(item: str) -> PlayoutKey:
    return PlayoutKey("p1->es", item)


def pcm_tone(ms: float, amplitude: float = 0.3, freq: float = 440.0) -> bytes:
    t = np.arange(round(ms * MS)) / 24_000
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def pcm_const(ms: float, value: int) -> bytes:
    return np.full(round(ms * MS), value, dtype="<i2").tobytes()


async def pull(track: PlayoutTrack, frames: int) -> list[av.AudioFrame]:
    return [await track.recv() for _ in range(frames)]


def mono(frames: list[av.AudioFrame]) -> np.ndarray:
    """The left channel of the frames, checking on the way that right == left."""
    stereo = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in frames])
    assert np.array_equal(stereo[:, 0], stereo[:, 1])
    return stereo[:, 0].astype(np.float64)


def audible(frame: av.AudioFrame) -> bool:
    return bool(np.abs(frame.to_ndarray()).max() > 0)


def counter(counter: object, **labels: str) -> float:
    return metrics.counter_value(counter, **labels)  # type: ignore[arg-type]


def new_track(**kwargs: object) -> tuple[PlayoutTrack, FakeClock]:
    clock = FakeClock(100.0)
    return PlayoutTrack(clock=clock, **kwargs), clock  # type: ignore[arg-type]
