"""The interpreter for one meeting: participants in, lanes and output feeds kept in step with them.

Data path: room audio track -> InboundConverter (24 kHz mono) -> every lane whose speaker it is ->
model session -> router -> the PlayoutTrack of each feed that carries the lane -> room.
The meeting reacts to room events (joins, language changes, feeds, leaves) by re-planning lanes
(`plan_lanes`) and feeds (`feeds_for`) and applying only the difference, within the lane cap
(`TRANSLATOR_MAX_LANES`, earliest-joined served first) and at most one change per lane per second.

No participant can break the meeting for the others:
- every audio stream a participant publishes gets its own pump that reads it to the end, so a second
  stream can neither stop the first nor leave frames queueing unread; only the participant's first
  stream (by arrival) is interpreted, the others are read and discarded;
- a crashed pump or lane is restarted with back-off; a feed the room refuses (publisher limit) or
  takes away (kicked, unpublished, connection failed) leaves only its listener without
  interpretation, and is published again with back-off;
- `health()` lists every part that is not well, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from translator_bot.audio.clock import Clock
from translator_bot.audio.inbound import InboundConverter
from translator_bot.audio.playout import PlayoutTrack
from translator_bot.engine.base import EngineSession, LaneSpec
from translator_bot.engine.factory import create_engine
from translator_bot.errors import ProviderError, RoomError
from translator_bot.interpreter.health import PartHealth, Restarts
from translator_bot.interpreter.lane import Lane, LaneRouter, spec_for
from translator_bot.interpreter.plan import (
    ChangeLimiter,
    LaneKey,
    LanePlan,
    Member,
    cap_lanes,
    feeds_for,
    plan_lanes,
)
from translator_bot.interpreter.transcript import Transcript
from translator_bot.metrics import (
    FEED_FAILURES,
    FRAMES_IGNORED,
    FRAMES_IN,
    INPUT_RESTARTS,
    LANE_RESTARTS,
    LANES,
    LANES_UNSERVED,
    forget_lane,
)
from translator_bot.settings import Settings

log = logging.getLogger(__name__)

MIXED_FEED = "mixed"
LANE_CHANGE_INTERVAL_S = 1.0  # a lane is opened, closed or re-configured at most this often
SUPERVISE_INTERVAL_S = 0.25  # how often due restarts, re-publishes and held-back changes are looked at


# --- what the meeting needs from the room (implemented by translator_bot.room) ----------------------


@dataclass(frozen=True, slots=True)
class PeerChanged:
    """A participant joined or changed name/language (interpreters never reach the meeting)."""

    member: Member


@dataclass(frozen=True, slots=True)
class PeerLeft:
    participant_id: str


@dataclass(frozen=True, slots=True)
class PeerAudio:
    """An audio stream of a participant arrived; `stream` names it among the participant's streams."""

    participant_id: str
    track: MediaStreamTrack
    stream: str = ""


@dataclass(frozen=True, slots=True)
class PeerAudioGone:
    """One audio stream of a participant ended (`stream` empty: all of them)."""

    participant_id: str
    stream: str = ""


@dataclass(frozen=True, slots=True)
class RoomClosed:
    """The room ended under the bot; `reason` is shown to the user as is."""

    reason: str


@dataclass(frozen=True, slots=True)
class MeetingEnded:
    """The meeting is over (room destroyed, nobody left in it): a normal end, like stop()."""

    reason: str


RoomEvent = PeerChanged | PeerLeft | PeerAudio | PeerAudioGone | RoomClosed | MeetingEnded


class Publication(Protocol):
    """One of the bot's feeds in the room. It may also have a `lost_reason` (str | None) attribute:
    set when the room took the feed away (kicked, unpublished, connection failed)."""

    def send_data(self, text: str) -> object: ...

    async def relabel(self, lang: str) -> None: ...

    async def aclose(self) -> None: ...


class RoomPort(Protocol):
    def events(self) -> AsyncIterator[RoomEvent]: ...

    async def publish_feed(self, track: MediaStreamTrack, *, for_id: str | None, lang: str) -> Publication:
        """Publish `track` labelled for one listener (None: for everyone) in language `lang`;
        RoomError if the room refuses it."""
        ...


EngineFactory = Callable[[Settings, LaneSpec], EngineSession]


