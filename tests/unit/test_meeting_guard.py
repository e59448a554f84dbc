"""No participant can break the meeting for the others, and health says what is broken: a fake room,
the real meeting, lanes and audio path, the passthrough engine (or a sabotaged one)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import AsyncIterator, Callable

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from prometheus_client import generate_latest

from tests.unit.test_meeting import FakePublication, FakeRoom, member, wait_for
from translator_bot.audio.clock import FakeClock
from translator_bot.engine.base import EngineEvent, LaneSpec
from translator_bot.engine.passthrough import PassthroughSession
from translator_bot.errors import RoomError
from translator_bot.interpreter.meeting import Meeting
from translator_bot.interpreter.plan import Audience, LaneKey
from translator_bot.interpreter.port import PeerAudio, PeerAudioGone, PeerChanged, PeerLeft
from translator_bot.metrics import ENGINE_TOKENS, REGISTRY
from translator_bot.settings import Settings


class QueuedTrack(MediaStreamTrack):
    """Behaves like aiortc's remote track: frames arrive at 50 per second into an unbounded queue,
    whether or not anybody reads them; `backlog` is how many wait unread."""

    kind = "audio"

    def __init__(self, fail_at: set[int] | None = None) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.AudioFrame] = asyncio.Queue()
        self._fail_at = fail_at or set()
        self.delivered = 0
        self._producer = asyncio.create_task(self._produce())

    async def _produce(self) -> None:
        pts = 0
        while True:
            samples = np.full(960, 2000 if (pts // 960) % 50 < 25 else 0, dtype=np.int16)
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48_000, pts, fractions.Fraction(1, 48_000)
            self._queue.put_nowait(frame)
            pts += 960
            await asyncio.sleep(0.02)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        self.delivered += 1
        if self.delivered in self._fail_at:
            raise ValueError(f"cannot decode frame {self.delivered}")
        return frame

    def stop(self) -> None:
        super().stop()
        self._producer.cancel()


@contextlib.asynccontextmanager
async def meeting_on(
    room: FakeRoom,
    settings: Settings,
    *,
    engine_factory: Callable[[Settings, LaneSpec], PassthroughSession] | None = None,
    clock: Callable[[], float] | None = None,
    lane_change_interval: float = 1.0,
) -> AsyncIterator[Meeting]:
    meeting = Meeting(
        settings,
        room,
        "guard",
        engine_factory=engine_factory or passthrough,
        clock=clock or time.monotonic,
        playout_clock=FakeClock(),
        supervise_interval=0.02,
        lane_change_interval=lane_change_interval,
    )
    runner = asyncio.create_task(meeting.run())
    try:
        yield meeting
    finally:
        meeting.stop()
        await runner
        await meeting.aclose()


def passthrough(settings: Settings, spec: LaneSpec) -> PassthroughSession:
    return PassthroughSession(None, spec, settings)


@pytest.fixture
def settings() -> Settings:
    return Settings(engine="passthrough", playout_cushion_ms=60, metrics_port=0)


# --- two audio streams from one participant -----------------------------------------------------------


async def test_a_second_audio_stream_neither_stops_the_first_nor_lets_frames_pile_up(settings):
    room = FakeRoom()
    first, second = QueuedTrack(), QueuedTrack()
    try:
        async with meeting_on(room, settings) as meeting:
            await room.queue.put(PeerChanged(member("a", "Alice", "en")))
            await room.queue.put(PeerChanged(member("b", "Bea", "es")))
            await wait_for(lambda: len(meeting.lanes) == 2)
            await room.queue.put(PeerAudio("a", first, "a/0"))
            await wait_for(lambda: meeting.frames_heard.get("a", 0) >= 5)
            await room.queue.put(PeerAudio("a", second, "a/1"))
            await asyncio.sleep(1.0)
            # both streams are read as they arrive: nothing waits unread in either track
            assert first.backlog <= 3 and second.backlog <= 3, (first.backlog, second.backlog)
            assert second.delivered >= 30
            # the first stream is the one interpreted; the second's end does not stop it
            await room.queue.put(PeerAudioGone("a", "a/1"))
            heard = meeting.frames_heard["a"]
            await asyncio.sleep(0.5)
            assert meeting.frames_heard["a"] >= heard + 15
            assert first.backlog <= 3
            # and when the first goes, the other would take over: here none is left
            await room.queue.put(PeerAudioGone("a", "a/0"))
            await wait_for(lambda: "a" not in meeting.frames_heard)
    finally:
        first.stop()
        second.stop()


async def test_the_second_stream_takes_over_when_the_first_ends(settings):
    room = FakeRoom()
    first, second = QueuedTrack(), QueuedTrack()
    try:
        async with meeting_on(room, settings) as meeting:
            await room.queue.put(PeerChanged(member("a", "Alice", "en")))
            await room.queue.put(PeerAudio("a", first, "a/0"))
            await room.queue.put(PeerAudio("a", second, "a/1"))
            await wait_for(lambda: meeting.frames_heard.get("a", 0) >= 10)
            await room.queue.put(PeerAudioGone("a", "a/0"))
            await wait_for(lambda: meeting.frames_heard.get("a", 0) >= second.delivered - 2 > 20)
    finally:
        first.stop()
        second.stop()


# --- the lane cap and the change limiter --------------------------------------------------------------


async def test_the_lane_cap_holds_says_so_and_serves_the_earliest(settings, caplog):
    capped = settings.model_copy(update={"max_lanes": 2})
    room = FakeRoom()
    with caplog.at_level(logging.WARNING, logger="translator_bot.interpreter.meeting"):
        async with meeting_on(room, capped) as meeting:
            for pid, name, lang in [("z", "Zoe", "en"), ("y", "Yann", "fr"), ("x", "Xu", "zh")]:
                await room.queue.put(PeerChanged(member(pid, name, lang)))
            await wait_for(lambda: meeting.health()[1]["unserved_lanes"])
            assert set(meeting.lanes) == {LaneKey("z", "fr"), LaneKey("y", "en")}
            assert len(meeting.health()[1]["unserved_lanes"]) == 4
            assert "translator_lanes_unserved 4.0" in generate_latest(REGISTRY).decode()
            await room.queue.put(PeerLeft("y"))
            await wait_for(lambda: set(meeting.lanes) == {LaneKey("z", "zh"), LaneKey("x", "en")})
            assert meeting.health()[1]["unserved_lanes"] == []
    assert any("lane cap reached (TRANSLATOR_MAX_LANES=2" in r.getMessage() for r in caplog.records)


async def test_language_flapping_every_10_ms_opens_at_most_one_session_a_second_per_lane(settings):
    room = FakeRoom()
    opened: dict[str, int] = {}

    def counting(settings: Settings, spec: LaneSpec) -> PassthroughSession:
        opened[spec.lane_id] = opened.get(spec.lane_id, 0) + 1
        return passthrough(settings, spec)

    async with meeting_on(room, settings, engine_factory=counting) as meeting:
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        loop = asyncio.get_running_loop()
        started = loop.time()
        flips = 0
        while loop.time() - started < 3.0:
            await room.queue.put(PeerChanged(member("b", "Bob", "de" if flips % 2 == 0 else "fr")))
            flips += 1
            await asyncio.sleep(0.01)
        elapsed = loop.time() - started
        await wait_for(lambda: not meeting._replan_at, 5)
    assert flips > 100
    assert opened, "no lane was ever opened"
    for lane, count in opened.items():
        assert count <= elapsed + 2, (lane, count, opened)


# --- a refused or lost feed degrades one listener only ------------------------------------------------


class RefusingRoom(FakeRoom):
    """Refuses to publish the feed for the listeners in `refuse` (a publisher limit)."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = refuse
        self.attempts: dict[Audience, int] = {}

    async def publish_feed(self, track: MediaStreamTrack, *, for_id: Audience, lang: str) -> FakePublication:
        self.attempts[for_id] = self.attempts.get(for_id, 0) + 1
        if for_id in self.refuse:
            raise RoomError(
                f"cannot publish the feed 'Interpreter -> {for_id}': Maximum number of publishers"
            )
        publication: FakePublication = await super().publish_feed(  # type: ignore[no-untyped-call]
            track, for_id=for_id, lang=lang
        )
        return publication


