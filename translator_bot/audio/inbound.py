"""Room audio -> model audio: any decoded `av.AudioFrame` to 24 kHz mono pcm16 little-endian bytes.

One converter per remote track, because the resampler is stateful: its filter carries the last few
input samples into the next frame, which is what keeps 20 ms frame edges free of clicks (a per-frame
stateless resample restarts the filter at every edge).

Timeline policy, from the frame pts:
- a forward gap (lost packets, a muted or DTX sender) becomes the same amount of silence, capped at
  `max_gap_fill_ms`: the model's voice activity detection needs to hear the pause to end a turn, and
  the cap stops a sender that paused for minutes from flooding the session with zeros;
- a backward jump (timestamp reset, wrap-around, a new stream on the same track) just re-anchors;
- a format, layout or rate change flushes the old resampler's tail and starts a new one.
Before a gap is filled the resampler is flushed, so the audio before the gap keeps its tail and the
audio after it starts from a clean filter state (which matches the silence just emitted).

A sender that stops sending (Opus DTX in a room that negotiates it, a muted microphone) leaves no gap
to see until its next frame, and aiortc makes that late: its audio jitter buffer releases a frame only
once four newer ones have arrived, so a DTX sender's keep-alive every ~400 ms releases one old frame
each, the silence's pts gaps show up ~1.6 s late and the last frames before it only when the talk
resumes. So silence is also presumed on the wall clock (`idle_silence(now)`, called by a timer): the
stream's best delay (arrival minus pts, a slowly forgetting minimum) says where the sender's timeline
is now; once that is more than `idle_margin_s` past the last frame, silence is emitted up to there
(at most `max_idle_fill_s` of it since the last frame arrived: a sender gone for minutes is not
flooded with zeros). That silence is a *lead* on the sender's timeline: a later pts gap owes only
what the lead has not already paid, and frames that come after it anyway (the jitter buffer's old
frames, or speech held back by a lost packet) are still delivered, never dropped. A lost packet stalls
aiortc's buffer for ~16 packets (~0.3 s, the frames after it then come in a burst); the default margin
is above that stall, so a loss keeps its old handling: its own length of silence and nothing else.

Digital silence (all-zero samples: a muted microphone, a paused test participant) skips the resampler
once enough of it went through to leave the filter holding only zeros: from then on each silent frame
would come out as exactly its length of zeros, so that is what is emitted, byte for byte the same, for a
twentieth of the cost. The next sound goes through the resampler as if the silence had. For the same
reason such a resampler is kept across a gap (a DTX sender's keep-alive every ~400 ms, presumed
silence): its held-back tail is zeros and its state that of a fresh one, so flushing it and building a
new filter graph (the costliest step of a silent DTX sender's audio) would give the same bytes.
"""

from __future__ import annotations

import logging
import sys

import av
import numpy as np

from translator_bot import metrics
from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.pcm import MonoResampler, array_to_pcm16

log = logging.getLogger(__name__)

# Smaller pts mismatches are rounding in time-base conversions, not lost audio.
_GAP_TOLERANCE_S = 0.001
# A single decoded frame longer than this is garbage (aiortc yields 20 ms); converting it would
# only burn CPU on the event loop.
_MAX_FRAME_S = 5.0
# Zero input samples the resampler must have taken in a row before silence may skip it: more than its
# filter spans at any input rate up to 192 kHz (64 taps at the output rate, ~540 input samples there).
_SILENCE_PRIMED_SAMPLES = 1024
# How fast the stream's best-delay estimate forgets (seconds per second): well above any clock drift
# between a sender and us (~1e-4), fast enough to follow a jitter buffer that got deeper after a loss
# (+160 ms: ~30 s), small against the margin over a pause.
_DELAY_FORGET_RATE = 0.005
# Frames are this much later than the stream's best at most, unless the sender paused: aiortc's audio
# jitter buffer gives up on a lost packet after 16 packets (320 ms from when it was due, 240 ms over its
# usual 80 ms hold), and loop jitter on a loaded machine adds a little.
IDLE_MARGIN_S = 0.3
# Silence presumed after the last frame arrived, at most: enough for any turn detection to see a pause.
MAX_IDLE_FILL_S = 3.0

_FormatKey = tuple[str, str, int]
_NATIVE_IS_LITTLE = sys.byteorder == "little"


