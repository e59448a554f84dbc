"""Model audio -> room audio: a paced aiortc audio track fed with 24 kHz mono pcm16 chunks.

Output format: 48 kHz stereo s16, 960 samples (20 ms) per frame, for speech and silence alike. That is
exactly what aiortc's Opus encoder works in, so its own resampler has nothing to convert: no extra
20 ms of buffering, and no -3 dB mono-to-stereo upmix (both happen when it is handed 24 kHz or 48 kHz
mono frames). The 24 -> 48 kHz upsampling is done here, once per chunk as it is enqueued, with one
stateful resampler per item (flushed at `end_item`, discarded on `clear`), so `recv()` only copies.
The price is a stereo frame for aiortc's per-frame audio-level loop (~0.1 ms more per frame than mono).

Adaptive start: a new item waits until `cushion_ms` of it are queued and, after its first audio, for
the hold a per-feed `ArrivalJitterEstimator` has learnt from how late the model's deltas arrive
(0 while they come ahead of real time, so a fast stream pays nothing; about the jitter when the
model streams at real time). An item that runs dry waits the same hold after its next audio before
resuming, so one late delta does not become a stutter. Why: a fixed 60 ms cushion is enough for a
model that streams 4x faster than real time, and far too little for one at real time with 0-150 ms
of delay before each delta, where every late delta became a gap in the middle of a sentence.

Nothing in flight blocks a listener: an item that is not ended, cannot play (ran dry or never had
its cushion) and has received nothing for `stall_ms` while a later item waits is given up (what it
had is played, late audio of it is dropped and counted, `on_dropped` reports what was heard). It does
not resume later: its rest would be heard after the next sentence, out of order. A model link that
dropped mid-response never ends its item; this keeps the next translation from waiting behind it
until the lag bound cuts it.

Pacing: frame n is released at `start + n * 20 ms` on a monotonic clock anchored at the first
`recv()`. Deadlines are absolute, so a late wake-up is caught up by the next frames instead of
shifting all later ones (relative `sleep(0.02)` loops fall seconds behind per minute).

A consumer that goes away and comes back is not a late wake-up: when the room is re-joined, a new
PeerConnection's sender starts calling `recv()` on this same track after a gap. The frame slots of
the gap are then skipped, not caught up (that would be a burst of the whole gap for the far end's
jitter buffer to swallow): the next frame is due at once and the following ones at real-time pace;
its pts moves on by the gap, and the queued audio, which nobody heard, plays from where it stopped.

Not thread-safe: enqueue, end_item, clear and recv run on the event loop.
"""

from __future__ import annotations

import fractions
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from translator_bot import metrics
from translator_bot.audio.clock import Clock, MonotonicClock
from translator_bot.audio.formats import MODEL_RATE, ROOM_RATE
from translator_bot.audio.jitter import ArrivalJitterEstimator, JitterConfig
from translator_bot.audio.pcm import (
    Int16Array,
    MonoResampler,
    pcm16_to_array,
    samples_per_frame,
)

log = logging.getLogger(__name__)

OUT_RATE = ROOM_RATE
OUT_LAYOUT = "stereo"
FRAME_SAMPLES = samples_per_frame(OUT_RATE)  # 960
FRAME_SECONDS = FRAME_SAMPLES / OUT_RATE
_TIME_BASE = fractions.Fraction(1, OUT_RATE)
_UPSAMPLE = OUT_RATE // MODEL_RATE
_SAMPLES_PER_MS = OUT_RATE // 1000

