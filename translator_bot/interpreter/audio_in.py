"""Audio in: every audio stream a participant publishes, each read to its end by its own task.

A second stream can neither stop the first nor leave frames queueing unread; only a participant's first
stream (by arrival) is interpreted, the others are read and discarded. A crashed reader is restarted with
back-off, and reads (and drops) frames meanwhile so nothing queues up in the track. What to do with the
audio (which lanes hear it) is the meeting's business: it gets 24 kHz mono PCM per participant, and only
of the participants it says it `needs` (a speaker no lane interprets is read and counted, not converted:
the conversion is the one per-frame cost of the inbound path that is ours).

A sender that stops sending (Opus DTX, a muted microphone) is heard as the silence it is: a timer per
interpreted stream asks the converter for the silence presumed by the wall clock (see
`translator_bot.audio.inbound`), so a turn ends on time instead of when the speaker talks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from translator_bot.audio.inbound import MAX_IDLE_FILL_S, InboundConverter
from translator_bot.interpreter.health import PartHealth, Restarts
from translator_bot.metrics import FRAMES_IGNORED, FRAMES_IN, INPUT_RESTARTS
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)

# How often a stream's presumed silence is handed on (a quiet stream only; the timer costs a wake-up).
IDLE_TICK_S = 0.05
# The same for a participant whose silence times no turn (`timely` says no: not heard yet, with lazy
# lanes): it only fills their pre-roll, so it comes in fewer, larger pieces. In a webinar of silent
# listeners in a DTX room these wake-ups were a tenth of the bot's event-loop time.
QUIET_TICK_S = 0.25


@dataclass(slots=True, eq=False)
class InboundStream:
    """One audio stream of one participant and the task that reads it."""

    pid: str
    stream: str
    track: MediaStreamTrack
    order: int  # arrival order: a participant's earliest live stream is the one interpreted
    frames: int = 0
    task: asyncio.Task[None] | None = None
    restarts: Restarts = field(default_factory=Restarts)

    def __str__(self) -> str:
        return self.stream or self.pid


def primary_stream(streams: Iterable[InboundStream], pid: str) -> InboundStream | None:
    """The stream of `pid` that is interpreted: the earliest-arrived one still live."""
    own = [s for s in streams if s.pid == pid]
    return min(own, key=lambda s: s.order) if own else None


def stream_health(stream: InboundStream, now: float) -> PartHealth | None:
    """The stream's reader as a part that is not well (None: it is)."""
    if stream.restarts.recent(now):
        return PartHealth(f"audio {stream}", "restarted", stream.restarts.describe())
    if stream.task is not None and stream.task.done() and not stream.task.cancelled():
        return PartHealth(f"audio {stream}", "stopped", "its reading task ended")
    return None


