"""The meeting's life cycle: `run()` follows the room until it is stopped (by cancelling its wait for the
room, never an event in hand), fails, or the room goes; `aclose()` leaves nothing running or open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.unit.test_meeting import FakeRoom, member, passthrough, wait_for
from translator_bot.engine.base import EngineEvent, LaneSpec
from translator_bot.engine.passthrough import PassthroughSession
from translator_bot.errors import ProviderFatalError
from translator_bot.interpreter.meeting import Meeting
from translator_bot.interpreter.plan import LaneKey
from translator_bot.interpreter.port import PeerChanged, PeerLeft
from translator_bot.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings(engine="passthrough", playout_cushion_ms=60, metrics_port=0)


def meeting_tasks() -> set[str]:
    """Names of the tasks the meeting and its parts may start, still running."""
    prefixes = ("meeting", "lane ", "inbound ")
    return {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(prefixes)}


class SlowRoom(FakeRoom):
    """Publishing a feed waits until the test lets it through."""

    def __init__(self) -> None:
        super().__init__()
        self.publishing = asyncio.Event()
        self.release = asyncio.Event()

    async def publish_feed(self, track, *, for_id, lang):
        self.publishing.set()
        await self.release.wait()
        return await super().publish_feed(track, for_id=for_id, lang=lang)  # type: ignore[no-untyped-call]


async def test_stop_while_waiting_for_the_room_returns_at_once_and_leaves_no_task(settings):
    meeting = Meeting(settings, FakeRoom(), "run1", engine_factory=passthrough)
    runner = asyncio.create_task(meeting.run())
    await wait_for(lambda: "meeting supervisor" in meeting_tasks())
    meeting.stop()
    await asyncio.wait_for(runner, 1)  # returns normally: no CancelledError, no RoomError
    assert "meeting supervisor" not in meeting_tasks()
    await meeting.aclose()
    assert meeting_tasks() == set()


async def test_stop_lets_the_event_in_hand_finish(settings):
    room = SlowRoom()
    meeting = Meeting(settings, room, "run2", engine_factory=passthrough)
    runner = asyncio.create_task(meeting.run())
    await room.queue.put(PeerChanged(member("a", "Alice", "en")))
    await room.queue.put(PeerChanged(member("b", "Bea", "es")))
    await asyncio.wait_for(room.publishing.wait(), 5)
    meeting.stop()  # mid-event: the feed being published is not abandoned half-way
    await asyncio.sleep(0.05)
    assert not runner.done()
    room.release.set()
    await asyncio.wait_for(runner, 5)
    assert room.publications and all(meeting.feeds[p.for_id].publication is p for p in room.publications)
    await meeting.aclose()
    assert all(p.closed for p in room.publications)


async def test_stop_before_run_makes_run_return_at_once(settings):
    meeting = Meeting(settings, FakeRoom(), "run3", engine_factory=passthrough)
    meeting.stop()
    await asyncio.wait_for(meeting.run(), 1)
    await meeting.aclose()


async def test_the_callers_cancellation_is_not_swallowed(settings):
    meeting = Meeting(settings, FakeRoom(), "run4", engine_factory=passthrough)
    runner = asyncio.create_task(meeting.run())
    await wait_for(lambda: "meeting supervisor" in meeting_tasks())
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    await meeting.aclose()
    assert meeting_tasks() == set()


class RefusedKey(PassthroughSession):
    async def start(self) -> None:
        raise ProviderFatalError("the model provider refused the API key")


async def test_a_fatal_provider_error_ends_run_with_it_while_it_waits_for_the_room(settings):
    def refused(settings: Settings, spec: LaneSpec) -> PassthroughSession:
        return RefusedKey(None, spec, settings)

    room = FakeRoom()
    meeting = Meeting(settings, room, "run5", engine_factory=refused)
    await room.queue.put(PeerChanged(member("a", "Alice", "en")))
    await room.queue.put(PeerChanged(member("b", "Bea", "es")))
    with pytest.raises(ProviderFatalError, match="refused the API key"):
        await asyncio.wait_for(meeting.run(), 5)
    assert meeting.health()[1]["fatal"] == "the model provider refused the API key"
    await meeting.aclose()


class SlowToClose(PassthroughSession):
    """A model session whose first close hangs if `hang` (a provider that does not answer the close)."""

    def __init__(self, *args: object, hang: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.hang = hang
        self.close_calls = 0
        self.closed = False
        self.closing = asyncio.Event()

    async def events(self) -> AsyncIterator[EngineEvent]:
        await asyncio.Event().wait()  # events never come; only closing ends this
        raise AssertionError("unreachable")
        yield  # pragma: no cover

    async def aclose(self) -> None:
        self.close_calls += 1
        self.closing.set()
        if self.hang and self.close_calls == 1:
            await asyncio.Event().wait()
        self.closed = True


async def test_a_lane_whose_closing_was_cut_short_by_cancellation_is_closed_by_aclose(settings):
    made: dict[str, SlowToClose] = {}

    def factory(settings: Settings, spec: LaneSpec) -> SlowToClose:
        made[spec.lane_id] = SlowToClose(None, spec, settings, hang=spec.lane_id == "a->es")
        return made[spec.lane_id]

    room = FakeRoom()
    meeting = Meeting(settings, room, "run6", engine_factory=factory, lane_change_interval=0.0)
    runner = asyncio.create_task(meeting.run())
    await room.queue.put(PeerChanged(member("a", "Alice", "en")))
    await room.queue.put(PeerChanged(member("b", "Bea", "es")))
    await wait_for(lambda: set(meeting.lanes) == {LaneKey("a", "es"), LaneKey("b", "en")})
    await room.queue.put(PeerLeft("b"))  # both lanes close; the first close hangs
    await asyncio.wait_for(made["a->es"].closing.wait(), 5)
    runner.cancel()  # the shutdown budget ran out while the lane was closing
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert not meeting.lanes
    await asyncio.wait_for(meeting.aclose(), 5)
    assert made["a->es"].closed and made["b->en"].closed
    assert meeting_tasks() == set()
