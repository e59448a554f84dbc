"""Model audio -> room audio: a paced aiortc audio track that plays a `PlayoutQueue`.

The queue (playout_queue.py) decides what each 20 ms frame holds: items in order, cushion and learnt
hold, stalled items, the lag bound, what was heard of each item. This track only paces the frames and
packs them for aiortc.

Output: an Opus packet per 20 ms frame (opus_out.py), which aiortc's sender only packs into RTP: no
encode in its worker thread, no audio-level loop. The queue gives 48 kHz mono s16 (the 24 -> 48 kHz
upsampling is done as each chunk is pushed, playout_upsample.py), so `recv()` encodes what it pulls,
or sends the cached silence packet while the feed is idle. `next_frame()` is the same paced schedule
as PCM, before encoding.

Idle: with `dtx` (the default) a feed with nothing to play sends what audio/dtx.py decides: after the
codec's tail and a 200 ms hangover, a one-byte DTX frame and then one every 400 ms, instead of a
silence packet every 20 ms. Meanwhile `recv()` sleeps until the next keep-alive's slot, or until
audio is queued (`enqueue` wakes it): that audio's first frame then goes out at the next 20 ms slot
boundary, exactly when it would have without DTX, and the next ones at exact 20 ms pace. The slots
not sent keep their pts (the RTP timestamps jump over the pause; aiortc numbers the packets it is
handed, so sequence numbers stay contiguous). aiortc's sender sets the RTP marker bit on every
audio packet, so the first of a talkspurt has it too (RFC 3551's talkspurt mark); nothing more is
needed. `dtx=False` keeps a packet in every slot, for a path that needs continuous packets.
`welcome()`, when a listener may be connecting, sends every slot for a few seconds, so that a
receiver waiting for a few packets before it plays (aiortc's) does not wait for as many keep-alives.

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

import asyncio
import logging
import math
from collections.abc import Callable
from typing import NamedTuple

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from translator_bot import metrics
from translator_bot.audio.clock import Clock, MonotonicClock
from translator_bot.audio.dtx import DTX_WELCOME_SLOTS, DtxSchedule, Send
from translator_bot.audio.jitter import JitterConfig
from translator_bot.audio.opus_out import OPUS_TIME_BASE, OpusFeedEncoder, OpusPacket
from translator_bot.audio.pcm import Int16Array
from translator_bot.audio.playout_queue import FRAME_SAMPLES, PlayoutQueue
from translator_bot.audio.playout_types import PlayoutKey
from translator_bot.audio.playout_upsample import OUT_RATE

__all__ = ["FRAME_SAMPLES", "FRAME_SECONDS", "CutShortCallback", "OutFrame", "PlayoutKey", "PlayoutTrack"]

log = logging.getLogger(__name__)

FRAME_SECONDS = FRAME_SAMPLES / OUT_RATE

# After a wake-up this late (a suspended process, a stalled loop) the missed frame slots are skipped
# instead of bursting every missed frame at once.
_MAX_CATCH_UP_SECONDS = 1.0
# A consumer that calls recv() this long after the previous frame was returned had gone away (a
# re-published feed's new PeerConnection): it gets no catch-up at all. Ten frames: more than a busy
# event loop delays one awaited call (a loop that is merely slow is caught up, so lag does not build
# up), less than a re-publish can take (a signalling round trip, then ICE and DTLS handshakes).
_CONSUMER_GONE_SECONDS = 0.2

# A frame pulled this late with the playing translation about to run dry first lets the loop run a
# few times: audio that reached the process while the loop was busy can still be a hand-off or two
# from the queue (the model link's task, then the lane's consumer). The probe that found it: a delta
# read from the socket 9 ms before a 12 ms late frame, queued 3 ms after it, and a gap between.
_HANDOFF_LATE_SECONDS = 0.002
_HANDOFF_YIELDS = 3

# The listener did not hear the rest of this item: (its key, the 24 kHz samples that were heard).
CutShortCallback = Callable[[PlayoutKey, int], None]


class OutFrame(NamedTuple):
    """One 20 ms slot of the feed before encoding: its pts (in 1/48000 s) and 48 kHz mono samples."""

    pts: int
    pcm: Int16Array


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
        on_cut_short: CutShortCallback | None = None,
        dtx: bool = True,
    ) -> None:
        super().__init__()
        self._report = _MetricsReport(on_cut_short)
        self._queue = PlayoutQueue(
            self._report,
            cushion_ms=cushion_ms,
            hold_ms=hold_ms,
            max_lag_ms=max_lag_ms,
            stall_ms=stall_ms,
            adaptive=adaptive,
            jitter=jitter,
        )
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._start: float | None = None
        self._sent = 0  # frame slots of the schedule used (sent or skipped); frame n has pts n * 960
        self._returned_at: float | None = None  # when recv() last handed out a frame
        self._encoder = OpusFeedEncoder()
        self._dtx = DtxSchedule() if dtx else None
        # Set by enqueue (and stop) to end an idle wait between keep-alives.
        self._wake = asyncio.Event()
        self.frames_sent = 0  # frame slots played (sent, or held back as DTX)
        self.packets_sent = 0  # packets handed to the sender

    # ---- the queue, at the clock's time --------------------------------------------------------

    def enqueue(self, pcm: bytes | bytearray | memoryview, key: PlayoutKey) -> None:
        """Queue 24 kHz mono s16le audio of `key` (any length, odd ones included). Never raises."""
        self._queue.push(key, pcm, self._clock.now())
        self._wake.set()

    def end_item(self, key: PlayoutKey) -> None:
        """No more audio will come for `key`: play its tail, then move on without an underrun."""
        self._queue.end(key)

    def clear(self) -> dict[PlayoutKey, int]:
        """Stop at once (interruption): drop everything queued; played 24 kHz samples per cut item."""
        return self._queue.clear()

    def played_samples(self, key: PlayoutKey) -> int:
        """24 kHz samples of `key` that recv() has really emitted (0 for an unknown item)."""
        return self._queue.played_samples(key)

    def gaps(self, key: PlayoutKey) -> int:
        """How many times `key` ran dry in the middle (silence inserted inside the translation)."""
        return self._queue.gaps(key)

    def start_hold_ms(self) -> float:
        """How long a new item now waits after its first audio (the learnt jitter hold; `hold_ms`
        until something is learnt)."""
        return self._queue.start_hold_s() * 1000

    def queued_ms(self) -> float:
        return self._queue.queued_ms()

    @property
    def underruns(self) -> int:
        return self._queue.underruns

    def welcome(self) -> None:
        """A listener may be connecting to this feed (it was just published, or relabelled for new
        people): with DTX, send a packet in every slot for the next few seconds (audio/dtx.py)."""
        if self._dtx is None:
            return
        now_slot = self._sent
        if self._start is not None:
            now_slot = max(now_slot, self._slots_elapsed(self._clock.now()))
        self._dtx.keep_sending(now_slot + DTX_WELCOME_SLOTS)
        self._wake.set()  # out of the sleep between keep-alives: the next slot goes out

    def stop(self) -> None:
        self._queue.discard()
        super().stop()
        self._wake.set()

    # ---- playing -------------------------------------------------------------------------------

    async def recv(self) -> OpusPacket:
        """The next packet, when it is due (what aiortc's sender calls): an Opus frame per 20 ms slot
        while there is audio, and while idle what the DTX schedule sends."""
        while True:
            frame = await self.next_frame()
            send = Send.FRAME
            if self._dtx is not None:
                quiet = self._queue.idle() and self._encoder.settled() and not frame.pcm.any()
                send = self._dtx.decide(frame.pts // FRAME_SAMPLES, quiet=quiet)
            if send is not Send.NOTHING:
                self.packets_sent += 1
                metrics.FRAMES_OUT.inc()
                return self._encode(frame) if send is Send.FRAME else self._encoder.dtx(frame.pts)
            await self._idle_until_keepalive()

    def _encode(self, frame: OutFrame) -> OpusPacket:
        try:
            return self._encoder.encode(frame.pcm, frame.pts)
        except Exception as exc:
            self._report.warning(
                "internal_error", f"encoding failed ({type(exc).__name__}: {exc}); sent silence"
            )
            packet = av.Packet(self._encoder.silence_payload)
            packet.pts = frame.pts
            packet.time_base = OPUS_TIME_BASE
            return packet

    async def _idle_until_keepalive(self) -> None:
        """Sleep through the slots DTX does not send: until the next keep-alive's slot is due, or
        until audio is queued (or the track stops); then the schedule moves on to the slot due next."""
        assert self._dtx is not None and self._start is not None
        keepalive = self._dtx.next_packet_slot()
        if keepalive is None or not self._queue.idle():
            return
        self._wake.clear()
        woken = True
        if self.readyState == "live":
            clock = self._clock
            sleeper = asyncio.ensure_future(clock.sleep_until(self._start + keepalive * FRAME_SECONDS))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken = not sleeper.done()
                sleeper.cancel()
                waker.cancel()
        now = self._clock.now()
        if woken:
            # Audio came mid-slot: its first frame is the next slot's, due at that slot's boundary,
            # as without DTX (the queue is pulled at the same times, so latency and pacing are the
            # continuous feed's; only the slots before it are not sent).
            self._sent = max(self._sent, math.ceil((now - self._start) / FRAME_SECONDS - 1e-6))
        else:
            self._skip_missed_slots(now)  # the keep-alive's slot, or a later one after a late wake-up
        # Still here: this wait was ours, not a consumer that went away (next_frame's check).
        self._returned_at = now

    @property
    def encoder(self) -> OpusFeedEncoder:
        return self._encoder

    async def next_frame(self) -> OutFrame:
        """The next frame's samples, when it is due: the paced schedule `recv()` encodes."""
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
            self._report.warning(
                "clock_jump", f"playout woke {late:.1f} s late; the missed frame slots were skipped"
            )
            self._skip_missed_slots(clock.now())
        elif late > _HANDOFF_LATE_SECONDS and self._queue.starving():
            await self._let_handoffs_run()
        mono: Int16Array
        try:
            # The frame's place in the media timeline (its pts): a consumer that wakes late and catches
            # up still plays this frame at this time, as the listener's jitter buffer follows the pts.
            mono = self._queue.pull(self._start + self._sent * FRAME_SECONDS, clock.now())
        except Exception as exc:
            self._report.warning(
                "internal_error", f"playout failed ({type(exc).__name__}: {exc}); sent silence"
            )
            mono = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        frame = OutFrame(self._sent * FRAME_SAMPLES, mono)
        self._sent += 1
        self.frames_sent += 1
        self._returned_at = clock.now()
        return frame

    async def _let_handoffs_run(self) -> None:
        for _ in range(_HANDOFF_YIELDS):
            await asyncio.sleep(0)
            if not self._queue.starving():
                break
        if self.readyState != "live":
            raise MediaStreamError

    def _skip_missed_slots(self, now: float) -> int:
        """Move the schedule past the frame slots whose time has gone by, so that the next frame is due
        within the last 20 ms and the ones after it at real-time pace; returns how many were skipped.

        Their pts are skipped too, so the pts (and the RTP timestamps aiortc derives from them) keep
        following the clock, as RTP timestamps do after a silence that was not sent (RFC 3550 5.1):
        receivers play on after a timestamp gap that matches the arrival gap, while contiguous
        timestamps arriving seconds late would look to them like a jump in network delay, inflating
        their jitter estimate and buffer. A new PeerConnection's encoder starts its RTP timestamps
        afresh anyway. The queued audio is not touched: nobody heard it, it plays next."""
        missed = self._slots_elapsed(now) - self._sent
        if missed <= 0:
            return 0
        self._sent += missed
        return missed

    def _slots_elapsed(self, now: float) -> int:
        """Whole frame slots of the schedule gone by at `now` (the slot due now is this one)."""
        assert self._start is not None
        # (A microsecond of slack: deadlines are sums of floats.)
        return int((now - self._start) / FRAME_SECONDS + 1e-6)


class _MetricsReport:
    """The queue's report as metrics, a log line per kind of warning, and the owner's callback."""

    def __init__(self, on_cut_short: CutShortCallback | None) -> None:
        self._on_cut_short = on_cut_short
        self._warned: set[str] = set()

    def warning(self, reason: str, message: str) -> None:
        metrics.PLAYOUT_WARNINGS.labels(reason=reason).inc()
        if reason not in self._warned:
            self._warned.add(reason)
            log.warning("playout: %s (further %r warnings are only counted)", message, reason)

    def dropped(self, reason: str, ms: float) -> None:
        metrics.PLAYOUT_DROPPED_SECONDS.labels(reason=reason).inc(ms / 1000)

    def underrun(self, frames: int) -> None:
        metrics.PLAYOUT_UNDERRUNS.inc(frames)

    def ran_dry(self, key: PlayoutKey, played_s: float, hold_s: float, peak_s: float | None) -> None:
        # Which feed's translation had a gap, and against what hold: the underrun metric alone
        # cannot tell a late model from a hold that learnt too little.
        log.debug(
            "playout: %s had a gap: it ran dry %.2f s into it; hold then %.0f ms, learnt peak lateness %s",
            key,
            played_s,
            hold_s * 1000,
            "none" if peak_s is None else f"{peak_s * 1000:.0f} ms",
        )

    def queue_lag(self, seconds: float) -> None:
        metrics.PLAYOUT_QUEUE_LAG.observe(seconds)

    def cut_short(self, key: PlayoutKey, heard_samples: int) -> None:
        if self._on_cut_short is None:
            return
        try:
            self._on_cut_short(key, heard_samples)
        except Exception:
            log.exception("on_cut_short callback failed for item %s", key)
