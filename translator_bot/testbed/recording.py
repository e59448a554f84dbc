"""What a simulated participant hears: the frames of a subscribed track, stamped on arrival, and the
envelope matching that tells which recording was heard through Opus."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from translator_bot.tasks import TaskSet
from translator_bot.testbed.schedule import RATE, Pcm, upsample_24k_to_48k


@dataclass
class Recording:
    """What one subscribed track delivered: mono 48 kHz samples and when each frame arrived."""

    chunks: list[Pcm] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # monotonic, one per frame
    rates: set[int] = field(default_factory=set)
    layouts: set[str] = field(default_factory=set)
    frame_samples: set[int] = field(default_factory=set)
    ended: bool = False

    @property
    def frames(self) -> int:
        return len(self.chunks)

    def samples(self) -> Pcm:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)

    def add(self, frame: av.AudioFrame) -> None:
        data = frame.to_ndarray()
        channels = len(frame.layout.channels)
        if frame.format.is_planar:
            mono = data.astype(np.float32).mean(axis=0)
        else:
            mono = data.reshape(-1, channels).astype(np.float32).mean(axis=1)
        self.chunks.append(np.clip(np.rint(mono), -32768, 32767).astype(np.int16))
        self.arrivals.append(time.monotonic())
        self.rates.add(int(frame.sample_rate))
        self.layouts.add(frame.layout.name)
        self.frame_samples.add(int(frame.samples))

    def first_loud_arrival(self, threshold: float = 500.0) -> float | None:
        """Arrival time of the first frame whose RMS exceeds `threshold` (int16 units)."""
        for chunk, at in zip(self.chunks, self.arrivals, strict=True):
            if chunk.size and float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) > threshold:
                return at
        return None


class Recorder:
    """Reads a remote track, once started, until it ends or `stop()`; owns its reading task."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.recording = Recording()
        self._first = asyncio.Event()
        self._tasks = TaskSet("recorder")

    def start(self) -> Recorder:
        self._tasks.spawn(self._run(), name="recorder")
        return self

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.track.recv()
                if isinstance(frame, av.AudioFrame):
                    self.recording.add(frame)
                self._first.set()
        except MediaStreamError:
            self.recording.ended = True

    async def wait_first_frame(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self._first.wait()

    async def stop(self) -> None:
        await self._tasks.close()


def envelope(samples: Pcm, rate: int = RATE, window_s: float = 0.02) -> npt.NDArray[np.float64]:
    """RMS per window: a shape of speech that survives Opus, for matching what was heard to a fixture."""
    n = int(rate * window_s)
    usable = len(samples) // n * n
    if usable == 0:
        return np.zeros(0)
    blocks = samples[:usable].astype(np.float64).reshape(-1, n)
    return np.asarray(np.sqrt(np.mean(blocks**2, axis=1)))


def best_envelope_match(heard: Pcm, reference24k: Pcm) -> float:
    """Highest normalised correlation of the reference's envelope against any stretch of what was heard."""
    ref = envelope(upsample_24k_to_48k(reference24k))
    got = envelope(heard)
    if len(ref) == 0 or len(got) < len(ref):
        return 0.0
    ref = (ref - ref.mean()) / (ref.std() + 1e-9)
    windows = np.lib.stride_tricks.sliding_window_view(got, len(ref))
    means = windows.mean(axis=1, keepdims=True)
    stds = windows.std(axis=1, keepdims=True) + 1e-9
    scores = ((windows - means) / stds) @ ref / len(ref)
    return float(scores.max())