@dataclass(slots=True, eq=False)
class _Feed:
    feed_id: str  # listener id, or MIXED_FEED
    track: PlayoutTrack
    publication: Publication | None
    lanes: tuple[LaneKey, ...]
    lang: str
    problem: str | None = None  # "refused" or "lost": the listener hears nothing until re-published
    retry_at: float | None = None
    restarts: Restarts = field(default_factory=Restarts)

    @property
    def live(self) -> bool:
        return self.publication is not None and self.problem is None


@dataclass(slots=True, eq=False)
class _Inbound:
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


class Meeting(LaneRouter):
    def __init__(
        self,
        settings: Settings,
        room: RoomPort,
        meeting_id: str,
        *,
        engine_factory: EngineFactory = create_engine,
        clock: Callable[[], float] = time.monotonic,
        playout_clock: Clock | None = None,
        lane_change_interval: float = LANE_CHANGE_INTERVAL_S,
        supervise_interval: float = SUPERVISE_INTERVAL_S,
    ) -> None:
        self._settings = settings
        self._room = room
        self._engine_factory = engine_factory
        self._clock = clock
        self._playout_clock = playout_clock
        self._supervise_interval = supervise_interval
        self.transcript = Transcript(meeting_id)
        self.members: dict[str, Member] = {}  # in join order: the lane cap serves the earliest first
        self.lanes: dict[LaneKey, Lane] = {}
        self.feeds: dict[str, _Feed] = {}
        self._plans: dict[LaneKey, LanePlan] = {}
        self._limiter = ChangeLimiter(lane_change_interval, settings.max_lanes)
        self._replan_at: float | None = None
        self._unserved: tuple[LaneKey, ...] = ()
        self._lane_restarts: dict[LaneKey, Restarts] = {}
        self._lane_retry_at: dict[LaneKey, float] = {}
        self._inbound: dict[tuple[str, str], _Inbound] = {}
        self._inbound_order = 0
        # Decoded frames per participant since their audio arrived: zero means the media path from
        # them is not up yet (their first second can be lost to a DTLS retransmit at join).
        self.frames_heard: dict[str, int] = {}
        self._fatal: ProviderError | None = None
        self._stop = asyncio.Event()
        self._reconcile_lock = asyncio.Lock()

    # --- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the room until `stop()`; raises RoomError if the room goes, a ProviderError when the
        model provider refuses the key (exit 4) or stays unreachable too long (exit 5)."""
        events = self._room.events()
        stop_wait = asyncio.create_task(self._stop.wait(), name="meeting stop")
        supervisor = asyncio.create_task(self._supervise(), name="meeting supervisor")
        try:
            while not self._stop.is_set():
                next_event = asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({next_event, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if next_event not in done:
                    next_event.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await next_event
                    break
                try:
                    event = next_event.result()
                except StopAsyncIteration:
                    raise RoomError("the room connection ended") from None
                await self._on_event(event)
            if self._fatal is not None:
                raise self._fatal
        finally:
            for task in (stop_wait, supervisor):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def stop(self) -> None:
        self._stop.set()

    async def aclose(self) -> None:
        """Close lanes, inbound pumps and feeds; safe to call more than once."""
        inbound, self._inbound = list(self._inbound.values()), {}
        for stream in inbound:
            if stream.task is not None:
                stream.task.cancel()
        for stream in inbound:
            if stream.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await stream.task
        self.frames_heard.clear()
        lanes, self.lanes = list(self.lanes.values()), {}
        await asyncio.gather(*(lane.aclose() for lane in lanes), return_exceptions=True)
        for lane in lanes:
            forget_lane(str(lane.key))
        LANES.set(0)
        LANES_UNSERVED.set(0)
        feeds, self.feeds = list(self.feeds.values()), {}
        for feed in feeds:
            feed.track.stop()
            if feed.publication is not None:
                with contextlib.suppress(Exception):
                    await feed.publication.aclose()

    def _fatal_error(self, exc: ProviderError) -> None:
        if self._fatal is None:
            self._fatal = exc
        self._stop.set()

    async def _supervise(self) -> None:
        """Applies what is due: held-back lane changes, lane restarts, feeds to publish again."""
        while True:
            await asyncio.sleep(self._supervise_interval)
            now = self._clock()
            try:
                if (self._replan_at is not None and now >= self._replan_at) or any(
                    at <= now for at in self._lane_retry_at.values()
                ):
                    await self._reconcile()
                else:
                    async with self._reconcile_lock:
                        await self._repair_feeds()
            except Exception:
                # Repairs are retried on the next tick; the supervisor itself must not die of one.
                log.exception("repairing the meeting failed; trying again")

    # --- room events ---------------------------------------------------------------------------

    async def _on_event(self, event: RoomEvent) -> None:
        match event:
            case PeerChanged(member=member):
                if self.members.get(member.id) != member:
                    log.info("participant %s: %s speaks %s", member.id, member.name, member.language.display)
                    self.members[member.id] = member
                    await self._reconcile()
            case PeerLeft(participant_id=pid):
                self._stop_inbound(pid, None)
                if self.members.pop(pid, None) is not None:
                    log.info("participant %s left", pid)
                    await self._reconcile()
            case PeerAudio(participant_id=pid, track=track, stream=stream):
                self._start_inbound(pid, stream, track)
            case PeerAudioGone(participant_id=pid, stream=stream):
                self._stop_inbound(pid, stream or None)
            case RoomClosed(reason=reason):
                raise RoomError(reason)
            case MeetingEnded(reason=reason):
                log.info("stopping: %s", reason)
                self._stop.set()

    # --- audio in --------------------------------------------------------------------------------

    def _primary(self, pid: str) -> _Inbound | None:
        """The stream of `pid` that is interpreted: the earliest-arrived one still live."""
        streams = [s for s in self._inbound.values() if s.pid == pid]
        return min(streams, key=lambda s: s.order) if streams else None

    def _start_inbound(self, pid: str, stream: str, track: MediaStreamTrack) -> None:
        old = self._inbound.pop((pid, stream), None)
        if old is not None and old.task is not None:
            old.task.cancel()  # the same stream subscribed again: the new track replaces the old
        self._inbound_order += 1
        inbound = _Inbound(pid, stream, track, self._inbound_order)
        self._inbound[(pid, stream)] = inbound
        primary = self._primary(pid)
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
        inbound.task = asyncio.create_task(self._pump_inbound(inbound), name=f"inbound {inbound}")

    def _stop_inbound(self, pid: str, stream: str | None) -> None:
        """Stop the pump of one stream of `pid` (None: of all its streams)."""
        for key in [k for k in self._inbound if k[0] == pid and (stream is None or k[1] == stream)]:
            inbound = self._inbound.pop(key)
            if inbound.task is not None:
                inbound.task.cancel()
        primary = self._primary(pid)
        if primary is None:
            self.frames_heard.pop(pid, None)
        else:
            self.frames_heard[pid] = primary.frames

    async def _pump_inbound(self, inbound: _Inbound) -> None:
        """Read the stream to its end. A crash restarts the reading after a back-off, during which
        frames are still read (and dropped) so nothing queues up in the track meanwhile."""
        pid = inbound.pid
        name = self.members[pid].name if pid in self.members else pid
        log.info("receiving audio from participant %s (%s)", pid, name)
        try:
            while True:
                try:
                    await self._read_inbound(inbound, name)
                    return
                except Exception as exc:
                    delay = inbound.restarts.record(self._clock(), f"{type(exc).__name__}: {exc}")
                    INPUT_RESTARTS.inc()
                    log.exception(
                        "audio of participant %s (%s) failed; restarting in %.0f s", pid, name, delay
                    )
                    if await self._discard_inbound(inbound, delay):
                        return
        finally:
            log.info("audio of participant %s (%s) ended: %d frames received", pid, name, inbound.frames)

    async def _read_inbound(self, inbound: _Inbound, name: str) -> None:
        converter = InboundConverter()
        while True:
            try:
                frame = await inbound.track.recv()
            except MediaStreamError:
                return
            inbound.frames += 1
            FRAMES_IN.inc()
            if self._inbound.get((inbound.pid, inbound.stream)) is not inbound:
                continue  # replaced or stopped: the task is being cancelled
            if self._primary(inbound.pid) is not inbound:
                FRAMES_IGNORED.labels(reason="extra_stream").inc()
                continue
            if inbound.frames == 1:
                log.info("first audio from participant %s (%s)", inbound.pid, name)
            self.frames_heard[inbound.pid] = inbound.frames
            self._route_inbound(inbound.pid, converter, frame)

    async def _discard_inbound(self, inbound: _Inbound, seconds: float) -> bool:
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

    def _route_inbound(self, pid: str, converter: InboundConverter, frame: object) -> None:
        if not isinstance(frame, av.AudioFrame):
            return  # an audio track yields audio frames; anything else is not ours to convert
        pcm = converter.convert(frame)
        if not pcm:
            return
        for lane in self.lanes.values():
            if lane.plan.speaker.id == pid:
                lane.push_audio(pcm)

    # --- lanes and feeds -----------------------------------------------------------------------

    async def _reconcile(self) -> None:
        async with self._reconcile_lock:
            now = self._clock()
            await self._restart_due_lanes(now)
            capped = cap_lanes(
                plan_lanes(self.members.values()), list(self.members), self._settings.max_lanes
            )
            self._note_unserved(capped.left_out)
            step = self._limiter.step(self._plans, capped.plans, now)
            self._plans = step.plans
            self._replan_at = step.retry_at
            # The lanes change in one go (nothing awaited in between); closing them comes after.
            closing = [lane for key in step.changes.closed if (lane := self.lanes.pop(key, None)) is not None]
            for key in step.changes.closed:
                self._lane_restarts.pop(key, None)
                self._lane_retry_at.pop(key, None)
            for plan in step.changes.changed:
                if plan.key in self.lanes:
                    log.info("re-configuring lane %s -> %s", plan.key, plan.target.tag)
                    self.lanes[plan.key].update(plan)
            for plan in step.changes.opened:
                self._open_lane(plan)
            for lane in closing:
                # Translations already queued still play: they were said and are on their way.
                log.info("closing lane %s", lane.key)
                await lane.aclose()
                forget_lane(str(lane.key))
            LANES.set(len(self.lanes))
            await self._reconcile_feeds()

    def _note_unserved(self, left_out: tuple[LanePlan, ...]) -> None:
        keys = tuple(plan.key for plan in left_out)
        LANES_UNSERVED.set(len(keys))
        if set(keys) - set(self._unserved):
            log.warning(
                "lane cap reached (TRANSLATOR_MAX_LANES=%d, earliest-joined served first):"
                " not interpreting %s",
                self._settings.max_lanes,
                ", ".join(
                    f"{p.speaker.name} -> {p.target.tag} for {', '.join(m.name for m in p.listeners)}"
                    for p in left_out
                ),
            )
        elif self._unserved and not keys:
            log.info("every lane the meeting needs is open again")
        self._unserved = keys

    def _open_lane(self, plan: LanePlan) -> None:
        log.info(
            "opening lane %s: %s (%s) -> %s for %s",
            plan.key,
            plan.speaker.name,
            plan.speaker.language.tag,
            plan.target.tag,
            ", ".join(m.name for m in plan.listeners),
        )
        engine = self._engine_factory(self._settings, spec_for(plan))
        lane = Lane(
            plan,
            engine,
            self,
            self.transcript,
            on_fatal=self._fatal_error,
            on_stopped=self._lane_stopped,
            clock=self._clock,
        )
        lane.start()
        self.lanes[plan.key] = lane

    def _lane_stopped(self, lane: Lane, reason: str) -> None:
        if self.lanes.get(lane.key) is not lane:
            return
        restarts = self._lane_restarts.setdefault(lane.key, Restarts())
        delay = restarts.record(self._clock(), reason)
        self._lane_retry_at[lane.key] = self._clock() + delay
        log.warning("lane %s will be restarted in %.0f s", lane.key, delay)

    async def _restart_due_lanes(self, now: float) -> None:
        for key, at in list(self._lane_retry_at.items()):
            if at > now:
                continue
            del self._lane_retry_at[key]
            lane = self.lanes.pop(key, None)
            plan = self._plans.get(key)
            if lane is not None:
                await lane.aclose()
            if plan is not None:
                LANE_RESTARTS.inc()
                log.info("restarting lane %s", key)
                self._open_lane(plan)

    async def _reconcile_feeds(self) -> None:
        wanted = feeds_for(self._plans, self._settings.output_mode)
        for feed_id in [f for f in self.feeds if f not in wanted]:
            feed = self.feeds.pop(feed_id)
            feed.track.stop()
            if feed.publication is not None:
                with contextlib.suppress(Exception):
                    await feed.publication.aclose()
        for feed_id, lanes in wanted.items():
            lang = self._feed_language(feed_id)
            existing = self.feeds.get(feed_id)
            if existing is None:
                await self._publish(feed_id, lanes, lang)
                continue
            existing.lanes = lanes
            if existing.lang != lang:
                existing.lang = lang
                if existing.live and existing.publication is not None:
                    try:
                        await existing.publication.relabel(lang)  # the listener switched language
                    except RoomError as exc:
                        self._feed_failed(existing, "lost", f"relabelling failed: {exc}")
        await self._repair_feeds()

    def _feed_language(self, feed_id: str) -> str:
        if feed_id == MIXED_FEED:
            return self._settings.default_language
        member = self.members.get(feed_id)
        if member is None:  # left, and the lanes for them are not closed yet (at most a second)
            member = next(m for plan in self._plans.values() for m in plan.listeners if m.id == feed_id)
        return member.language.tag

    def _new_track(self) -> PlayoutTrack:
        return PlayoutTrack(
            cushion_ms=self._settings.playout_cushion_ms,
            hold_ms=self._settings.effective_hold_ms,
            max_lag_ms=self._settings.playout_max_lag_ms,
            clock=self._playout_clock,
            on_dropped=self._on_dropped,
        )

    async def _publish(self, feed_id: str, lanes: tuple[LaneKey, ...], lang: str) -> None:
        feed = _Feed(feed_id, self._new_track(), None, lanes, lang)
        self.feeds[feed_id] = feed
        await self._publish_feed(feed)

    async def _publish_feed(self, feed: _Feed) -> None:
        """Publish (or publish again) `feed`; a refusal degrades this listener only."""
        for_id = None if feed.feed_id == MIXED_FEED else feed.feed_id
        try:
            publication = await self._room.publish_feed(feed.track, for_id=for_id, lang=feed.lang)
        except RoomError as exc:
            self._feed_failed(feed, "refused", str(exc))
            return
        if self.feeds.get(feed.feed_id) is not feed:
            with contextlib.suppress(Exception):
                await publication.aclose()  # the feed was dropped while it was being published
            return
        if feed.problem is not None:
            log.info("the feed for %s is published again", self._listener_name(feed.feed_id))
        feed.publication, feed.problem, feed.retry_at = publication, None, None

    def _feed_failed(self, feed: _Feed, problem: str, reason: str) -> None:
        delay = feed.restarts.record(self._clock(), reason)
        FEED_FAILURES.labels(reason=problem).inc()
        feed.problem, feed.retry_at = problem, self._clock() + delay
        log.error(
            "the feed for %s is %s: %s; %s hears no interpretation until it is published again (next"
            " try in %.0f s)",
            self._listener_name(feed.feed_id),
            problem,
            reason,
            "nobody" if feed.feed_id == MIXED_FEED else "this listener",
            delay,
        )

    async def _repair_feeds(self) -> None:
        now = self._clock()
        for feed in list(self.feeds.values()):
            if feed.problem is None and feed.publication is not None:
                lost = getattr(feed.publication, "lost_reason", None)
                if lost:
                    self._feed_failed(feed, "lost", str(lost))
            if feed.problem is None or feed.retry_at is None or feed.retry_at > now:
                continue
            feed.retry_at = None  # this attempt is under way; a failure sets the next
            old, feed.publication = feed.publication, None
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.aclose()
            feed.track.stop()
            feed.track = self._new_track()
            log.info("publishing the feed for %s again", self._listener_name(feed.feed_id))
            await self._publish_feed(feed)

    def _listener_name(self, feed_id: str) -> str:
        if feed_id == MIXED_FEED:
            return "everyone"
        member = self.members.get(feed_id)
        return f"{member.name} ({feed_id})" if member is not None else feed_id

    def _feeds_of(self, key: LaneKey) -> list[_Feed]:
        # A feed that is not in the room gets nothing: its track would only fill up unread.
        return [feed for feed in self.feeds.values() if key in feed.lanes and feed.problem is None]

    def _on_dropped(self, item: str, played: int) -> None:
        key_text, _, engine_item = item.partition("|")
        for key, lane in self.lanes.items():
            if str(key) == key_text:
                # A lane shared by several feeds: the model keeps what the furthest listener heard.
                heard = max([played] + [f.track.played_samples(item) for f in self._feeds_of(key)])
                lane.cut_short(engine_item, heard)
                return

    # --- LaneRouter ------------------------------------------------------------------------------

    def deliver_audio(self, key: LaneKey, item: str, pcm: bytes) -> None:
        for feed in self._feeds_of(key):
            feed.track.enqueue(pcm, f"{key}|{item}")

    def end_item(self, key: LaneKey, item: str) -> None:
        for feed in self._feeds_of(key):
            feed.track.end_item(f"{key}|{item}")

    def caption(self, key: LaneKey, message: dict[str, object]) -> None:
        text = json.dumps(message, ensure_ascii=False)
        for feed in self._feeds_of(key):
            if feed.publication is not None:
                feed.publication.send_data(text)

    # --- observability ---------------------------------------------------------------------------

    def degraded_parts(self) -> list[PartHealth]:
        """Every part of the meeting that is not well, with the reason."""
        now = self._clock()
        parts: list[PartHealth] = []
        for key, lane in self.lanes.items():
            part = f"lane {key}"
            restarts = self._lane_restarts.get(key)
            if key in self._lane_retry_at and restarts is not None:
                parts.append(PartHealth(part, "restarting", restarts.describe()))
            elif restarts is not None and restarts.recent(now):
                parts.append(PartHealth(part, "restarted", restarts.describe()))
            elif (engine_part := _engine_health(part, lane)) is not None:
                parts.append(engine_part)
        for inbound in self._inbound.values():
            if inbound.restarts.recent(now):
                parts.append(PartHealth(f"audio {inbound}", "restarted", inbound.restarts.describe()))
            elif inbound.task is not None and inbound.task.done() and not inbound.task.cancelled():
                parts.append(PartHealth(f"audio {inbound}", "stopped", "its reading task ended"))
        for feed in self.feeds.values():
            if feed.problem is not None:
                parts.append(
                    PartHealth(
                        f"feed for {self._listener_name(feed.feed_id)}", feed.problem, feed.restarts.reason
                    )
                )
        return parts

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ready, details): ready when no fatal error stopped the meeting and no part is broken. A lane
        whose model provider is unreachable is one such part: the bot stays in the room and resumes by
        itself, so liveness (`/livez`) is unaffected and nobody restarts it for that."""
        parts = self.degraded_parts()
        details: dict[str, Any] = {
            "participants": len(self.members),
            "frames_heard": dict(self.frames_heard),
            "lanes": {str(k): lane.engine.state.value for k, lane in self.lanes.items()},
            "feeds": sorted(self.feeds),
            "degraded": [part.as_json() for part in parts],
            "outages": self._outages(),
            "unserved_lanes": [str(key) for key in self._unserved],
        }
        if self._fatal is not None:
            details["fatal"] = str(self._fatal)
        return self._fatal is None and not parts, details

    def _outages(self) -> dict[str, dict[str, Any]]:
        """Lanes whose model provider is unreachable: since when (UTC), for how long, and why."""
        now = time.monotonic()
        outages: dict[str, dict[str, Any]] = {}
        for key, lane in self.lanes.items():
            outage = lane.engine.outage
            if outage is not None:
                outages[str(key)] = {
                    "since": datetime.fromtimestamp(outage.since_wall, UTC).isoformat(timespec="seconds"),
                    "seconds": round(max(0.0, now - outage.since), 1),
                    "reason": outage.reason,
                }
        return outages


def _engine_health(part: str, lane: Lane) -> PartHealth | None:
    """A lane's model session that is not working, as a part (None: it works or is connecting)."""
    outage = lane.engine.outage
    if outage is not None:
        return PartHealth(part, "outage", f"the model provider is unreachable: {outage.reason}")
    state = lane.engine.state.value
    if state in ("connecting", "connected"):
        return None
    reason = getattr(lane.engine, "state_reason", None) or f"the model session is {state}"
    return PartHealth(part, state, str(reason))
