"""The playout's item queue: translations in, 20 ms of 48 kHz mono out per frame, on a clock it is told.

Items play in the order their first audio came, back to back: `push` queues an item's audio, `end`
says no more will come, `clear` drops everything, `pull(frame_time, now)` takes the next frame. Times
are passed in (nothing here reads a clock, sleeps or knows aiortc) and what happens is told to a
`PlayoutReport`, so the decisions are unit-tested directly and a simulated meeting runs in no time.

Adaptive start: a new item waits until `cushion_ms` of it are queued and, after its first audio, for
the hold a per-feed `ArrivalJitterEstimator` has learnt from how late the model's deltas arrive
(0 while they come ahead of real time, so a fast stream pays nothing; about the jitter when the
model streams at real time). `hold_ms` is the hold until the first lateness is measured: a guess
for the first translation of a feed, never a floor under what was learnt. An item that runs dry
waits the same hold after its next audio before resuming, so one late delta does not become a
stutter. Why: a fixed 60 ms cushion is enough for a
model that streams 4x faster than real time, and far too little for one at real time with 0-150 ms
of delay before each delta, where every late delta became a gap in the middle of a sentence.

Running dry is an underrun only once more audio of the item comes. An item also runs out when its
audio is over and the engine cannot say so yet (the translate endpoint has no end-of-item event: the
next translation's transcript, a heartbeat or a quiet spell ends the item), and the silence after
its last audio is then the speaker's pause, not a gap inside the translation.

Nothing in flight blocks a listener: an item that is not ended, cannot play (ran dry or never had
its cushion) and has received nothing for `stall_ms` while a later item waits is given up (what it
had is played, late audio of it is dropped and counted, `cut_short` reports what was heard). It does
not resume later: its rest would be heard after the next sentence, out of order. A model link that
dropped mid-response never ends its item; this keeps the next translation from waiting behind it
until the lag bound (`max_lag_ms` queued) cuts it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np

from translator_bot.audio.formats import BYTES_PER_SAMPLE, MODEL_BYTES_PER_MS, MODEL_RATE
from translator_bot.audio.jitter import ArrivalJitterEstimator, JitterConfig
from translator_bot.audio.pcm import Int16Array, samples_per_frame
from translator_bot.audio.playout_types import PlayoutKey, PlayoutReport
from translator_bot.audio.playout_upsample import OUT_RATE, UPSAMPLE, ItemUpsampler

FRAME_SAMPLES = samples_per_frame(OUT_RATE)  # 960
SAMPLES_PER_MS = OUT_RATE // 1000

# One chunk longer than 60 s is garbage, not a translation (model deltas are ~0.1-0.2 s).
_MAX_CHUNK_BYTES = 60 * MODEL_RATE * BYTES_PER_SAMPLE
# A cut inside an item starts the remaining audio with this fade-in, so the skip does not click.
_FADE_SAMPLES = 2 * SAMPLES_PER_MS
# Finished or cut items remembered for played_samples() and for ignoring their late chunks.
_HISTORY = 512


@dataclass(frozen=True)
class _Outcome:
    """What is remembered of a finished or removed item."""

    played: int  # 24 kHz samples emitted
    reason: str  # why its late chunks are dropped: "after_end", "cut_item" or "after_stall"
    gaps: int


@dataclass
class _DrySpell:
    """An item that ran out of audio before its end: its silent frames so far, and what to report if
    more of its audio shows them to be a gap inside the translation."""

    frames: int  # frames zero-filled (wholly or in part) since it ran dry
    played_s: float  # how far into the item it ran dry
    hold_s: float  # the hold a new item got then
    peak_s: float | None  # the learnt peak lateness then


@dataclass(eq=False)
class _Item:
    key: PlayoutKey
    chunks: deque[Int16Array] = field(default_factory=deque)  # 48 kHz mono, not yet played
    head: int = 0  # samples of chunks[0] already played
    queued: int = 0  # 48 kHz samples in chunks (after head)
    received: int = 0  # 24 kHz samples accepted from the model
    played: int = 0  # 48 kHz samples pulled
    upsampler: ItemUpsampler = field(default_factory=ItemUpsampler)
    ended: bool = False
    started: bool = False
    buffering: bool = True  # waiting for the cushion before (re)starting
    first_at: float | None = None  # time its first audio was queued
    last_at: float = 0.0  # time its latest audio was queued
    refilled_at: float | None = None  # first audio after it ran dry (the resume hold starts here)
    gaps: int = 0  # times it ran dry in the middle (silence inserted inside the translation)
    dry: _DrySpell | None = None  # out of audio, not (yet) known to be a gap: no more audio came
    given_up: bool = False  # stalled in front of a later item: ended by the queue itself

    def played_model_samples(self) -> int:
        # The resampler keeps timing, so 2 output samples = 1 input sample; never report more than
        # the model actually sent (a truncation past the end is a protocol error).
        return min(self.received, self.played // UPSAMPLE)


class PlayoutQueue:
    """The items of one feed, in playing order. Not thread-safe; `push` and `end` never raise."""

    def __init__(
        self,
        report: PlayoutReport,
        *,
        cushion_ms: float = 60,
        hold_ms: float = 0,
        max_lag_ms: float = 3000,
        stall_ms: float = 1000,
        adaptive: bool = True,
        jitter: JitterConfig | None = None,
    ) -> None:
        if cushion_ms < 0 or max_lag_ms < cushion_ms + 20:
            raise ValueError(
                f"need 0 <= cushion_ms and max_lag_ms >= cushion_ms + 20, got {cushion_ms}, {max_lag_ms}"
            )
        if stall_ms <= 0:
            raise ValueError(f"need stall_ms > 0, got {stall_ms}")
        self._cushion = round(cushion_ms * SAMPLES_PER_MS)
        # A source that streams in real time (one delta per its own length) never builds a cushion
        # larger than one delta; holding a new item briefly after its first audio absorbs the arrival
        # jitter of the next delta at a cost of `hold_ms`, instead of a whole delta's worth of cushion.
        # Adaptive, it is only the guess for the feed's first items: once the estimator has measured
        # how late the deltas really come, its hold replaces it, so a smooth stream stops paying it.
        self._hold = hold_ms / 1000
        self._max_lag = round(max_lag_ms * SAMPLES_PER_MS)
        self._stall = stall_ms / 1000
        # None: the fixed cushion and hold only (the behaviour before the estimator; benchmarks
        # compare against it).
        self._jitter = ArrivalJitterEstimator(jitter) if adaptive else None
        self._report = report
        self._items: OrderedDict[PlayoutKey, _Item] = OrderedDict()  # playing order = first push order
        self._history: OrderedDict[PlayoutKey, _Outcome] = OrderedDict()
        self._queued = 0  # 48 kHz samples queued over all items
        self.underruns = 0

    # ---- feeding -------------------------------------------------------------------------------

    def push(self, key: PlayoutKey, pcm: bytes | bytearray | memoryview, now: float) -> None:
        """Queue 24 kHz mono s16le audio of `key` (any length, odd ones included), received at `now`."""
        try:
            self._push(key, pcm, now)
        except Exception as exc:
            self._report.warning(
                "internal_error", f"enqueue failed ({type(exc).__name__}: {exc}); chunk dropped"
            )

    def end(self, key: PlayoutKey) -> None:
        """No more audio will come for `key`: play its tail, then move on without an underrun."""
        try:
            item = self._items.get(key)
            if item is None or item.ended:
                return
            if item.upsampler.carry:
                self._report.warning("odd_length", f"item {key} ended on half a sample; byte dropped")
            item.ended = True
            self._append(item, item.upsampler.flush())
        except Exception as exc:
            self._report.warning("internal_error", f"end_item failed ({type(exc).__name__}: {exc})")

    def clear(self) -> dict[PlayoutKey, int]:
        """Drop everything queued at once (interruption); played 24 kHz samples per cut item."""
        cut: dict[PlayoutKey, int] = {}
        dropped = self._queued
        for item in list(self._items.values()):
            cut[item.key] = self._cut(item)
        if dropped:
            self._report.dropped("clear", dropped / SAMPLES_PER_MS)
        for key, played in cut.items():
            self._report.cut_short(key, played)
        return cut

    def discard(self) -> None:
        """Forget what is queued without reporting it: nobody will play it (the track stopped)."""
        self._items.clear()
        self._queued = 0

    # ---- accounting ----------------------------------------------------------------------------

    def played_samples(self, key: PlayoutKey) -> int:
        """24 kHz samples of `key` that were really pulled (0 for an unknown item)."""
        item = self._items.get(key)
        if item is not None:
            return item.played_model_samples()
        remembered = self._history.get(key)
        return remembered.played if remembered is not None else 0

    def gaps(self, key: PlayoutKey) -> int:
        """How many times `key` ran dry in the middle (silence inserted inside the translation)."""
        item = self._items.get(key)
        if item is not None:
            return item.gaps
        remembered = self._history.get(key)
        return remembered.gaps if remembered is not None else 0

    def start_hold_s(self) -> float:
        """How long a new item now waits after its first audio: the learnt jitter hold once the
        feed's deltas have shown how late they come, `hold_ms` until then (and always, when not
        adaptive)."""
        if self._jitter is None or self._jitter.peak_s() is None:
            return self._hold
        return self._jitter.hold_s()

    def queued_ms(self) -> float:
        return self._queued / SAMPLES_PER_MS

    def starving(self) -> bool:
        """Whether the playing item has started, is not over, and holds less than a frame: the next
        frame runs it dry unless more of its audio comes first."""
        if not self._items:
            return False
        item = next(iter(self._items.values()))
        return item.started and not item.buffering and not item.ended and item.queued < FRAME_SAMPLES

    def idle(self) -> bool:
        """Nothing to play and nothing under way: no item queued, held, or waiting for more audio."""
        return not self._items

    # ---- playing -------------------------------------------------------------------------------

    def pull(self, frame_time: float, now: float) -> Int16Array:
        """The 20 ms of 48 kHz mono for the frame scheduled at `frame_time`, pulled at `now`: queued
        audio in item order, zeros where there is none."""
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        underrun = False  # a frame of a gap known to be inside a translation
        while filled < FRAME_SAMPLES and self._items:
            item = next(iter(self._items.values()))
            if item.buffering:
                if self._ready(item, frame_time):
                    item.buffering = False
                    item.started = True
                elif self._stalled(item, now):
                    self._give_up(item)
                    continue
                else:
                    if item.dry is not None:
                        item.dry.frames += 1
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
                    # Out of audio before its end: rebuild the cushion before resuming, so a trickle of
                    # small late chunks does not turn into a stutter. A gap inside the translation
                    # (counted) if more of it comes; else its audio was over.
                    item.buffering = True
                    item.refilled_at = None
                    peak = self._jitter.peak_s() if self._jitter is not None else None
                    item.dry = _DrySpell(1, item.played / OUT_RATE, self.start_hold_s(), peak)
                break
        if underrun:
            self._count_underruns(1)
        return out

    def _count_underruns(self, frames: int) -> None:
        self.underruns += frames
        self._report.underrun(frames)

    def _gap_confirmed(self, item: _Item) -> None:
        """More audio of an item that ran dry: its silent frames were a gap inside the translation."""
        dry = item.dry
        assert dry is not None
        item.dry = None
        item.gaps += 1
        self._count_underruns(dry.frames)
        self._report.ran_dry(item.key, dry.played_s, dry.hold_s, dry.peak_s)

    # ---- internals -----------------------------------------------------------------------------

    def _push(self, key: PlayoutKey, pcm: bytes | bytearray | memoryview, now: float) -> None:
        if not isinstance(key, PlayoutKey):
            self._report.warning("bad_item_id", f"item key of type {type(key).__name__}; chunk dropped")
            return
        if not isinstance(pcm, bytes | bytearray | memoryview):
            self._report.warning("bad_chunk", f"audio chunk of type {type(pcm).__name__}; dropped")
            return
        size = pcm.nbytes if isinstance(pcm, memoryview) else len(pcm)
        item = self._items.get(key)
        remembered = self._history.get(key) if item is None else None
        if remembered is not None or (item is not None and item.ended):
            # Deltas still in flight when an item was cut (or after it finished) are not played.
            if remembered is not None:
                reason = remembered.reason
            else:
                reason = "after_stall" if item is not None and item.given_up else "after_end"
            self._report.dropped(reason, size / MODEL_BYTES_PER_MS)
            self._report.warning(
                reason, f"audio for item {key} arrived after it was finished or cut; dropped"
            )
            return
        if size == 0:
            self._report.warning("empty_chunk", f"empty audio chunk for item {key}")
            return
        if size > _MAX_CHUNK_BYTES:
            self._report.warning("oversized_chunk", f"{size} byte chunk for item {key} dropped")
            if item is not None:
                item.upsampler.skip(pcm, size)
            return
        if item is None:
            # Created only by a usable chunk: a bad first chunk must not leave an empty item blocking
            # the queue head until the lag bound removes it.
            item = _Item(key, last_at=now)
            self._items[key] = item
        if size % 2:
            self._report.warning("odd_length", f"chunk of {size} bytes for item {key}; half sample carried")
        samples = item.upsampler.whole_samples(pcm)
        if not samples.size:
            return
        try:
            upsampled = item.upsampler.upsample(samples)
        except Exception as exc:
            self._report.warning(
                "resample_error", f"upsampling failed ({type(exc).__name__}: {exc}); chunk dropped"
            )
            return
        item.received += samples.size
        item.last_at = now
        if item.started and item.buffering and item.refilled_at is None:
            item.refilled_at = now
        if item.dry is not None:
            self._gap_confirmed(item)
        if self._jitter is not None:
            self._jitter.observe(key, now, samples.size / MODEL_RATE)
        if item.first_at is None:
            item.first_at = now
        self._append(item, upsampled)
        self._report.queue_lag(self._queued / OUT_RATE)
        self._enforce_lag_bound()

    def _append(self, item: _Item, samples: Int16Array) -> None:
        if samples.size:
            item.chunks.append(samples)
            item.queued += samples.size
            self._queued += samples.size

    def _enforce_lag_bound(self) -> None:
        excess = self._queued - self._max_lag
        if excess <= 0:
            return
        # Whole stale items first: the listener hears complete sentences, just not the old ones.
        dropped_items: list[tuple[PlayoutKey, int]] = []
        while excess > 0 and len(self._items) > 1:
            oldest = next(iter(self._items.values()))
            excess -= oldest.queued
            self._report.dropped("lag", oldest.queued / SAMPLES_PER_MS)
            dropped_items.append((oldest.key, self._cut(oldest)))
        if excess > 0:
            # One item alone is too far ahead (a continuous stream): skip its oldest audio, in whole
            # frames so that small overshoots do not cause a skip on every chunk.
            item = next(iter(self._items.values()))
            skip = min(item.queued, -(-excess // FRAME_SAMPLES) * FRAME_SAMPLES)
            self._skip(item, skip)
            self._report.dropped("lag", skip / SAMPLES_PER_MS)
        for key, played in dropped_items:
            self._report.warning(
                "lag_bound", f"queue over {self._max_lag // SAMPLES_PER_MS} ms; dropped {key}"
            )
            self._report.cut_short(key, played)

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
        del self._items[item.key]
        self._remember(item, played, "cut_item")
        return played

    def _finish(self, item: _Item) -> None:
        del self._items[item.key]
        played = item.played_model_samples()
        self._remember(item, played, "after_stall" if item.given_up else "after_end")
        if item.given_up:
            self._report.cut_short(item.key, played)

    def _remember(self, item: _Item, played: int, reason: str) -> None:
        if self._jitter is not None:
            self._jitter.forget(item.key)
        self._history[item.key] = _Outcome(played, reason, item.gaps)
        self._history.move_to_end(item.key)
        while len(self._history) > _HISTORY:
            self._history.popitem(last=False)

    def _ready(self, item: _Item, frame_time: float) -> bool:
        """Whether a buffering item may (re)start with the frame scheduled at `frame_time`.

        The hold is counted to the frame's scheduled time, not to when it is pulled: after a late
        wake-up the frames that catch up are played back to back, so starting one of them because
        the clock has moved on would shorten the hold by the lateness."""
        if item.ended:
            return True
        if item.queued < self._cushion:
            return False
        # (A microsecond of slack: frame deadlines are sums of floats.)
        at = frame_time + 1e-6
        if not item.started:
            hold = self.start_hold_s()
            # No hold: start at once, even on a frame a late consumer is still catching up on.
            return hold <= 0 or (item.first_at is not None and at - item.first_at >= hold)
        if self._jitter is None:
            return True  # the fixed cushion alone decides a restart
        # After running dry, hold as at a start, counted from the audio that refilled it: the deltas
        # after it are at most the learnt peak later than their schedule, so it plays on without a gap.
        hold = self._jitter.hold_s()
        return hold <= 0 or (item.refilled_at is not None and at - item.refilled_at >= hold)

    def _stalled(self, item: _Item, now: float) -> bool:
        """A head item that cannot play, has had nothing for `stall_ms`, and keeps a later one waiting."""
        if now - item.last_at < self._stall:
            return False
        return any(other is not item and (other.queued or other.ended) for other in self._items.values())

    def _give_up(self, item: _Item) -> None:
        """Treat a stalled item as ended: play what it has queued, then the next item."""
        self._report.warning(
            "stalled_item",
            f"item {item.key} had no audio for {self._stall * 1000:.0f} ms while later audio waited;"
            " it was given up",
        )
        item.given_up = True
        self.end(item.key)
