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

# A jump in the RTP timestamps longer than this is a new stream (a re-published feed starts its
# timestamps afresh), not a pause to play out.
_MAX_PAUSE_S = 60.0


@dataclass
class Recording:
    """What one subscribed track delivered, on its media timeline: mono 48 kHz samples and when each
    frame arrived.

    A sender using DTX (the bot's feeds, WebRTC's Opus DTX) sends nothing for most of a pause; its RTP
    timestamps jump over it. A listener's playout (WebRTC's NetEq) plays the pause out as silence or
    comfort noise for as long as the timestamps say, so the recording does too: the samples stay in
    time with the sender's clock, and a frame count keeps measuring how long the feed has played.
    """

    chunks: list[Pcm] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # monotonic, one per frame
    rates: set[int] = field(default_factory=set)
    layouts: set[str] = field(default_factory=set)
    frame_samples: set[int] = field(default_factory=set)
    ended: bool = False
    paused_frames: int = 0  # frames of silence filled in for timestamp jumps (DTX pauses)
    _next_pts: int | None = None  # the pts the next frame has if none is left out

    @property
    def frames(self) -> int:
        return len(self.chunks)

    def samples(self) -> Pcm:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)

    def add(self, frame: av.AudioFrame) -> None:
        now = time.monotonic()
        self._fill_pause(frame, now)
        data = frame.to_ndarray()
        channels = len(frame.layout.channels)
        if frame.format.is_planar:
            mono = data.astype(np.float32).mean(axis=0)
        else:
            mono = data.reshape(-1, channels).astype(np.float32).mean(axis=1)
        self.chunks.append(np.clip(np.rint(mono), -32768, 32767).astype(np.int16))
        self.arrivals.append(now)
        self.rates.add(int(frame.sample_rate))
        self.layouts.add(frame.layout.name)
        self.frame_samples.add(int(frame.samples))

    def _fill_pause(self, frame: av.AudioFrame, now: float) -> None:
        """Silence for the frames a DTX pause left out (RTP timestamps are 32-bit and wrap)."""
        pts, samples, rate = frame.pts, int(frame.samples), int(frame.sample_rate)
        if pts is None or samples <= 0:
            self._next_pts = None
            return
        expected, self._next_pts = self._next_pts, (pts + samples) % 2**32
        if expected is None:
            return
        missing = (pts - expected) % 2**32 // samples
        if not 0 < missing <= _MAX_PAUSE_S * rate / samples:
            return
        previous = self.arrivals[-1] if self.arrivals else now
        for n in range(missing, 0, -1):
            # Played while the pause lasted: stamped back from this frame at the frame rate.
            self.arrivals.append(max(previous, now - n * samples / rate))
            self.chunks.append(np.zeros(samples, dtype=np.int16))
        self.paused_frames += missing

    def first_loud_arrival(self, threshold: float = 500.0, after: float = float("-inf")) -> float | None:
        """Arrival time of the first frame after `after` whose RMS exceeds `threshold` (int16 units)."""
        for chunk, at in zip(self.chunks, self.arrivals, strict=True):
            if (
                at > after
                and chunk.size
                and float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) > threshold
            ):
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
