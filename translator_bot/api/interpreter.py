"""`Interpreter`: one meeting interpreted inside the caller's own asyncio program.

    async with Interpreter(settings, "1234") as bot:
        bot.on(Caption, print)
        result = await bot.wait()

Entering the block joins the room (a RoomError if the room refuses the bot); leaving it leaves the
meeting. It installs no signal handler and never ends the process: `translator-bot join` is a user of
this class that adds the signals, the ops HTTP server and the exit code (`Result.exit_code`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType, UnionType
from typing import TypeVar, overload

from aiortc.mediastreams import MediaStreamTrack

from translator_bot.api.events import (
    Caption,
    Ended,
    EndReason,
    Event,
    Health,
    HealthChanged,
    LanesChanged,
    LaneStatus,
    Result,
    TranscriptEntry,
)
from translator_bot.api.hub import EventHub
from translator_bot.api.records import open_journal, write_transcript
from translator_bot.api.rooms import GivenRoom, JanusRoom, RoomState, Venue
from translator_bot.interpreter import port
from translator_bot.interpreter.cost import cost_summary
from translator_bot.interpreter.health import assess
from translator_bot.interpreter.journal import TranscriptJournal
from translator_bot.interpreter.meeting import Meeting
from translator_bot.interpreter.plan import Audience
from translator_bot.redact import register_settings
from translator_bot.settings import Settings
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET_S = 4.0  # leaving (lanes, feeds, room) takes at most this; the transcript is written after
# After stop() the meeting finishes the room event in hand; one waiting for the room to come back
# (a feed being published while reconnecting) is cancelled instead.
STOP_WAIT_S = 1.0
WATCH_INTERVAL_S = 0.5  # how often health and the lanes' states are looked at for HealthChanged/LanesChanged
HANDLER_GRACE_S = 1.0  # coroutine handlers get this long after the end to take in the last events

E = TypeVar("E", bound=Event)
H = TypeVar("H", bound=Callable[..., object])


def meeting_health(room: RoomState, meeting: Meeting | None) -> Health:
    """The bot's health from the room's state and the meeting's parts (None: not interpreting yet)."""
    in_room, room_details, room_parts = room
    details: dict[str, object] = dict(room_details)
    parts = list(room_parts)
    fatal: str | None = None
    if meeting is None:
        fatal = "not interpreting yet"
    else:
        _, more = meeting.health()
        details.update(more)
        fatal = more.get("fatal")
        parts.extend(meeting.degraded_parts())
    verdict = assess(in_room=in_room, fatal=fatal, parts=parts)
    details["status"] = verdict
    details["degraded"] = [part.as_json() for part in parts]
    return Health(verdict, tuple(parts), details)


class _WatchedPort:
    """The venue's port, passed through; notes why the room said the meeting ended."""

    def __init__(self, inner: port.RoomPort) -> None:
        self._inner = inner
        self.ended_reason: str | None = None

    async def events(self) -> AsyncIterator[port.RoomEvent]:
        async for event in self._inner.events():
            if isinstance(event, port.MeetingEnded):
                self.ended_reason = event.reason
            yield event

    async def publish_feed(self, track: MediaStreamTrack, *, for_id: Audience, lang: str) -> port.Publication:
        return await self._inner.publish_feed(track, for_id=for_id, lang=lang)