async def test_a_refused_publish_degrades_that_listener_only_and_is_tried_again(settings):
    room = RefusingRoom({"b"})
    async with meeting_on(room, settings) as meeting:
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await wait_for(lambda: room.attempts.get("b", 0) >= 1 and "a" in meeting.feeds)
        ready, details = meeting.health()
        assert not ready
        assert details["degraded"] == [
            {
                "part": "feed for Bea (b)",
                "status": "refused",
                "reason": "cannot publish the feed 'Interpreter -> b': Maximum number of publishers",
            }
        ]
        assert room.feed_for("a").track is meeting.feeds["a"].track  # Alice is served meanwhile
        room.refuse.clear()  # a publisher left the room
        await wait_for(lambda: any(p.for_id == "b" for p in room.publications), 5)
        await wait_for(lambda: meeting.health()[0])


async def test_a_feed_the_room_took_away_is_published_again(settings):
    room = FakeRoom()
    async with meeting_on(room, settings) as meeting:
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await wait_for(lambda: len(room.publications) == 2)
        kicked = room.feed_for("b")
        kicked.lost_reason = "the room server hung up the feed"  # type: ignore[attr-defined]
        await wait_for(lambda: any(d["part"] == "feed for Bea (b)" for d in meeting.health()[1]["degraded"]))
        await wait_for(lambda: kicked.closed and len(room.publications) == 3, 5)
        assert room.feed_for("b") is not kicked and meeting.feeds["b"].publication is room.feed_for("b")


