"""What a simulated participant says: a schedule of recorded utterances, played as a paced 48 kHz track.

The recordings are at the model's rate (24 kHz) and upsampled once, offline, to the room's rate. Every
utterance is stamped with `time.monotonic()` when its first frame is due and when its last one ends,
so tests and benchmarks can measure latency end to end.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Sequence
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
import soxr
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from translator_bot.audio.formats import MODEL_RATE, ROOM_RATE

RATE = ROOM_RATE
FRAME_MS = 20  # what WebRTC Opus frames carry
FRAME_SAMPLES = RATE * FRAME_MS // 1000
FRAME_SECONDS = FRAME_SAMPLES / RATE
Pcm = npt.NDArray[np.int16]


def upsample_24k_to_48k(pcm: Pcm) -> Pcm:
    """Offline (whole-utterance) 2x upsampling of 24 kHz int16 speech."""
    return np.asarray(soxr.resample(pcm, MODEL_RATE, RATE, quality="VHQ"), dtype=np.int16)


@dataclass(frozen=True)
class Speech:
    """One entry of a schedule: wait `pause_before` seconds of silence, then speak `pcm24k`."""

    label: str
    pcm24k: Pcm
    pause_before: float = 0.0


@dataclass
class SpokenUtterance:
    label: str
    start: float  # monotonic time the first frame of it was due
    end: float | None = None  # monotonic time its last frame ended


class ScheduleTrack(MediaStreamTrack):
    """48 kHz mono s16 audio that plays a schedule, paced by a monotonic clock, silence otherwise."""

    kind = "audio"

    def __init__(self, schedule: Sequence[Speech] = (), *, loop: bool = False) -> None:
        super().__init__()
        self._schedule = list(schedule)
        self._repeat = loop
        self._segments: list[tuple[str, Pcm]] = []  # (label, samples at 48 kHz); label "" is silence
        self._queue_schedule()
        self._buffer: Pcm = np.zeros(0, dtype=np.int16)
        self._label = ""
        self._pos = 0
        self._start: float | None = None
        self._frames = 0
        self.spoken: list[SpokenUtterance] = []

    def say(self, speech: Speech) -> None:
        """Speak `speech` once whatever is playing now has finished (after its `pause_before`)."""
        if speech.pause_before > 0:
            self._segments.append(("", np.zeros(int(speech.pause_before * RATE), dtype=np.int16)))
        self._segments.append((speech.label, upsample_24k_to_48k(speech.pcm24k)))

    @property
    def busy(self) -> bool:
        """Still speaking, or with something queued to say."""
        return bool(self._segments) or bool(self._label and self._pos < len(self._buffer))

    def _queue_schedule(self) -> None:
        for speech in self._schedule:
            self.say(speech)

    def _next_samples(self, due: float) -> Pcm:
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while filled < FRAME_SAMPLES:
            if self._pos >= len(self._buffer):
                if self._label and self.spoken and self.spoken[-1].end is None:
                    self.spoken[-1].end = due + filled / RATE
                if not self._segments and self._repeat and self._schedule:
                    self._queue_schedule()
                if not self._segments:
                    self._label, self._buffer, self._pos = "", np.zeros(0, dtype=np.int16), 0
                    break
                self._label, self._buffer = self._segments.pop(0)
                self._pos = 0
                if self._label:
                    self.spoken.append(SpokenUtterance(self._label, due + filled / RATE))
            take = min(FRAME_SAMPLES - filled, len(self._buffer) - self._pos)
            out[filled : filled + take] = self._buffer[self._pos : self._pos + take]
            filled += take
            self._pos += take
        return out

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._frames * FRAME_SECONDS
        if due > now:
            await asyncio.sleep(due - now)
        samples = self._next_samples(due)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._frames * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self._frames += 1
        return frame


def fixture_speech(utterance_id: str, pause_before: float = 0.0) -> Speech:
    from translator_bot.fixtures import read_pcm, utterance

    return Speech(utterance_id, read_pcm(utterance(utterance_id)), pause_before)