# One chunk longer than this is garbage, not a translation (model deltas are ~0.1-0.2 s).
MAX_CHUNK_SECONDS = 60.0
_MAX_CHUNK_BYTES = int(MAX_CHUNK_SECONDS * MODEL_RATE) * 2
# After a wake-up this late (a suspended process, a stalled loop) the missed frame slots are skipped
# instead of bursting every missed frame at once.
_MAX_CATCH_UP_SECONDS = 1.0
# A consumer that calls recv() this long after the previous frame was returned had gone away (a
# re-published feed's new PeerConnection): it gets no catch-up at all. Ten frames: more than a busy
# event loop delays one awaited call (a loop that is merely slow is caught up, so lag does not build
# up), less than a re-publish can take (a signalling round trip, then ICE and DTLS handshakes).
_CONSUMER_GONE_SECONDS = 0.2
# A cut inside an item starts the remaining audio with this fade-in, so the skip does not click.
_FADE_SAMPLES = 2 * _SAMPLES_PER_MS
# Finished or cut items remembered for played_samples() and for ignoring their late chunks.
_HISTORY = 512

DroppedCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class _Outcome:
    """What is remembered of a finished or removed item."""

    played: int  # 24 kHz samples emitted
    reason: str  # why its late chunks are dropped: "after_end", "cut_item" or "after_stall"
    gaps: int