# --- crashed lanes and pumps are restarted and reported -----------------------------------------------


class CrashingSession(PassthroughSession):
    async def events(self) -> AsyncIterator[EngineEvent]:
        raise RuntimeError("a bug in the lane")
        yield  # pragma: no cover


async def test_a_crashed_lane_is_reported_and_restarted(settings):
    room = FakeRoom()
    now = [0.0]
    made: list[PassthroughSession] = []

    def first_crashes(settings: Settings, spec: LaneSpec) -> PassthroughSession:
        cls = CrashingSession if not made and spec.lane_id == "a->es" else PassthroughSession
        made.append(cls(None, spec, settings))
        return made[-1]

    async with meeting_on(room, settings, engine_factory=first_crashes, clock=lambda: now[0]) as meeting:
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await wait_for(lambda: meeting.health()[1]["degraded"])
        ready, details = meeting.health()
        assert not ready
        assert details["degraded"][0]["part"] == "lane a->es"
        assert details["degraded"][0]["status"] == "restarting"
        assert "RuntimeError: a bug in the lane" in details["degraded"][0]["reason"]
        now[0] += 1.0  # the first restart comes after a second
        await wait_for(lambda: meeting.lanes[LaneKey("a", "es")].engine is made[-1] and len(made) == 3)
        assert meeting.health()[1]["degraded"][0]["status"] == "restarted"
        now[0] += 60.0
        assert meeting.health() == (True, meeting.health()[1])


async def test_a_crashed_pump_is_restarted_and_never_leaves_frames_unread(settings):
    room = FakeRoom()
    track = QueuedTrack(fail_at={5})
    try:
        async with meeting_on(room, settings) as meeting:
            await room.queue.put(PeerChanged(member("a", "Alice", "en")))
            await room.queue.put(PeerAudio("a", track, "a/0"))
            await wait_for(lambda: track.delivered >= 5)
            ready, details = meeting.health()
            assert not ready
            assert details["degraded"][0]["part"] == "audio a/0"
            assert "ValueError: cannot decode frame 5" in details["degraded"][0]["reason"]
            await asyncio.sleep(0.5)
            assert track.backlog <= 3  # read (and dropped) while waiting to restart
            await wait_for(lambda: meeting.frames_heard["a"] > 5 + 50, 5)  # restarted after 1 s
    finally:
        track.stop()


# --- metrics of closed lanes go --------------------------------------------------------------------


async def test_lanes_coming_and_going_do_not_grow_metrics(settings):
    room = FakeRoom()

    def series() -> int:
        return generate_latest(REGISTRY).decode().count('lane="')

    async with meeting_on(room, settings, lane_change_interval=0.05) as meeting:
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        baseline = series()
        for i in range(20):
            await room.queue.put(PeerChanged(member(f"guest{i}", f"Guest {i}", "es")))
            await wait_for(lambda i=i: LaneKey(f"guest{i}", "en") in meeting.lanes)
            for key in meeting.lanes:
                for kind in ("input", "output", "cached"):
                    ENGINE_TOKENS.labels(str(key), kind).inc(10)  # as a usage report would
            await room.queue.put(PeerLeft(f"guest{i}"))
            await wait_for(lambda i=i: LaneKey(f"guest{i}", "en") not in meeting.lanes)
        await wait_for(lambda: not meeting.lanes)
        await wait_for(lambda: series() <= baseline, 3)  # a closing lane forgets its series once closed
