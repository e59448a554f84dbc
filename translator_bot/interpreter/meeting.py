"""The interpreter for one meeting: participants in, lanes and output feeds kept in step with them.

Data path: room audio track -> InboundConverter (24 kHz mono) -> every lane whose speaker it is ->
model session -> router -> the PlayoutTrack of each feed that carries the lane -> room.
The meeting reacts to room events (joins, language changes, feeds, leaves) by re-planning lanes
(`plan_lanes`) and feeds (`feeds_for`) and applying only the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
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
from translator_bot.interpreter.lane import Lane, LaneRouter, spec_for
from translator_bot.interpreter.plan import LaneKey, LanePlan, Member, diff_lanes, feeds_for, plan_lanes
from translator_bot.interpreter.transcript import Transcript
from translator_bot.metrics import FRAMES_IN, LANES
from translator_bot.settings import Settings

log = logging.getLogger(__name__)

MIXED_FEED = "mixed"


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
    participant_id: str
    track: MediaStreamTrack


@dataclass(frozen=True, slots=True)
class PeerAudioGone:
    participant_id: str


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
    def send_data(self, text: str) -> object: ...

    async def relabel(self, lang: str) -> None: ...

    async def aclose(self) -> None: ...


class RoomPort(Protocol):
    def events(self) -> AsyncIterator[RoomEvent]: ...

    async def publish_feed(self, track: MediaStreamTrack, *, for_id: str | None, lang: str) -> Publication:
        """Publish `track` labelled for one listener (None: for everyone) in language `lang`."""
        ...


EngineFactory = Callable[[Settings, LaneSpec], EngineSession]


@dataclass(slots=True)
class _Feed:
    feed_id: str  # listener id, or MIXED_FEED
    track: PlayoutTrack
    publication: Publication | None
    lanes: tuple[LaneKey, ...]
    lang: str


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
    ) -> None:
        self._settings = settings
        self._room = room
        self._engine_factory = engine_factory
        self._clock = clock
        self._playout_clock = playout_clock
        self.transcript = Transcript(meeting_id)
        self.members: dict[str, Member] = {}
        self.lanes: dict[LaneKey, Lane] = {}
        self.feeds: dict[str, _Feed] = {}
        self._plans: dict[LaneKey, LanePlan] = {}
        self._inbound: dict[str, asyncio.Task[None]] = {}
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
            stop_wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stop_wait

    def stop(self) -> None:
        self._stop.set()

    async def aclose(self) -> None:
        """Close lanes, inbound pumps and feeds; safe to call more than once."""
        for task in self._inbound.values():
            task.cancel()
        for task in list(self._inbound.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._inbound.clear()
        lanes, self.lanes = list(self.lanes.values()), {}
        await asyncio.gather(*(lane.aclose() for lane in lanes), return_exceptions=True)
        LANES.set(0)
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

    # --- room events ---------------------------------------------------------------------------

    async def _on_event(self, event: RoomEvent) -> None:
        match event:
            case PeerChanged(member=member):
                if self.members.get(member.id) != member:
                    log.info("participant %s: %s speaks %s", member.id, member.name, member.language.display)
                    self.members[member.id] = member
                    await self._reconcile()
            case PeerLeft(participant_id=pid):
                self._stop_inbound(pid)
                if self.members.pop(pid, None) is not None:
                    log.info("participant %s left", pid)
                    await self._reconcile()
            case PeerAudio(participant_id=pid, track=track):
                self._stop_inbound(pid)
                self.frames_heard[pid] = 0
                self._inbound[pid] = asyncio.create_task(
                    self._pump_inbound(pid, track), name=f"inbound {pid}"
                )
            case PeerAudioGone(participant_id=pid):
                self._stop_inbound(pid)
            case RoomClosed(reason=reason):
                raise RoomError(reason)
            case MeetingEnded(reason=reason):
                log.info("stopping: %s", reason)
                self._stop.set()

    def _stop_inbound(self, pid: str) -> None:
        self.frames_heard.pop(pid, None)
        task = self._inbound.pop(pid, None)
        if task is not None:
            task.cancel()

    async def _pump_inbound(self, pid: str, track: MediaStreamTrack) -> None:
        converter = InboundConverter()
        name = self.members[pid].name if pid in self.members else pid
        log.info("receiving audio from participant %s (%s)", pid, name)
        frames = 0
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                frames += 1
                if frames == 1:
                    log.info("first audio from participant %s (%s)", pid, name)
                self.frames_heard[pid] = frames
                self._route_inbound(pid, converter, frame)
        finally:
            log.info("audio of participant %s (%s) ended: %d frames received", pid, name, frames)

    def _route_inbound(self, pid: str, converter: InboundConverter, frame: object) -> None:
        FRAMES_IN.inc()
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
            new_plans = plan_lanes(self.members.values())
            changes = diff_lanes(self._plans, new_plans)
            self._plans = new_plans
            for key in changes.closed:
                lane = self.lanes.pop(key, None)
                if lane is not None:
                    # Translations already queued still play: they were said and are on their way.
                    log.info("closing lane %s", key)
                    await lane.aclose()
            for plan in changes.changed:
                if plan.key in self.lanes:
                    log.info("re-configuring lane %s -> %s", plan.key, plan.target.tag)
                    self.lanes[plan.key].update(plan)
            for plan in changes.opened:
                self._open_lane(plan)
            LANES.set(len(self.lanes))
            await self._reconcile_feeds()

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
        lane = Lane(plan, engine, self, self.transcript, on_fatal=self._fatal_error, clock=self._clock)
        lane.start()
        self.lanes[plan.key] = lane

    async def _reconcile_feeds(self) -> None:
        wanted = feeds_for(self._plans, self._settings.output_mode)
        for feed_id in [f for f in self.feeds if f not in wanted]:
            feed = self.feeds.pop(feed_id)
            feed.track.stop()
            if feed.publication is not None:
                await feed.publication.aclose()
        for feed_id, lanes in wanted.items():
            lang = self._feed_language(feed_id)
            existing = self.feeds.get(feed_id)
            if existing is None:
                await self._publish(feed_id, lanes, lang)
                continue
            existing.lanes = lanes
            if existing.lang != lang and existing.publication is not None:
                existing.lang = lang
                await existing.publication.relabel(lang)  # the listener switched language

    def _feed_language(self, feed_id: str) -> str:
        if feed_id == MIXED_FEED:
            return self._settings.default_language
        return self.members[feed_id].language.tag

    async def _publish(self, feed_id: str, lanes: tuple[LaneKey, ...], lang: str) -> None:
        track = PlayoutTrack(
            cushion_ms=self._settings.playout_cushion_ms,
            hold_ms=self._settings.effective_hold_ms,
            max_lag_ms=self._settings.playout_max_lag_ms,
            clock=self._playout_clock,
            on_dropped=self._on_dropped,
        )
        feed = _Feed(feed_id, track, None, lanes, lang)
        self.feeds[feed_id] = feed
        for_id = None if feed_id == MIXED_FEED else feed_id
        try:
            feed.publication = await self._room.publish_feed(track, for_id=for_id, lang=lang)
        except RoomError:
            self.feeds.pop(feed_id, None)
            track.stop()
            raise

    def _feeds_of(self, key: LaneKey) -> list[_Feed]:
        return [feed for feed in self.feeds.values() if key in feed.lanes]

    def _on_dropped(self, item: str, played: int) -> None:
        key_text, _, engine_item = item.partition("|")
        for key, lane in self.lanes.items():
            if str(key) == key_text:
                # A lane shared by several feeds: the model keeps what the furthest listener heard.
                heard = max([played] + [f.track.played_samples(item) for f in self._feeds_of(key)])
                lane.interrupted(engine_item, heard)
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

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Lanes whose model provider is unreachable are reported under `degraded` without failing the
        check: the bot stays in the room and resumes by itself, and a restart would not help."""
        now = time.monotonic()
        degraded: dict[str, dict[str, Any]] = {}
        for key, lane in self.lanes.items():
            outage = lane.engine.outage
            if outage is not None:
                degraded[str(key)] = {
                    "since": datetime.fromtimestamp(outage.since_wall, UTC).isoformat(timespec="seconds"),
                    "seconds": round(max(0.0, now - outage.since), 1),
                    "reason": outage.reason,
                }
        return (
            self._fatal is None,
            {
                "participants": len(self.members),
                "frames_heard": dict(self.frames_heard),
                "lanes": {str(k): lane.engine.state.value for k, lane in self.lanes.items()},
                "degraded": degraded,
                "feeds": sorted(self.feeds),
            },
        )