class Interpreter:
    """Interprets one meeting until `stop()`, the meeting's end, or a failure (see `Result`).

    `room`: a RoomPort to interpret instead of joining the Janus room named by `meeting_id` and the
    settings (see translator_bot.interpreter.port); the caller runs and closes its transport.
    `create_room`: create the Janus room if it does not exist (Janus only).
    """

    def __init__(
        self,
        settings: Settings,
        meeting_id: str | int,
        *,
        room: port.RoomPort | None = None,
        create_room: bool = False,
    ) -> None:
        self.settings = settings
        self.meeting_id = str(meeting_id)
        self._venue: Venue = (
            GivenRoom(room, self.meeting_id)
            if room is not None
            else JanusRoom(settings, self.meeting_id, create_room=create_room)
        )
        self._port = _WatchedPort(self._venue.port)
        self._hub = EventHub()
        self._tasks = TaskSet("interpreter", logger=log)
        self._meeting: Meeting | None = None
        self._journal: TranscriptJournal | None = None
        self._runner: asyncio.Task[Result] | None = None
        self._stop_deadline: asyncio.Timeout | None = None  # set while the meeting runs
        self._stop_requested = False
        self._started = False
        self._lanes_seen: LanesChanged | None = None
        self._health_seen: Health | None = None
        self.result: Result | None = None  # set once the bot has left

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Interpreter:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Join the room and start interpreting; returns once in the room. RoomError if it cannot be
        joined (nothing is left running then)."""
        if self._started:
            raise RuntimeError("this Interpreter was started already; make a new one per meeting")
        self._started = True
        register_settings(self.settings)  # from here on no log line shows the settings' secrets
        try:
            await self._venue.join()
        except BaseException:
            await self._leave()
            raise
        log.info("joined meeting %s as %r", self._venue.name, self.settings.display_name)
        self._meeting = Meeting(
            self.settings,
            self._port,
            self.meeting_id,
            on_caption=lambda message: self._hub.emit(Caption.from_message(message)),
            on_change=self._check_lanes,
        )
        self._journal = open_journal(
            self._meeting, self.settings, lambda record: self._hub.emit(TranscriptEntry.from_record(record))
        )
        self._hub.start()
        self._runner = self._tasks.spawn(self._run(self._meeting), name=f"interpreter {self.meeting_id}")

    def stop(self) -> None:
        """Leave the meeting: at once if the bot waits for the room, after the room event in hand
        otherwise (at most STOP_WAIT_S). Safe to call at any time, more than once, from a handler."""
        if self._stop_requested:
            return
        self._stop_requested = True
        if self._meeting is not None and self._stop_deadline is not None:
            log.info("stopping: leaving meeting %s", self._venue.name)
            self._meeting.stop()
            self._stop_deadline.reschedule(asyncio.get_running_loop().time() + STOP_WAIT_S)

    async def wait(self) -> Result:
        """Until the bot has left the meeting and written its transcript; how it ended. Cancelling
        the wait does not stop the bot."""
        if self._runner is None:
            raise RuntimeError("the Interpreter is not started: use `async with` or `await start()`")
        return await asyncio.shield(self._runner)

    async def aclose(self) -> Result | None:
        """stop() and wait(); None if the bot never got into the room."""
        self.stop()
        if self._runner is None:
            return None
        try:
            return await asyncio.shield(self._runner)
        except asyncio.CancelledError:
            # Our caller is cancelled: still leave the room and close everything before going.
            await self._tasks.close()
            raise

    @property
    def running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    # --- events --------------------------------------------------------------------------------

    @overload
    def on(self, kind: type[E], handler: Callable[[E], object]) -> Callable[[], None]: ...

    @overload
    def on(self, kind: type[E]) -> Callable[[H], H]: ...

    @overload
    def on(self, kind: UnionType, handler: Callable[[Event], object]) -> Callable[[], None]: ...

    @overload
    def on(self, kind: UnionType) -> Callable[[H], H]: ...

    def on(
        self,
        kind: type[E] | UnionType,
        handler: Callable[[E], object] | Callable[[Event], object] | None = None,
    ) -> Callable[[], None] | Callable[[H], H]:
        """Call `handler` with every event of type `kind` (`Event` itself: every event). A plain
        function runs at once and must not block; a coroutine function runs in its own task, one
        event after the other. Either may raise: the error is logged and the meeting goes on.
        Returns a function that unsubscribes; without `handler`, works as a decorator."""
        if handler is not None:
            return self._hub.subscribe(kind, handler)

        def decorate(function: H) -> H:
            self._hub.subscribe(kind, function)
            return function

        return decorate

    def events(self) -> AsyncIterator[Event]:
        """Every event from now on, ending with `Ended`; a reader more than 1000 events behind loses
        the oldest (a warning says so)."""
        return self._hub.events()

    # --- state ---------------------------------------------------------------------------------

    def health(self) -> Health:
        """What /healthz serves: in the room and interpreting with every part working is `ok`."""
        return meeting_health(self._venue.state(), self._meeting)

    @property
    def lanes(self) -> tuple[LaneStatus, ...]:
        if self._meeting is None:
            return ()
        return tuple(
            LaneStatus(
                lane=str(key),
                speaker_id=lane.plan.speaker.id,
                speaker_name=lane.plan.speaker.name,
                source_language=lane.plan.speaker.language.tag,
                target_language=lane.plan.target.tag,
                listener_ids=lane.plan.listener_ids,
                state=lane.engine.state.value,
            )
            for key, lane in self._meeting.lanes.items()
        )

    # --- inside --------------------------------------------------------------------------------

    async def _run(self, meeting: Meeting) -> Result:
        watch = self._tasks.spawn(self._watch(), name=f"interpreter {self.meeting_id} watch")
        result = Result(EndReason.STOPPED, "cancelled")  # unless the meeting gets to end by itself
        try:
            result = await self._follow(meeting)
        finally:
            await self._tasks.cancel(watch)
            await self._shutdown(meeting)
            self.result = result
            log.info("left meeting %s: %s", self._venue.name, result.reason.value)
            self._hub.emit(Ended(result))
            await self._hub.aclose(HANDLER_GRACE_S)
        return result

    async def _follow(self, meeting: Meeting) -> Result:
        if self._stop_requested:  # asked to stop while joining: leave at once
            log.info("stopping: leaving meeting %s", self._venue.name)
            return Result(EndReason.STOPPED, "stopped before the meeting started")
        deadline: asyncio.Timeout | None = None
        try:
            async with asyncio.timeout(None) as deadline:
                self._stop_deadline = deadline
                await meeting.run()  # raises RoomError / ProviderError
        except TimeoutError as exc:
            # The event in hand did not finish within STOP_WAIT_S of stop(): cancelled instead.
            if not (self._stop_requested and deadline is not None and deadline.expired()):
                return self._failed(exc)
        except Exception as exc:
            return self._failed(exc)
        finally:
            self._stop_deadline = None
        if self._stop_requested:
            return Result(EndReason.STOPPED, "stopped")
        return Result(EndReason.MEETING_ENDED, self._port.ended_reason or "the meeting ended")

    def _failed(self, exc: Exception) -> Result:
        result = Result.from_error(exc)
        if result.reason is EndReason.FAILED:
            log.error("the interpreter failed", exc_info=exc)
        return result

    async def _shutdown(self, meeting: Meeting) -> None:
        try:
            async with asyncio.timeout(SHUTDOWN_BUDGET_S):
                await meeting.aclose()
                await self._venue.leave()
        except TimeoutError:
            log.warning("leaving took longer than %.0f s; exiting anyway", SHUTDOWN_BUDGET_S)
        finally:
            log.info("%s", cost_summary(meeting.transcript.meeting_id, meeting.cost.report()))
            if self._journal is not None:
                await write_transcript(meeting, self._journal, self.settings)

    async def _leave(self) -> None:
        try:
            async with asyncio.timeout(SHUTDOWN_BUDGET_S):
                await self._venue.leave()
        except TimeoutError:
            log.warning("leaving took longer than %.0f s; exiting anyway", SHUTDOWN_BUDGET_S)

    async def _watch(self) -> None:
        """Health and the lanes' states change without a room event: look at them now and then."""
        while True:
            self._check_lanes()
            health = self.health()
            if self._health_seen is None or (health.status, health.degraded) != (
                self._health_seen.status,
                self._health_seen.degraded,
            ):
                self._health_seen = health
                self._hub.emit(HealthChanged(health))
            await asyncio.sleep(WATCH_INTERVAL_S)

    def _check_lanes(self) -> None:
        meeting = self._meeting
        if meeting is None:
            return
        unserved = tuple(str(key) for key in meeting.health()[1].get("unserved_lanes", ()))
        now = LanesChanged(tuple(meeting.members), self.lanes, unserved)
        if now != self._lanes_seen:
            self._lanes_seen = now
            self._hub.emit(now)