class InboundConverter:
    """Stateful converter of one track's frames to 24 kHz mono s16le. Never raises on the data path."""

    def __init__(
        self,
        *,
        max_gap_fill_ms: float = 1000.0,
        rate: int = MODEL_RATE,
        idle_margin_s: float = IDLE_MARGIN_S,
        max_idle_fill_s: float = MAX_IDLE_FILL_S,
    ) -> None:
        self._rate = rate
        self._max_gap_fill_s = max(0.0, max_gap_fill_ms / 1000)
        self._idle_margin_s = idle_margin_s
        self._max_idle_fill_s = max(0.0, max_idle_fill_s)
        # Silence emitted on the wall clock beyond `_next_start_s` (see the module doc).
        self._lead_s = 0.0
        # Smallest (arrival - pts end) seen, forgetting slowly; None until a frame with both arrived.
        self._delay_s: float | None = None
        self._last_arrival: float | None = None
        self._resampler: MonoResampler | None = None
        self._format: _FormatKey | None = None
        self._next_start_s: float | None = None  # where the next frame should begin, from pts
        self._silent_run = 0  # zero samples the current resampler took in a row (see the module doc)
        self._warned: set[str] = set()

    def convert(self, frame: av.AudioFrame, arrival: float | None = None) -> bytes:
        """24 kHz mono pcm16 for this frame (b"" while the resampler fills up or the frame is bad).
        `arrival` (a monotonic time) lets `idle_silence` know where the sender's timeline is."""
        try:
            return self._convert(frame, arrival)
        except Exception as exc:  # the audio path must survive anything a decoder hands us
            self._warn("convert_error", f"conversion failed ({type(exc).__name__}: {exc}); state reset")
            self.reset()
            return b""

    def flush(self) -> bytes:
        """The resampler's held-back tail; the next frame then starts a new segment (no gap fill)."""
        try:
            tail = self._drain()
        except Exception as exc:
            self._warn("convert_error", f"flush failed ({type(exc).__name__}: {exc})")
            tail = b""
        self.reset()
        return tail

    def reset(self) -> None:
        """Forget the timeline without producing output; the next frame starts a new segment. The
        stream's learnt delay is kept: it belongs to the track and the network, and a lane opening
        while its speaker is in DTX would otherwise learn it from a stale keep-alive (~1.6 s late)."""
        self._resampler = None
        self._format = None
        self._next_start_s = None
        self._lead_s = 0.0

    @property
    def has_timeline(self) -> bool:
        """A frame was converted since the last reset: only then can `idle_silence` presume any."""
        return self._next_start_s is not None

    def idle_silence(self, now: float) -> bytes:
        """Silence for the time the sender is presumed silent by `now` without a frame to say so
        (b"" while frames come as usual, before any frame, and once the idle cap is reached)."""
        if self._next_start_s is None or self._delay_s is None or self._last_arrival is None:
            return b""
        presumed_s = presumed_silence(
            now=now,
            next_start_s=self._next_start_s,
            lead_s=self._lead_s,
            delay_s=self._delay_s,
            margin_s=self._idle_margin_s,
            max_fill_s=self._max_idle_fill_s,
        )
        samples = round(presumed_s * self._rate)
        if samples <= 0:
            return b""
        self._lead_s += samples / self._rate
        metrics.AUDIO_INPUT_PRESUMED_SILENCE.inc(samples / self._rate)
        try:
            tail = self._end_segment()
        except Exception as exc:
            self._warn("convert_error", f"flush failed ({type(exc).__name__}: {exc})")
            tail = b""
        return tail + _zeros(2 * samples)

    def _convert(self, frame: av.AudioFrame, arrival: float | None) -> bytes:
        if not isinstance(frame, av.AudioFrame):
            self._warn("not_audio_frame", f"expected av.AudioFrame, got {type(frame).__name__}")
            return b""
        samples = frame.samples
        rate = frame.sample_rate
        if samples <= 0:
            self._warn("empty_frame", "frame without samples")
            return b""
        if rate <= 0:
            self._warn("malformed_frame", f"frame with sample rate {rate}")
            return b""
        if samples > _MAX_FRAME_S * rate:
            self._warn("oversized_frame", f"frame of {samples} samples at {rate} Hz dropped")
            return b""
        if frame.layout.nb_channels <= 0:
            self._warn("malformed_frame", "frame without channels")
            return b""

        out: list[bytes] = []
        key: _FormatKey = (frame.format.name, frame.layout.name, rate)
        if key != self._format:
            if self._format is not None:
                self._warn("format_change", f"input format changed from {self._format} to {key}")
                out.append(self._drain())
            self._format = key

        start_s = self._frame_start(frame)
        if start_s is not None:
            end_s = start_s + samples / rate
            if self._next_start_s is not None:
                out.append(self._bridge(start_s - self._next_start_s))
            self._next_start_s = end_s
            if arrival is not None:
                self._track_delay(arrival, end_s)

        if self._resampler is None:
            self._resampler = MonoResampler(self._rate)
            self._silent_run = 0
        if _is_digital_silence(frame):
            if self._silent_run >= _SILENCE_PRIMED_SAMPLES and samples * self._rate % rate == 0:
                out.append(_zeros(2 * samples * self._rate // rate))
                return b"".join(out) if len(out) != 1 else out[0]
            self._silent_run += samples
        else:
            self._silent_run = 0
        for converted in self._resampler.resample(frame):
            out.append(_frame_bytes(converted))
        return b"".join(out) if len(out) != 1 else out[0]

    @staticmethod
    def _frame_start(frame: av.AudioFrame) -> float | None:
        pts = frame.pts
        time_base = frame.time_base
        if pts is None or time_base is None:
            return None
        # Integer products in float division: a Fraction product costs 4 us, a tenth of the budget.
        return pts * time_base.numerator / time_base.denominator

    def _track_delay(self, arrival: float, end_s: float) -> None:
        delay = arrival - end_s
        if self._delay_s is None or self._last_arrival is None:
            self._delay_s = delay
        else:
            forgotten = self._delay_s + (arrival - self._last_arrival) * _DELAY_FORGET_RATE
            self._delay_s = min(delay, forgotten)
        self._last_arrival = arrival

    def _bridge(self, gap_s: float) -> bytes:
        """Silence for a forward gap in the timeline (capped, less what was presumed already),
        nothing for jitter or a backward jump."""
        if gap_s < -_GAP_TOLERANCE_S:
            self._warn("pts_discontinuity", f"timestamps went back by {-gap_s * 1000:.1f} ms; re-anchored")
            self._lead_s = 0.0
            self._delay_s = None  # a new timeline: its delay is learnt anew
            return b""
        if gap_s <= _GAP_TOLERANCE_S:
            return b""
        if self._lead_s == 0.0:
            self._warn("pts_gap", f"{gap_s * 1000:.1f} ms of input missing; filled with silence")
        fill_s = max(0.0, min(gap_s, self._max_gap_fill_s) - self._lead_s)
        self._lead_s = max(0.0, self._lead_s - gap_s)
        if fill_s * self._rate < 0.5:
            return b""
        tail = self._end_segment()
        return tail + _zeros(2 * round(fill_s * self._rate))

    def _end_segment(self) -> bytes:
        """Before silence the resampler does not hear: its tail, the next frame to a fresh one; or
        nothing, keeping it, while it holds only silence (the same bytes either way: module doc)."""
        if self._resampler is not None and self._silent_run >= _SILENCE_PRIMED_SAMPLES:
            return b""
        return self._drain()

    def _drain(self) -> bytes:
        """Everything the current resampler still holds; the next frame gets a fresh one."""
        resampler = self._resampler
        self._resampler = None
        if resampler is None:
            return b""
        return b"".join(_frame_bytes(converted) for converted in resampler.resample(None))

    def _warn(self, reason: str, message: str) -> None:
        metrics.AUDIO_INPUT_WARNINGS.labels(reason=reason).inc()
        if reason not in self._warned:
            self._warned.add(reason)
            log.warning("inbound audio: %s (further %r warnings are only counted)", message, reason)


def presumed_silence(
    *,
    now: float,
    next_start_s: float,
    lead_s: float,
    delay_s: float,
    margin_s: float,
    max_fill_s: float,
) -> float:
    """Seconds of silence to emit now for a sender whose frames stopped coming.

    The sender's timeline is at about `now - delay_s` (its best delay); silence is presumed up to
    `margin_s` short of that, beyond what was already emitted (`next_start_s + lead_s`), and never
    more than `max_fill_s` beyond the last frame's end in all."""
    target_s = now - delay_s - margin_s
    presumed = target_s - (next_start_s + lead_s)
    room = max_fill_s - lead_s
    return max(0.0, min(presumed, room))


def _is_digital_silence(frame: av.AudioFrame) -> bool:
    """All samples zero. Sound almost always shows in its first few samples, so those are looked at
    first (0.4 us); a whole silent 20 ms stereo frame is a copy and a memcmp (0.6 us more), where
    numpy's `any()` takes 4 us."""
    per_plane = (
        frame.samples * frame.format.bytes * (1 if frame.format.is_planar else frame.layout.nb_channels)
    )
    probe = min(per_plane, _PROBE_BYTES)
    for plane in frame.planes:
        view = memoryview(plane)
        if view[:probe].tobytes() != _zeros(probe) or view[:per_plane].tobytes() != _zeros(per_plane):
            return False
    return True


_PROBE_BYTES = 64
_zero_cache: dict[int, bytes] = {}


def _zeros(size: int) -> bytes:
    """`size` zero bytes, shared (bytes are immutable): a silent frame allocates nothing new."""
    zeros = _zero_cache.get(size)
    if zeros is None:
        if len(_zero_cache) > 64:  # odd frame sizes from a misbehaving sender: stay bounded
            _zero_cache.clear()
        zeros = _zero_cache[size] = bytes(size)
    return zeros


def _frame_bytes(frame: av.AudioFrame) -> bytes:
    if _NATIVE_IS_LITTLE:
        # Sliced: the plane buffer is padded beyond the samples it holds. (The resampler's output is
        # mono s16, so plane 0 holds exactly `samples` native-endian int16 values.)
        return memoryview(frame.planes[0])[: frame.samples * 2].tobytes()
    return array_to_pcm16(np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1))
