"""The interpreter for one meeting: participants in, lanes and output feeds kept in step with them.

Data path: room audio track -> AudioIn (24 kHz mono) -> every lane whose speaker it is -> model session ->
the meeting as the lanes' router -> the PlayoutTrack of each feed that carries the lane (FeedSet) -> room.
The meeting reacts to room events (joins, language changes, feeds, leaves; see `port`) by re-planning
lanes (`plan_lanes`) and feeds (`plan_feeds`: per listener, per language or mixed) and applying only the
difference, within the lane cap (`TRANSLATOR_MAX_LANES`, earliest-joined served first) and at most one
change per lane per second.

Lazy lanes (`TRANSLATOR_LANES_OPEN=speech`, the default with per-language output): a speaker's lanes
open once their speech tracker first hears them speak, so listeners who never speak cost no model
session and take no place under the cap. Until then the meeting keeps the last `PRE_ROLL_S` of their
audio; when they are heard, that and what they say while the lanes connect is held (as for lanes
waiting for the engine at start-up) and given to the lanes when they open, so their first words are
translated. Someone who leaves is forgotten: if they come back, they are heard again before their
lanes reopen (with the same pre-roll, so nothing they say is lost; only that first sentence waits for
the connection).

No participant can break the meeting for the others:
- every audio stream a participant publishes is read to its end by its own task (`audio_in`);
- a crashed reader or lane is restarted with back-off; a feed the room refuses (publisher limit) or
  takes away (kicked, unpublished, connection failed) leaves only its listener without
  interpretation, and is published again with back-off (`feeds`);
- `health()` lists every part that is not well, with the reason.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from translator_bot.audio.clock import Clock
from translator_bot.audio.formats import BYTES_PER_SAMPLE, MODEL_RATE
from translator_bot.audio.inbound import MAX_IDLE_FILL_S
from translator_bot.audio.playout import PlayoutKey, PlayoutTrack
from translator_bot.engine.base import EngineSession, LaneSpec
from translator_bot.engine.factory import MeetingEngines
from translator_bot.errors import ProviderError, RoomError
from translator_bot.interpreter.audio_in import AudioIn
from translator_bot.interpreter.cost import CostMeter
from translator_bot.interpreter.feeds import Feed, FeedSet, feed_language, listener_name
from translator_bot.interpreter.health import PartHealth, Restarts, lane_health, outage_report
from translator_bot.interpreter.lane import Lane, LaneRouter, spec_for
from translator_bot.interpreter.plan import (
    ChangeLimiter,
    FeedPlan,
    LaneKey,
    LanePlan,
    Member,
    awaiting_speech,
    cap_lanes,
    plan_feeds,
    plan_lanes,
)
from translator_bot.interpreter.port import (
    MeetingEnded,
    PeerAudio,
    PeerAudioGone,
    PeerChanged,
    PeerLeft,
    RoomClosed,
    RoomEvent,
    RoomPort,
)
from translator_bot.interpreter.speech import SpeechEndTracker
from translator_bot.interpreter.transcript import Transcript
from translator_bot.metrics import LANE_RESTARTS, LANES, LANES_UNSERVED, forget_lane
from translator_bot.settings import Settings
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)

# Speech heard while the engine loads (start-up), given to the lanes when they open: as much as an engine
# sends again to a new model connection at once (engine.intake.MAX_REPLAY_MS).
HELD_SPEECH_S = 10.0
# Audio kept of each speaker not heard yet (lazy lanes): the speech detector fires on the first voiced
# frame, so this holds the onset and the quiet before it the model's own turn detection pads with.
PRE_ROLL_S = 1.0
LANE_CHANGE_INTERVAL_S = 1.0  # a lane is opened, closed or re-configured at most this often
SUPERVISE_INTERVAL_S = 0.25  # how often due restarts, re-publishes and held-back changes are looked at

# Builds a lane's session at once (tests); by default the meeting's MeetingEngines, loaded first.
EngineFactory = Callable[[Settings, LaneSpec], EngineSession]


def _audio_bytes(seconds: float) -> int:
    return int(seconds * MODEL_RATE) * BYTES_PER_SAMPLE


class HeldAudio:
    """The latest `max_bytes` of a speaker's audio, in the chunks it came in. `tracked`: the speaker's
    speech tracker was fed these chunks as they came (otherwise it is fed them when they are handed
    on)."""

    def __init__(self, max_bytes: int, *, tracked: bool = False) -> None:
        self.chunks: collections.deque[bytes] = collections.deque()
        self.max_bytes = max_bytes  # may grow: a pre-roll becomes speech held for the lanes
        self.tracked = tracked
        self._bytes = 0

    def append(self, pcm: bytes) -> None:
        self.chunks.append(pcm)
        self._bytes += len(pcm)
        while self._bytes > self.max_bytes:
            self._bytes -= len(self.chunks.popleft())


class Meeting(LaneRouter):
    def __init__(
        self,
        settings: Settings,
        room: RoomPort,
        meeting_id: str,
        *,
        engine_factory: EngineFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        playout_clock: Clock | None = None,
        lane_change_interval: float = LANE_CHANGE_INTERVAL_S,
        supervise_interval: float = SUPERVISE_INTERVAL_S,
        on_caption: Callable[[dict[str, object]], None] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._room = room
        self._engines = MeetingEngines(settings)
        self._engine_factory = engine_factory
        self._clock = clock
        self._playout_clock = playout_clock
        self._supervise_interval = supervise_interval
        self._on_caption = on_caption  # every caption sent to the feeds, for an embedding program
        self._on_change = on_change  # after the participants or lanes may have changed
        self.transcript = Transcript(meeting_id)
        self.cost = CostMeter.from_settings(settings)
        self.members: dict[str, Member] = {}  # in join order: the lane cap serves the earliest first
        self.lanes: dict[LaneKey, Lane] = {}
        self._closing: set[Lane] = set()  # taken out of `lanes`, being closed
        self._plans: dict[LaneKey, LanePlan] = {}
        self._pending: dict[LaneKey, LanePlan] = {}  # planned, opened once the engine is loaded
        self._load_error: Exception | None = None
        self._load_started = False
        self._held: dict[str, HeldAudio] = {}  # per speaker in `_holding`, until their lanes open
        # Lazy lanes: lanes are planned only for speakers heard so far (forgotten when they leave).
        self._lazy = settings.effective_lanes_open == "speech"
        self._heard: set[str] = set()
        self._awaiting: frozenset[str] = frozenset()  # not heard yet, would have lanes once heard
        # Speakers whose audio is held for lanes not open yet: of pending lanes (engine loading), not
        # heard yet (the pre-roll), or heard but their lanes not open yet.
        self._holding: set[str] = set()
        # Per speaker with an open lane (or awaited, with lazy lanes): every lane of a speaker hears the
        # same audio, so the speech-end tracker runs once per chunk, not once per lane (each lane sees it
        # from its opening on).
        self._speech: dict[str, SpeechEndTracker] = {}
        self._wanted_feeds: dict[str, FeedPlan] = {}
        self._limiter = ChangeLimiter(lane_change_interval, settings.max_lanes)
        self._replan_at: float | None = None
        self._unserved: tuple[LaneKey, ...] = ()
        self._lane_restarts: dict[LaneKey, Restarts] = {}
        self._lane_retry_at: dict[LaneKey, float] = {}
        self._audio_in = AudioIn(
            self._speaker_audio,
            name_of=self._member_name,
            clock=clock,
            needed=self._speaks_into_a_lane,
            timely=self._may_end_a_turn,
            # a sender that stopped sending gets enough presumed silence to end any turn
            max_idle_fill_s=max(MAX_IDLE_FILL_S, settings.vad_silence_duration_ms / 1000 + 1.0),
        )
        self.frames_heard = self._audio_in.frames_heard  # per participant: see AudioIn
        self._feed_set = FeedSet(room, new_track=self._new_track, name_of=self._listener_name, clock=clock)
        self.feeds: dict[str, Feed] = self._feed_set.feeds
        self._fatal: ProviderError | None = None
        self._tasks = TaskSet("meeting", logger=log)
        self._following: asyncio.Task[Any] | None = None  # the task in run(), while it follows the room
        self._handling = False  # run() is applying a room event: a stop waits for it to finish
        self._stop_requested = False
        self._stopped_by_cancel = False
        self._reconcile_lock = asyncio.Lock()

    # --- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the room until `stop()`; raises RoomError if the room goes, a ProviderError when the
        model provider refuses the key (exit 4) or stays unreachable too long (exit 5)."""
        if self._stop_requested:  # stopped (or failed) before it ran
            if self._fatal is not None:
                raise self._fatal
            return
        self._following = asyncio.current_task()
        supervisor = self._tasks.spawn(self._supervise(), name="meeting supervisor")
        try:
            await self._follow_room()
        except asyncio.CancelledError:
            # stop() cancels the wait for the next room event; any other cancellation is the caller's.
            if not self._stopped_by_cancel or self._following is None or self._following.uncancel() > 0:
                raise
        finally:
            self._following = None
            await self._tasks.cancel(supervisor)
        if self._fatal is not None:
            raise self._fatal
        if self._load_error is not None:
            raise self._load_error

    async def _follow_room(self) -> None:
        async for event in self._room.events():
            self._handling = True
            try:
                await self._on_event(event)
            finally:
                self._handling = False
            if self._stop_requested:
                return
        raise RoomError("the room connection ended")

    def stop(self) -> None:
        """End `run()` normally: at once if it waits for the room, after the event in hand otherwise."""
        if self._stop_requested:
            return
        self._stop_requested = True
        if self._following is not None and not self._handling:
            self._stopped_by_cancel = True
            self._following.cancel()

    async def aclose(self) -> None:
        """Close lanes, inbound pumps and feeds; safe to call more than once."""
        await self._tasks.close()
        await self._audio_in.aclose()
        lanes = [*self.lanes.values(), *self._closing]
        self.lanes, self._closing = {}, set()
        self._speech = {}
        self._held, self._holding = {}, set()
        await asyncio.gather(*(lane.aclose() for lane in lanes), return_exceptions=True)
        for lane in lanes:
            forget_lane(str(lane.key))
        LANES.set(0)
        LANES_UNSERVED.set(0)
        await self._feed_set.aclose()

    async def _load_engines(self) -> None:
        """Load the engine (in a worker thread) while the meeting follows the room and publishes the
        listeners' feeds, then open the lanes planned meanwhile. A failure (the glossary file gone
        since start-up) stops the meeting: run() raises it."""
        try:
            await self._engines.load()
        except Exception as exc:
            log.error("cannot load the %s engine: %s", self._settings.effective_engine, exc)
            self._load_error = exc
            self.stop()
            return
        async with self._reconcile_lock:
            pending, self._pending = self._pending, {}
            opened = [self._open_lane(plan) for plan in pending.values()]
            self._hand_over_held(opened)
            self._holding = {pid for pid in self._holding if pid in self._awaiting}
            self._held = {pid: held for pid, held in self._held.items() if pid in self._holding}
            LANES.set(len(self.lanes))
        if self._on_change is not None:
            self._on_change()

    def _fatal_error(self, exc: ProviderError) -> None:
        if self._fatal is None:
            self._fatal = exc
        self.stop()

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
                        await self._feed_set.repair()
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
                self._audio_in.stop(pid, None)
                self._heard.discard(pid)  # back in the room, they are heard again before their lanes open
                if self.members.pop(pid, None) is not None:
                    log.info("participant %s left", pid)
                    await self._reconcile()
            case PeerAudio(participant_id=pid, track=track, stream=stream):
                self._audio_in.start(pid, stream, track)
            case PeerAudioGone(participant_id=pid, stream=stream):
                self._audio_in.stop(pid, stream or None)
            case RoomClosed(reason=reason):
                raise RoomError(reason)
            case MeetingEnded(reason=reason):
                log.info("stopping: %s", reason)
                self._stop_requested = True

    def _speaks_into_a_lane(self, pid: str) -> bool:
        """Open, or its audio held for lanes to come: waiting for the engine, or (lazy lanes) listened
        to for their first words."""
        return pid in self._holding or any(lane.plan.speaker.id == pid for lane in self.lanes.values())

    def _may_end_a_turn(self, pid: str) -> bool:
        """Whether the silence of `pid` times a turn (of their lanes, open or on their way); not for
        someone not heard yet, whose silence only fills the pre-roll their first words are kept in."""
        return not (pid in self._awaiting and pid not in self._heard)

    def _speaker_audio(self, pid: str, pcm: bytes) -> None:
        speech = self._speech.get(pid)
        if speech is None and pid in self._awaiting:
            speech = self._speech[pid] = SpeechEndTracker()
        shared = None
        if speech is not None:
            # The chunk as the speaker's tracker read it: its lanes reuse the frame powers it computed.
            shared = speech.feed(pcm, self._clock())
            if pid in self._awaiting and pid not in self._heard and speech.last_voiced_sample is not None:
                self._on_heard(pid)
        for lane in self.lanes.values():
            if lane.plan.speaker.id == pid:
                lane.push_audio(pcm, shared)
        if pid in self._holding:
            held = self._held.get(pid)
            if held is None:
                held = self._held[pid] = HeldAudio(self._held_bytes(pid), tracked=speech is not None)
            held.append(pcm)

    def _held_bytes(self, pid: str) -> int:
        """A pre-roll for someone not heard yet, up to HELD_SPEECH_S for lanes on their way."""
        return _audio_bytes(PRE_ROLL_S if pid in self._awaiting and pid not in self._heard else HELD_SPEECH_S)

    def _on_heard(self, pid: str) -> None:
        """Lazy lanes: `pid` spoke for the first time; their lanes open now, their words held meanwhile."""
        self._heard.add(pid)
        log.info("heard %s (%s) speak: opening their lanes", pid, self._member_name(pid))
        if (held := self._held.get(pid)) is not None:
            held.max_bytes = _audio_bytes(HELD_SPEECH_S)
        if not self._tasks.closed:
            self._tasks.spawn(self._reconcile_now(), name=f"opening the lanes of {pid}")

    async def _reconcile_now(self) -> None:
        try:
            await self._reconcile()
        except Exception:
            log.exception("opening lanes failed; trying again")
            self._replan_at = self._clock()  # the supervisor's next tick

    def _member_name(self, pid: str) -> str:
        return self.members[pid].name if pid in self.members else pid

    # --- lanes and feeds -----------------------------------------------------------------------

    async def _reconcile(self) -> None:
        async with self._reconcile_lock:
            now = self._clock()
            await self._restart_due_lanes(now)
            speakers = self._heard if self._lazy else None
            capped = cap_lanes(
                plan_lanes(self.members.values(), speakers), list(self.members), self._settings.max_lanes
            )
            self._note_unserved(capped.left_out)
            step = self._limiter.step(self._plans, capped.plans, now)
            self._plans = step.plans
            self._replan_at = step.retry_at
            # The lanes change in one go (nothing awaited in between); closing them comes after.
            closing = [lane for key in step.changes.closed if (lane := self.lanes.pop(key, None)) is not None]
            self._closing.update(closing)  # closed by aclose() if the meeting is stopped meanwhile
            for key in step.changes.closed:
                self._pending.pop(key, None)
                self._lane_restarts.pop(key, None)
                self._lane_retry_at.pop(key, None)
            for plan in step.changes.changed:
                if plan.key in self._pending:
                    self._pending[plan.key] = plan
                elif plan.key in self.lanes:
                    log.info("re-configuring lane %s -> %s", plan.key, plan.target.tag)
                    self.lanes[plan.key].update(plan)
            opened: list[Lane] = []
            for plan in step.changes.opened:
                if self._engines_ready():
                    opened.append(self._open_lane(plan))
                else:  # at start-up: the feeds go into the room (silent) while the engine loads
                    self._pending[plan.key] = plan
            # Before anything is awaited: from here on their audio goes to the lanes, none lost or doubled.
            self._hand_over_held(opened)
            self._hold_for_lanes_to_come(capped.plans)
            lane_speakers = {lane.plan.speaker.id for lane in self.lanes.values()}
            self._speech = {
                pid: t for pid, t in self._speech.items() if pid in lane_speakers or pid in self._awaiting
            }
            for lane in closing:
                # Translations already queued still play: they were said and are on their way.
                log.info("closing lane %s", lane.key)
                await self._close_lane(lane)
                forget_lane(str(lane.key))
            LANES.set(len(self.lanes))
            await self._reconcile_feeds()
            if self._pending and not self._load_started:
                # Loaded once the feeds are in the room: the import (a worker thread, but it holds the
                # GIL) does not slow down their negotiation, and a bot alone in a room loads nothing.
                self._load_started = True
                self._tasks.spawn(self._load_engines(), name="loading the engine")
            if self._on_change is not None:
                self._on_change()

    async def _reconcile_feeds(self) -> None:
        """Publish, relabel and withdraw feeds to match the planned lanes (open or not yet)."""
        wanted = self._wanted_feeds = plan_feeds(self._plans, self._settings.output_mode)
        lanes = {feed_id: feed.lanes for feed_id, feed in wanted.items()}
        await self._feed_set.reconcile(lanes, self._feed_language, lambda fid: wanted[fid].audience)

    def _hand_over_held(self, opened: list[Lane]) -> None:
        """Give the lanes just opened what their speaker said while they were on their way."""
        by_speaker: dict[str, list[Lane]] = {}
        for lane in opened:
            by_speaker.setdefault(lane.plan.speaker.id, []).append(lane)
        for pid, lanes in by_speaker.items():
            held = self._held.pop(pid, None)
            if held is None:
                continue
            speech = None if held.tracked else self._speech.get(pid)
            for pcm in held.chunks:
                if speech is not None:
                    speech.feed(pcm, self._clock())
                for lane in lanes:
                    lane.push_audio(pcm)

    def _hold_for_lanes_to_come(self, wanted: dict[LaneKey, LanePlan]) -> None:
        """Who to listen to for lanes not open yet, and whose held audio is no longer for anything."""
        if self._lazy:
            self._heard &= set(self.members)
            self._awaiting = awaiting_speech(self.members.values(), self._heard)
        open_speakers = {lane.plan.speaker.id for lane in self.lanes.values()}
        deferred = {plan.speaker.id for key, plan in wanted.items() if key not in self.lanes}
        self._holding = (
            {plan.speaker.id for plan in self._pending.values()}
            | set(self._awaiting)
            | ((deferred - open_speakers) if self._lazy else set())
        )
        for pid in [pid for pid in self._held if pid not in self._holding]:
            del self._held[pid]
        for pid, held in self._held.items():
            held.max_bytes = self._held_bytes(pid)

    def _engines_ready(self) -> bool:
        return self._engine_factory is not None or self._engines.loaded

    def _new_engine(self, spec: LaneSpec) -> EngineSession:
        if self._engine_factory is not None:
            return self._engine_factory(self._settings, spec)
        return self._engines.create(spec)

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

    def _open_lane(self, plan: LanePlan) -> Lane:
        log.info(
            "opening lane %s: %s (%s) -> %s for %s",
            plan.key,
            plan.speaker.name,
            plan.speaker.language.tag,
            plan.target.tag,
            ", ".join(m.name for m in plan.listeners),
        )
        engine = self._new_engine(spec_for(plan))
        speech = self._speech.get(plan.speaker.id)
        if speech is None:
            speech = self._speech[plan.speaker.id] = SpeechEndTracker()
        lane = Lane(
            plan,
            engine,
            self,
            self.transcript,
            on_fatal=self._fatal_error,
            on_stopped=self._lane_stopped,
            clock=self._clock,
            speech=speech.since_now(),
        )
        lane.start()
        self.lanes[plan.key] = lane
        self.cost.track(str(plan.key), engine)
        return lane

    async def _close_lane(self, lane: Lane) -> None:
        """Close a lane already taken out of `lanes` (and put in `_closing`)."""
        await lane.aclose()
        self._closing.discard(lane)

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
                self._closing.add(lane)
                await self._close_lane(lane)
            if plan is not None:
                LANE_RESTARTS.inc()
                log.info("restarting lane %s", key)
                self._open_lane(plan)

    def _feed_language(self, feed_id: str) -> str:
        if (feed := self._wanted_feeds.get(feed_id)) is not None and feed.language is not None:
            return feed.language.tag  # a per-language feed
        return feed_language(feed_id, self.members, self._plans.values(), self._settings.default_language)

    def _listener_name(self, feed_id: str) -> str:
        return listener_name(feed_id, self.members)

    def _new_track(self) -> PlayoutTrack:
        return PlayoutTrack(
            cushion_ms=self._settings.playout_cushion_ms,
            hold_ms=self._settings.effective_hold_ms,
            max_lag_ms=self._settings.playout_max_lag_ms,
            clock=self._playout_clock,
            on_cut_short=self._on_cut_short,
            dtx=self._settings.playout_dtx,
        )

    def _feeds_of(self, key: LaneKey) -> list[Feed]:
        return self._feed_set.serving(key)

    def _on_cut_short(self, cut: PlayoutKey, played: int) -> None:
        for key, lane in self.lanes.items():
            if str(key) == cut.lane:
                # A lane shared by several feeds: the model keeps what the furthest listener heard.
                heard = max([played] + [f.track.played_samples(cut) for f in self._feeds_of(key)])
                lane.cut_short(cut.item, heard)
                return

    # --- LaneRouter ------------------------------------------------------------------------------

    def deliver_audio(self, key: LaneKey, item: str, pcm: bytes) -> None:
        for feed in self._feeds_of(key):
            feed.track.enqueue(pcm, PlayoutKey(str(key), item))

    def end_item(self, key: LaneKey, item: str) -> None:
        for feed in self._feeds_of(key):
            feed.track.end_item(PlayoutKey(str(key), item))

    def caption(self, key: LaneKey, message: dict[str, object]) -> None:
        text = json.dumps(message, ensure_ascii=False)
        for feed in self._feeds_of(key):
            if feed.publication is not None:
                feed.publication.send_data(text)
        if self._on_caption is not None:
            self._on_caption(message)

    # --- observability ---------------------------------------------------------------------------

    def degraded_parts(self) -> list[PartHealth]:
        """Every part of the meeting that is not well, with the reason."""
        now = self._clock()
        parts: list[PartHealth] = []
        for key, lane in self.lanes.items():
            restarts, restarting = self._lane_restarts.get(key), key in self._lane_retry_at
            if (part := lane_health(f"lane {key}", lane.engine, restarts, restarting, now)) is not None:
                parts.append(part)
        parts.extend(self._audio_in.degraded(now))
        parts.extend(self._feed_set.degraded())
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
            # Outages are timed on the monotonic clock the engines use, not the meeting's injected one.
            "outages": outage_report(
                {str(k): lane.engine for k, lane in self.lanes.items()}, time.monotonic()
            ),
            "unserved_lanes": [str(key) for key in self._unserved],
            # Lazy lanes: participants whose lanes open once they are heard (not unserved: not needed yet).
            "awaiting_speech": sorted(self._awaiting),
        }
        if self._fatal is not None:
            details["fatal"] = str(self._fatal)
        return self._fatal is None and not parts, details