class AudioIn:
    """The participants' audio streams; `on_pcm(pid, pcm)` gets the interpreted stream of each
    participant for whom `needed(pid)` holds (asked per frame: it must be cheap)."""

    def __init__(
        self,
        on_pcm: Callable[[str, bytes], None],
        *,
        name_of: Callable[[str], str],
        clock: Callable[[], float] = time.monotonic,
        needed: Callable[[str], bool] = lambda pid: True,
        timely: Callable[[str], bool] = lambda pid: True,
        max_idle_fill_s: float = MAX_IDLE_FILL_S,
    ) -> None:
        """`timely(pid)`: whether the silence of `pid`, once they stop sending, must be handed on
        within IDLE_TICK_S (a turn of theirs may be ending) or may wait QUIET_TICK_S.
        `max_idle_fill_s`: silence presumed for a sender that stopped sending, at most (it must be
        longer than the pause that ends a turn)."""
        self._on_pcm = on_pcm
        self._max_idle_fill_s = max_idle_fill_s
        self._needed = needed
        self._timely = timely
        self._name_of = name_of
        self._clock = clock
        self._streams: dict[tuple[str, str], InboundStream] = {}
        # Each participant's interpreted stream, kept as streams come and go: a frame asks which it is
        # with one lookup instead of a scan of every stream in the meeting.
        self._primary: dict[str, InboundStream] = {}
        self._order = 0
        self._tasks = TaskSet("audio in", logger=log)
        # Decoded frames per participant since their audio arrived: zero means the media path from
        # them is not up yet (their first second can be lost to a DTLS retransmit at join).
        self.frames_heard: dict[str, int] = {}

    def start(self, pid: str, stream: str, track: MediaStreamTrack) -> None:
        old = self._streams.pop((pid, stream), None)
        if old is not None and old.task is not None:
            old.task.cancel()  # the same stream subscribed again: the new track replaces the old
        self._order += 1
        inbound = InboundStream(pid, stream, track, self._order)
        self._streams[(pid, stream)] = inbound
        primary = primary_stream(self._streams.values(), pid)
        assert primary is not None  # `inbound` is one of them
        self._primary[pid] = primary
        if primary is inbound:
            self.frames_heard[pid] = 0
        else:
            log.warning(
                "participant %s sends more than one audio stream: interpreting %s only; %s is received"
                " and discarded",
                pid,
                primary,
                inbound,
            )
        inbound.task = self._tasks.spawn(self._pump(inbound), name=f"inbound {inbound}")

    def stop(self, pid: str, stream: str | None) -> None:
        """Stop the reader of one stream of `pid` (None: of all its streams)."""
        for key in [k for k in self._streams if k[0] == pid and (stream is None or k[1] == stream)]:
            inbound = self._streams.pop(key)
            if inbound.task is not None:
                inbound.task.cancel()
        primary = primary_stream(self._streams.values(), pid)
        if primary is None:
            self._primary.pop(pid, None)
            self.frames_heard.pop(pid, None)
        else:
            self._primary[pid] = primary
            self.frames_heard[pid] = primary.frames

    async def aclose(self) -> None:
        self._streams = {}
        self._primary = {}
        await self._tasks.close()
        self.frames_heard.clear()

    def degraded(self, now: float) -> list[PartHealth]:
        return [part for s in self._streams.values() if (part := stream_health(s, now)) is not None]

    async def _pump(self, inbound: InboundStream) -> None:
        """Read the stream to its end. A crash restarts the reading after a back-off, during which
        frames are still read (and dropped) so nothing queues up in the track meanwhile."""
        pid = inbound.pid
        name = self._name_of(pid)
        log.info("receiving audio from participant %s (%s)", pid, name)
        try:
            while True:
                try:
                    await self._read(inbound, name)
                    return
                except Exception as exc:
                    delay = inbound.restarts.record(self._clock(), f"{type(exc).__name__}: {exc}")
                    INPUT_RESTARTS.inc()
                    log.exception(
                        "audio of participant %s (%s) failed; restarting in %.0f s", pid, name, delay
                    )
                    if await self._discard(inbound, delay):
                        return
        finally:
            log.info("audio of participant %s (%s) ended: %d frames received", pid, name, inbound.frames)

    async def _read(self, inbound: InboundStream, name: str) -> None:
        converter = InboundConverter(max_idle_fill_s=self._max_idle_fill_s)
        converted = asyncio.Event()  # set by the frames' path, cleared by the idle timer
        idle = asyncio.create_task(self._fill_idle(inbound, converter, converted), name=f"idle {inbound}")
        try:
            await self._convert_frames(inbound, name, converter, converted)
        finally:
            idle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await idle

    async def _fill_idle(
        self, inbound: InboundStream, converter: InboundConverter, converted: asyncio.Event
    ) -> None:
        """Hand on the silence of a sender whose frames stopped coming (owned by `_read`). While the
        converter has no timeline (nothing converted yet, or since a reset: a stream nobody needs, an
        extra stream) there is no silence to presume, and the timer sleeps until a frame is converted
        instead of waking every tick for nothing: a listener who never speaks costs no wake-ups."""
        while True:
            if not converter.has_timeline:
                converted.clear()
                await converted.wait()
            await asyncio.sleep(IDLE_TICK_S if self._timely(inbound.pid) else QUIET_TICK_S)
            if self._primary.get(inbound.pid) is not inbound or not self._needed(inbound.pid):
                continue
            try:
                pcm = converter.idle_silence(self._clock())
                if pcm:
                    self._on_pcm(inbound.pid, pcm)
            except Exception:  # the frames' own path reports its failures; this one must not stop
                log.exception("presumed silence of %s failed", inbound)

    async def _convert_frames(
        self, inbound: InboundStream, name: str, converter: InboundConverter, converted: asyncio.Event
    ) -> None:
        clock = self._clock
        extra_stream = FRAMES_IGNORED.labels(reason="extra_stream")
        while True:
            try:
                frame = await inbound.track.recv()
            except MediaStreamError:
                return
            inbound.frames += 1
            FRAMES_IN.inc()
            if self._primary.get(inbound.pid) is not inbound:
                if self._streams.get((inbound.pid, inbound.stream)) is inbound:
                    extra_stream.inc()
                # else replaced or stopped: the task is being cancelled
                continue
            if inbound.frames == 1:
                log.info("first audio from participant %s (%s)", inbound.pid, name)
            self.frames_heard[inbound.pid] = inbound.frames
            if not isinstance(frame, av.AudioFrame):
                continue  # an audio track yields audio frames; anything else is not ours to convert
            if not self._needed(inbound.pid):
                # Nobody to hear it. Forgotten, not flushed: when a lane opens its audio starts from
                # there, with no tail of old speech and no silence for the time skipped.
                converter.reset()
                continue
            pcm = converter.convert(frame, clock())
            if not converted.is_set():
                converted.set()  # the idle timer may have silence to presume from now on
            if pcm:
                self._on_pcm(inbound.pid, pcm)

    async def _discard(self, inbound: InboundStream, seconds: float) -> bool:
        """Read and drop frames for `seconds`; True if the track ended meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    try:
                        await inbound.track.recv()
                    except MediaStreamError:
                        return True
                    inbound.frames += 1
                    FRAMES_IGNORED.labels(reason="restarting").inc()
        return False