@dataclass(eq=False)
class _Item:
    item_id: str
    chunks: deque[Int16Array] = field(default_factory=deque)  # 48 kHz mono, not yet played
    head: int = 0  # samples of chunks[0] already played
    queued: int = 0  # 48 kHz samples in chunks (after head)
    received: int = 0  # 24 kHz samples accepted from the model
    played: int = 0  # 48 kHz samples emitted by recv()
    carry: bytes = b""  # the first byte of a sample split across two chunks
    resampler: MonoResampler | None = None
    ended: bool = False
    started: bool = False
    buffering: bool = True  # waiting for the cushion before (re)starting
    first_at: float | None = None  # clock time its first audio was queued
    last_at: float = 0.0  # clock time its latest audio was queued
    refilled_at: float | None = None  # first audio after it ran dry (the resume hold starts here)
    gaps: int = 0  # times it ran dry in the middle (silence inserted inside the translation)
    given_up: bool = False  # stalled in front of a later item: ended by the playout itself

    def played_model_samples(self) -> int:
        # The resampler keeps timing, so 2 output samples = 1 input sample; never report more than
        # the model actually sent (a truncation past the end is a protocol error).
        return min(self.received, self.played // _UPSAMPLE)


class PlayoutTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(
        self,
        *,
        cushion_ms: float = 60,
        hold_ms: float = 0,
        max_lag_ms: float = 3000,
        stall_ms: float = 1000,
        adaptive: bool = True,
        jitter: JitterConfig | None = None,
        clock: Clock | None = None,
        on_dropped: DroppedCallback | None = None,
    ) -> None:
        super().__init__()
        if cushion_ms < 0 or max_lag_ms < cushion_ms + 20:
            raise ValueError(
                f"need 0 <= cushion_ms and max_lag_ms >= cushion_ms + 20, got {cushion_ms}, {max_lag_ms}"
            )
        if stall_ms <= 0:
            raise ValueError(f"need stall_ms > 0, got {stall_ms}")
        self._cushion = round(cushion_ms * _SAMPLES_PER_MS)
        # A source that streams in real time (one delta per its own length) never builds a cushion
        # larger than one delta; holding a new item briefly after its first audio absorbs the arrival
        # jitter of the next delta at a cost of `hold_ms`, instead of a whole delta's worth of cushion.
        self._hold = hold_ms / 1000
        self._max_lag = round(max_lag_ms * _SAMPLES_PER_MS)
        self._stall = stall_ms / 1000
        # None: the fixed cushion and hold only (the behaviour before the estimator; benchmarks
        # compare against it).
        self._jitter = ArrivalJitterEstimator(jitter) if adaptive else None
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._on_dropped = on_dropped
        self._items: OrderedDict[str, _Item] = OrderedDict()  # playing order = first-enqueue order
        self._history: OrderedDict[str, _Outcome] = OrderedDict()
        self._queued = 0
        self._start: float | None = None
        self._sent = 0  # frame slots of the schedule used (sent or skipped); frame n has pts n * 960
        self._returned_at: float | None = None  # when recv() last handed out a frame
        self.underruns = 0
        self.frames_sent = 0
        self._warned: set[str] = set()

    # ---- feeding -------------------------------------------------------------------------------

    def enqueue(self, pcm: bytes | bytearray | memoryview, item_id: str) -> None:
        """Queue 24 kHz mono s16le audio of `item_id` (any length, odd ones included). Never raises."""
        try:
            self._enqueue(pcm, item_id)
        except Exception as exc:
            self._warn("internal_error", f"enqueue failed ({type(exc).__name__}: {exc}); chunk dropped")

    def end_item(self, item_id: str) -> None:
        """No more audio will come for `item_id`: play its tail, then move on without an underrun."""
        try:
            item = self._items.get(item_id)
            if item is None or item.ended:
                return
            if item.carry:
                self._warn("odd_length", f"item {item_id!r} ended on half a sample; byte dropped")
                item.carry = b""
            item.ended = True
            resampler, item.resampler = item.resampler, None
            if resampler is not None:
                self._append(item, _resample(resampler, None))
        except Exception as exc:
            self._warn("internal_error", f"end_item failed ({type(exc).__name__}: {exc})")

    def clear(self) -> dict[str, int]:
        """Stop at once (interruption): drop everything queued; played 24 kHz samples per cut item."""
        cut: dict[str, int] = {}
        dropped = self._queued
        for item in list(self._items.values()):
            cut[item.item_id] = self._cut(item)
        if dropped:
            metrics.PLAYOUT_DROPPED_MS.labels(reason="clear").inc(dropped / _SAMPLES_PER_MS)
        for item_id, played in cut.items():
            self._notify_dropped(item_id, played)
        return cut

    def played_samples(self, item_id: str) -> int:
        """24 kHz samples of `item_id` that recv() has really emitted (0 for an unknown item)."""
        item = self._items.get(item_id)
        if item is not None:
            return item.played_model_samples()
        remembered = self._history.get(item_id)
        return remembered.played if remembered is not None else 0

    def gaps(self, item_id: str) -> int:
        """How many times `item_id` ran dry in the middle (silence inserted inside the translation)."""
        item = self._items.get(item_id)
        if item is not None:
            return item.gaps
        remembered = self._history.get(item_id)
        return remembered.gaps if remembered is not None else 0

    def start_hold_ms(self) -> float:
        """How long a new item now waits after its first audio (the larger of `hold_ms` and the
        learnt jitter hold)."""
        return self._start_hold() * 1000

    def queued_ms(self) -> float:
        return self._queued / _SAMPLES_PER_MS

    def stop(self) -> None:
        self._items.clear()
        self._queued = 0
        super().stop()

    # ---- playing -------------------------------------------------------------------------------

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        clock = self._clock
        now = clock.now()
        if self._start is None:
            self._start = now
        elif self._returned_at is not None and now - self._returned_at > _CONSUMER_GONE_SECONDS:
            skipped = self._skip_missed_slots(now)
            log.info(
                "playout: consumer back after %.2f s; %d frame slots skipped",
                now - self._returned_at,
                skipped,
            )
        deadline = self._start + self._sent * FRAME_SECONDS
        await clock.sleep_until(deadline)
        if self.readyState != "live":
            raise MediaStreamError
        late = clock.now() - deadline
        if late > _MAX_CATCH_UP_SECONDS:
            self._warn("clock_jump", f"playout woke {late:.1f} s late; the missed frame slots were skipped")
            self._skip_missed_slots(clock.now())
        try:
            # The frame's place in the media timeline (its pts): a consumer that wakes late and catches
            # up still plays this frame at this time, as the listener's jitter buffer follows the pts.
            mono = self._pull(self._start + self._sent * FRAME_SECONDS)
        except Exception as exc:
            self._warn("internal_error", f"playout failed ({type(exc).__name__}: {exc}); sent silence")
            mono = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        frame = _stereo_frame(mono, pts=self._sent * FRAME_SAMPLES)
        self._sent += 1
        self.frames_sent += 1
        metrics.FRAMES_OUT.inc()
        self._returned_at = clock.now()
        return frame

    def _skip_missed_slots(self, now: float) -> int:
        """Move the schedule past the frame slots whose time has gone by, so that the next frame is due
        within the last 20 ms and the ones after it at real-time pace; returns how many were skipped.

        Their pts are skipped too, so the pts (and the RTP timestamps aiortc derives from them) keep
        following the clock, as RTP timestamps do after a silence that was not sent (RFC 3550 5.1):
        receivers play on after a timestamp gap that matches the arrival gap, while contiguous
        timestamps arriving seconds late would look to them like a jump in network delay, inflating
        their jitter estimate and buffer. A new PeerConnection's encoder starts its RTP timestamps
        afresh anyway. The queued audio is not touched: nobody heard it, it plays next."""
        assert self._start is not None
        # (A microsecond of slack: deadlines are sums of floats.)
        missed = int((now - self._start) / FRAME_SECONDS + 1e-6) - self._sent
        if missed <= 0:
            return 0
        self._sent += missed
        return missed

    # ---- internals -----------------------------------------------------------------------------

    def _enqueue(self, pcm: bytes | bytearray | memoryview, item_id: str) -> None:
        if not isinstance(item_id, str):
            self._warn("bad_item_id", f"item id of type {type(item_id).__name__}; chunk dropped")
            return
        if not isinstance(pcm, bytes | bytearray | memoryview):
            self._warn("bad_chunk", f"audio chunk of type {type(pcm).__name__}; dropped")
            return
        size = pcm.nbytes if isinstance(pcm, memoryview) else len(pcm)
        item = self._items.get(item_id)
        remembered = self._history.get(item_id) if item is None else None
        if remembered is not None or (item is not None and item.ended):
            # Deltas still in flight when an item was cut (or after it finished) are not played.
            if remembered is not None:
                reason = remembered.reason
            else:
                reason = "after_stall" if item is not None and item.given_up else "after_end"
            self._count_late(reason, item_id, size)
            return
        if size == 0:
            self._warn("empty_chunk", f"empty audio chunk for item {item_id!r}")
            return
        if size > _MAX_CHUNK_BYTES:
            self._warn("oversized_chunk", f"{size} byte chunk for item {item_id!r} dropped")
            if item is not None:
                # Keep the byte stream's sample alignment for the chunks that follow.
                item.carry = bytes(pcm)[-1:] if (len(item.carry) + size) % 2 else b""
            return
        if item is None:
            # Created only by a usable chunk: a bad first chunk must not leave an empty item blocking
            # the queue head until the lag bound removes it.
            item = _Item(item_id, last_at=self._clock.now())
            self._items[item_id] = item
        if size % 2:
            self._warn("odd_length", f"chunk of {size} bytes for item {item_id!r}; half sample carried")
        data = item.carry + bytes(pcm) if item.carry else bytes(pcm)
        if len(data) % 2:
            item.carry = data[-1:]
            data = data[:-1]
        else:
            item.carry = b""
        if not data:
            return
        samples = pcm16_to_array(data)
        if item.resampler is None:
            item.resampler = MonoResampler(OUT_RATE)
        try:
            upsampled = _resample(item.resampler, samples)
        except Exception as exc:
            # A broken filter state would fail every later chunk too: start the item's filter afresh.
            item.resampler = None
            self._warn("resample_error", f"upsampling failed ({type(exc).__name__}: {exc}); chunk dropped")
            return
        item.received += samples.size
        now = self._clock.now()
        item.last_at = now
        if item.started and item.buffering and item.refilled_at is None:
            item.refilled_at = now
        if self._jitter is not None:
            self._jitter.observe(item_id, now, samples.size / MODEL_RATE)
        self._append(item, upsampled)
        metrics.PLAYOUT_QUEUE_LAG.observe(self._queued / OUT_RATE)
        self._enforce_lag_bound()

    def _append(self, item: _Item, samples: Int16Array) -> None:
        if item.first_at is None:
            item.first_at = self._clock.now()
        if samples.size:
            item.chunks.append(samples)
            item.queued += samples.size
            self._queued += samples.size

    def _enforce_lag_bound(self) -> None:
        excess = self._queued - self._max_lag
        if excess <= 0:
            return
        # Whole stale items first: the listener hears complete sentences, just not the old ones.
        dropped_items: list[tuple[str, int]] = []
        while excess > 0 and len(self._items) > 1:
            oldest = next(iter(self._items.values()))
            excess -= oldest.queued
            metrics.PLAYOUT_DROPPED_MS.labels(reason="lag").inc(oldest.queued / _SAMPLES_PER_MS)
            dropped_items.append((oldest.item_id, self._cut(oldest)))
        if excess > 0:
            # One item alone is too far ahead (a continuous stream): skip its oldest audio, in whole
            # frames so that small overshoots do not cause a skip on every chunk.
            item = next(iter(self._items.values()))
            skip = min(item.queued, -(-excess // FRAME_SAMPLES) * FRAME_SAMPLES)
            self._skip(item, skip)
            metrics.PLAYOUT_DROPPED_MS.labels(reason="lag").inc(skip / _SAMPLES_PER_MS)
        for item_id, played in dropped_items:
            self._warn("lag_bound", f"queue over {self._max_lag // _SAMPLES_PER_MS} ms; dropped {item_id!r}")
            self._notify_dropped(item_id, played)

    def _skip(self, item: _Item, count: int) -> None:
        remaining = count
        while remaining > 0 and item.chunks:
            available = item.chunks[0].size - item.head
            if available <= remaining:
                item.chunks.popleft()
                item.head = 0
                remaining -= available
            else:
                item.head += remaining
                remaining = 0
        item.queued -= count
        self._queued -= count
        if item.chunks:
            head = item.chunks[0]
            fade = head[item.head : item.head + _FADE_SAMPLES]
            ramp = np.linspace(0.0, 1.0, fade.size, endpoint=False)
            fade[:] = (fade * ramp).astype(np.int16)

    def _cut(self, item: _Item) -> int:
        """Remove an item that still had audio to come or to play; returns its played samples."""
        played = item.played_model_samples()
        self._queued -= item.queued
        del self._items[item.item_id]
        self._remember(item, played, "cut_item")
        return played

    def _finish(self, item: _Item) -> None:
        del self._items[item.item_id]
        played = item.played_model_samples()
        self._remember(item, played, "after_stall" if item.given_up else "after_end")
        if item.given_up:
            self._notify_dropped(item.item_id, played)

    def _remember(self, item: _Item, played: int, reason: str) -> None:
        if self._jitter is not None:
            self._jitter.forget(item.item_id)
        item_id = item.item_id
        self._history[item_id] = _Outcome(played, reason, item.gaps)
        self._history.move_to_end(item_id)
        while len(self._history) > _HISTORY:
            self._history.popitem(last=False)

    def _pull(self, frame_time: float) -> Int16Array:
        """The next 20 ms of 48 kHz mono: queued audio in item order, zeros where there is none."""
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        underrun = False
        while filled < FRAME_SAMPLES and self._items:
            item = next(iter(self._items.values()))
            if item.buffering:
                if self._ready(item, frame_time):
                    item.buffering = False
                    item.started = True
                elif self._stalled(item):
                    self._give_up(item)
                    continue
                else:
                    underrun = item.started
                    break
            while filled < FRAME_SAMPLES and item.chunks:
                chunk = item.chunks[0]
                take = min(FRAME_SAMPLES - filled, chunk.size - item.head)
                out[filled : filled + take] = chunk[item.head : item.head + take]
                filled += take
                item.head += take
                if item.head == chunk.size:
                    item.chunks.popleft()
                    item.head = 0
                item.played += take
                item.queued -= take
                self._queued -= take
            if item.queued == 0:
                if item.ended:
                    self._finish(item)
                    continue
                if filled < FRAME_SAMPLES:
                    # Starved in the middle of an utterance: rebuild the cushion before resuming, so a
                    # trickle of small late chunks does not turn into a stutter.
                    item.buffering = True
                    item.refilled_at = None
                    item.gaps += 1
                    underrun = True
                break
        if underrun:
            self.underruns += 1
            metrics.PLAYOUT_UNDERRUNS.inc()
        return out

    def _start_hold(self) -> float:
        learnt = self._jitter.hold_s() if self._jitter is not None else 0.0
        return max(self._hold, learnt)

    def _ready(self, item: _Item, frame_time: float) -> bool:
        """Whether a buffering item may (re)start with the frame scheduled at `frame_time`.

        The hold is counted to the frame's scheduled time, not to when recv() happens to run: after a
        late wake-up the frames that catch up are played back to back, so starting one of them
        because the clock has moved on would shorten the hold by the lateness."""
        if item.ended:
            return True
        if item.queued < self._cushion:
            return False
        # (A microsecond of slack: frame deadlines are sums of floats.)
        now = frame_time + 1e-6
        if not item.started:
            hold = self._start_hold()
            # No hold: start at once, even on a frame a late consumer is still catching up on.
            return hold <= 0 or (item.first_at is not None and now - item.first_at >= hold)
        if self._jitter is None:
            return True  # the fixed cushion alone decides a restart
        # After running dry, hold as at a start, counted from the audio that refilled it: the deltas
        # after it are at most the learnt peak later than their schedule, so it plays on without a gap.
        hold = self._jitter.hold_s()
        return hold <= 0 or (item.refilled_at is not None and now - item.refilled_at >= hold)

    def _stalled(self, item: _Item) -> bool:
        """A head item that cannot play, has had nothing for `stall_ms`, and keeps a later one waiting."""
        if self._clock.now() - item.last_at < self._stall:
            return False
        return any(other is not item and (other.queued or other.ended) for other in self._items.values())

    def _give_up(self, item: _Item) -> None:
        """Treat a stalled item as ended: play what it has queued, then the next item."""
        self._warn(
            "stalled_item",
            f"item {item.item_id!r} had no audio for {self._stall * 1000:.0f} ms while later audio waited;"
            " it was given up",
        )
        item.given_up = True
        self.end_item(item.item_id)

    def _count_late(self, reason: str, item_id: str, size: int) -> None:
        metrics.PLAYOUT_DROPPED_MS.labels(reason=reason).inc(size / 2 / (MODEL_RATE / 1000))
        self._warn(reason, f"audio for item {item_id!r} arrived after it was finished or cut; dropped")

    def _notify_dropped(self, item_id: str, played: int) -> None:
        if self._on_dropped is None:
            return
        try:
            self._on_dropped(item_id, played)
        except Exception:
            log.exception("on_dropped callback failed for item %r", item_id)

    def _warn(self, reason: str, message: str) -> None:
        metrics.PLAYOUT_WARNINGS.labels(reason=reason).inc()
        if reason not in self._warned:
            self._warned.add(reason)
            log.warning("playout: %s (further %r warnings are only counted)", message, reason)


def _resample(resampler: MonoResampler, samples: Int16Array | None) -> Int16Array:
    """24 -> 48 kHz through the item's stateful resampler; None flushes its tail."""
    if samples is None:
        converted = resampler.resample(None)
    else:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = MODEL_RATE
        converted = resampler.resample(frame)
    if not converted:
        return np.zeros(0, dtype=np.int16)
    parts = [np.asarray(f.to_ndarray(), dtype=np.int16).reshape(-1) for f in converted]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _stereo_frame(mono: Int16Array, *, pts: int) -> av.AudioFrame:
    stereo = np.repeat(mono, 2).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout=OUT_LAYOUT)
    frame.sample_rate = OUT_RATE
    frame.pts = pts
    frame.time_base = _TIME_BASE
    return frame
