"""Audio in: which of a participant's streams is interpreted, when a reader is reported, and that the
readers are owned (stopped by `stop()`, all gone after `aclose()`)."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.mediastreams import AudioStreamTrack

from tests.unit.test_meeting import wait_for
from tests.unit.test_meeting_guard import QueuedTrack
from translator_bot.interpreter.audio_in import AudioIn, InboundStream, primary_stream, stream_health


def stream(pid: str, name: str, order: int) -> InboundStream:
    return InboundStream(pid, name, AudioStreamTrack(), order)


def test_the_earliest_arrived_stream_of_a_participant_is_interpreted() -> None:
    streams = [stream("a", "a/1", 3), stream("b", "b/0", 1), stream("a", "a/0", 2)]
    assert str(primary_stream(streams, "a")) == "a/0"
    assert str(primary_stream(streams, "b")) == "b/0"
    assert primary_stream(streams, "c") is None


def test_a_stream_is_named_by_its_stream_id_or_else_its_participant() -> None:
    assert str(stream("a", "", 1)) == "a"
    assert str(stream("a", "a/mic", 1)) == "a/mic"


def test_a_recently_restarted_reader_is_reported_until_it_settles() -> None:
    s = stream("a", "a/0", 1)
    assert stream_health(s, 0.0) is None
    s.restarts.record(10.0, "ValueError: bad frame")
    part = stream_health(s, 20.0)
    assert part is not None and (part.part, part.status) == ("audio a/0", "restarted")
    assert "bad frame" in part.reason
    assert stream_health(s, 100.0) is None


def test_no_reader_is_started_by_the_constructor() -> None:
    AudioIn(lambda pid, pcm: None, name_of=str)  # no running loop: starting a task here would raise


async def test_only_the_first_stream_reaches_the_lanes_and_close_stops_every_reader() -> None:
    heard: dict[str, int] = {}
    audio = AudioIn(lambda pid, pcm: heard.__setitem__(pid, heard.get(pid, 0) + len(pcm)), name_of=str)
    first, second = QueuedTrack(), QueuedTrack()
    try:
        audio.start("a", "a/0", first)
        audio.start("a", "a/1", second)
        await wait_for(lambda: second.delivered > 10 and audio.frames_heard["a"] > 10)
        assert audio.frames_heard["a"] == first.delivered  # counted from the interpreted stream only
        assert heard["a"] > 0
        audio.stop("a", "a/0")
        assert audio.frames_heard["a"] == second.delivered  # the second stream takes over
        tasks = {t for t in asyncio.all_tasks() if t.get_name().startswith("inbound ")}
        await audio.aclose()
        assert all(t.done() for t in tasks)
        assert audio.frames_heard == {}
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("stopped", [None, "a/0"])
async def test_stop_forgets_the_participant_when_no_stream_is_left(stopped: str | None) -> None:
    audio = AudioIn(lambda pid, pcm: None, name_of=str)
    track = QueuedTrack()
    try:
        audio.start("a", "a/0", track)
        assert audio.frames_heard == {"a": 0}
        audio.stop("a", stopped)
        assert audio.frames_heard == {}
    finally:
        await audio.aclose()
        track.stop()
