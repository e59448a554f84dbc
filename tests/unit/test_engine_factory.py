"""The meeting's engines: loaded (code and options, the glossary file) once per meeting, off the event
loop, while the listeners' feeds go into the room."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from translator_bot.audio.clock import FakeClock
from translator_bot.engine import factory
from translator_bot.engine.factory import EngineBuilder, engine_builder
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.glossary import GlossaryError, load_glossary
from translator_bot.interpreter.meeting import Meeting
from translator_bot.interpreter.plan import LaneKey
from translator_bot.interpreter.port import PeerAudio, PeerChanged
from translator_bot.settings import Settings

from .test_meeting import FakeRoom, SpeakerTrack, drain, member, wait_for

GLOSSARY = 'keep = ["Kubernetes"]\n'


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_meeting_reads_the_glossary_once_and_not_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "glossary.toml"
    path.write_text(GLOSSARY, encoding="utf-8")
    settings = Settings(
        openai_api_key=SecretStr("sk-test-not-used"),
        openai_base_url=f"http://127.0.0.1:{closed_port()}/v1",  # lanes only try to connect
        engine="realtime",
        glossary=path,
        metrics_port=0,
    )
    # The settings' validation read it (load_glossary keeps the last four files read in the process);
    # a process that has loaded other glossaries since (several meetings embedded in one process) no
    # longer holds this one.
    load_glossary.cache_clear()
    reads: list[threading.Thread] = []
    read_text = Path.read_text

    def counting(self: Path, *args: object, **kwargs: object) -> str:
        if self == path:
            reads.append(threading.current_thread())
        return read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counting)
    room = FakeRoom()
    meeting = Meeting(settings, room, "glossary-once", lane_change_interval=0.0)
    runner = asyncio.create_task(meeting.run())
    try:
        for pid, name, lang in (("1", "Alice", "en"), ("2", "Beatriz", "es"), ("3", "Chen", "zh")):
            await room.queue.put(PeerChanged(member(pid, name, lang)))
        async with asyncio.timeout(10):
            while len(meeting.lanes) < 6:  # noqa: ASYNC110 (three people: each to the two others)
                await asyncio.sleep(0.01)
    finally:
        meeting.stop()
        await asyncio.wait_for(runner, 5)
        await meeting.aclose()
    assert len(reads) == 1, f"the glossary was read {len(reads)} times for 6 lanes"
    assert reads[0] is not threading.main_thread(), "the glossary was read on the event loop's thread"


async def test_feeds_go_into_the_room_while_the_engine_loads_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(engine="passthrough", metrics_port=0)
    loading = threading.Event()

    def slow_builder(s: Settings) -> EngineBuilder:
        loading.set()
        time.sleep(0.5)  # as the model engines' imports take, blocking the thread that runs them
        return engine_builder(s)

    monkeypatch.setattr(factory, "engine_builder", slow_builder)
    room = FakeRoom()
    lanes_when_published: list[int] = []
    publish = room.publish_feed

    async def publish_feed(track: object, *, for_id: object, lang: str) -> object:
        lanes_when_published.append(len(meeting.lanes))
        return await publish(track, for_id=for_id, lang=lang)  # type: ignore[no-untyped-call]

    room.publish_feed = publish_feed  # type: ignore[method-assign]
    meeting = Meeting(settings, room, "feeds-first", lane_change_interval=0.0)
    runner = asyncio.create_task(meeting.run())
    longest_gap, last = 0.0, time.monotonic()
    try:
        for pid, name, lang in (("1", "Alice", "en"), ("2", "Beatriz", "es"), ("3", "Chen", "zh")):
            await room.queue.put(PeerChanged(member(pid, name, lang)))
        async with asyncio.timeout(10):
            while len(meeting.lanes) < 6:
                await asyncio.sleep(0.01)
                longest_gap, last = max(longest_gap, time.monotonic() - last), time.monotonic()
    finally:
        meeting.stop()
        await asyncio.wait_for(runner, 5)
        await meeting.aclose()
    assert loading.is_set()
    # The room's events are followed while the engine loads: Chen, who came last, has a feed in time too.
    assert lanes_when_published == [0, 0, 0], "each listener's feed is published before any lane opens"
    assert longest_gap < 0.2, f"the event loop stood still {longest_gap:.2f} s while the engine loaded"


async def test_an_engine_that_cannot_load_stops_the_meeting_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def gone(s: Settings) -> EngineBuilder:
        raise GlossaryError("glossary.toml: no such file")

    monkeypatch.setattr(factory, "engine_builder", gone)
    room = FakeRoom()
    meeting = Meeting(Settings(engine="passthrough", metrics_port=0), room, "no-engine")
    runner = asyncio.create_task(meeting.run())
    try:
        await room.queue.put(PeerChanged(member("1", "Alice", "en")))
        await room.queue.put(PeerChanged(member("2", "Beatriz", "es")))
        with pytest.raises(GlossaryError, match="no such file"):
            await asyncio.wait_for(runner, 5)
    finally:
        meeting.stop()
        await meeting.aclose()
    assert not meeting.lanes


async def test_speech_heard_while_the_engine_loads_is_interpreted_when_the_lane_opens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Participants speak once the interpreter's feed is in the room, which is before its lanes open."""

    def slow_builder(s: Settings) -> EngineBuilder:
        time.sleep(1.0)
        return engine_builder(s)

    monkeypatch.setattr(factory, "engine_builder", slow_builder)
    room = FakeRoom()
    settings = Settings(engine="passthrough", playout_cushion_ms=60, metrics_port=0)
    meeting = Meeting(settings, room, "held-speech", lane_change_interval=0.0, playout_clock=FakeClock())
    runner = asyncio.create_task(meeting.run())
    try:
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Beatriz", "es")))
        # The track is read as fast as it gives frames: the whole utterance is heard before the lanes open.
        track = SpeakerTrack(read_pcm(utterance("u1-en")))
        await room.queue.put(PeerAudio("a", track))
        await wait_for(lambda: bool(meeting.lanes) and bool(meeting.frames_heard.get("a")))
        assert track._pos >= len(track._mono), "the speech must be over before the lane opens"
        lane = meeting.lanes[LaneKey("a", "es")]
        await wait_for(lambda: bool(lane.latencies), 10)
        heard = await drain(room.feed_for("b").track, 250)
    finally:
        meeting.stop()
        await asyncio.wait_for(runner, 5)
        await meeting.aclose()
    voiced = np.flatnonzero(np.abs(heard) > 300)
    assert voiced.size, "Beatriz heard nothing of what Alice said while the engine loaded"
