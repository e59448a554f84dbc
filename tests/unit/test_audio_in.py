"""Audio in: which of a participant's streams is interpreted, when a reader is reported, and that the
readers are owned (stopped by `stop()`, all gone after `aclose()`)."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack

from tests.unit.test_meeting import member, running, wait_for
from tests.unit.test_meeting_guard import QueuedTrack
from translator_bot import metrics
from translator_bot.audio.inbound import InboundConverter
from translator_bot.interpreter.audio_in import AudioIn, InboundStream, primary_stream, stream_health
from translator_bot.interpreter.plan import LaneKey
from translator_bot.interpreter.port import PeerAudio, PeerChanged
from translator_bot.settings import Settings


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


async def test_audio_nobody_needs_is_read_and_counted_but_not_converted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    converted: list[str] = []
    original = InboundConverter.convert

    def counting(self: InboundConverter, frame: av.AudioFrame, arrival: float | None = None) -> bytes:
        converted.append("x")
        return original(self, frame, arrival)

    monkeypatch.setattr(InboundConverter, "convert", counting)
    heard: list[int] = []
    needed = {"a": False}
    audio = AudioIn(lambda pid, pcm: heard.append(len(pcm)), name_of=str, needed=lambda pid: needed[pid])
    track = QueuedTrack()
    try:
        audio.start("a", "a/0", track)
        await wait_for(lambda: audio.frames_heard["a"] > 10)
        # Read (nothing queues up in the track) and counted (the media path is up), but no work done.
        assert track.backlog <= 2
        assert converted == [] and heard == []
        needed["a"] = True  # a lane opened for this speaker
        await wait_for(lambda: len(heard) > 5)
        assert len(converted) >= len(heard)
        # A fresh stream: no silence for the time skipped, no tail of what came before.
        assert max(heard) <= 2 * 480
    finally:
        await audio.aclose()
        track.stop()


async def test_the_idle_timer_of_audio_nobody_needs_does_not_wake_for_nothing() -> None:
    # No lane hears the speaker: their audio is not converted, so there is no silence to presume for
    # them, and the timer must not wake every tick to find that out (a listener who never speaks).
    asked = [0]

    def needed(pid: str) -> bool:
        asked[0] += 1
        return False

    audio = AudioIn(lambda pid, pcm: None, name_of=str, needed=needed)
    track = QueuedTrack()
    try:
        audio.start("a", "a/0", track)
        await wait_for(lambda: audio.frames_heard.get("a", 0) > 2)
        await asyncio.sleep(0.5)  # ten ticks of the idle timer
        assert asked[0] <= audio.frames_heard["a"] + 1  # asked by the frames, not by the timer
    finally:
        await audio.aclose()
        track.stop()


class FallsSilentTrack(MediaStreamTrack):
    """A sender that sends `frames` 20 ms frames of digital silence in real time, then nothing (Opus
    DTX, or a muted microphone that stops sending) until stopped."""

    kind = "audio"

    def __init__(self, frames: int) -> None:
        super().__init__()
        self._left = frames
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self._left <= 0:
            await asyncio.Event().wait()  # cancelled when the reader stops
        self._left -= 1
        await asyncio.sleep(0.02)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48_000, self._pts, fractions.Fraction(1, 48_000)
        self._pts += 960
        return frame


@pytest.mark.parametrize("timely", [True, False])
async def test_the_silence_of_someone_whose_turns_nobody_times_is_handed_on_less_often(timely: bool) -> None:
    """Presumed silence (a sender gone quiet) comes every IDLE_TICK_S for a participant whose turns
    are timed (their lanes end a turn on it); for one whose silence only fills a pre-roll (not heard
    yet, lazy lanes) every QUIET_TICK_S, the same silence in fewer, larger pieces: a listener who
    never speaks wakes the loop a fifth as often."""
    handed: list[int] = []
    audio = AudioIn(lambda pid, pcm: handed.append(len(pcm)), name_of=str, timely=lambda pid: timely)
    track = FallsSilentTrack(frames=10)
    try:
        audio.start("a", "a/0", track)
        await wait_for(lambda: audio.frames_heard.get("a", 0) >= 10)
        before = len(handed)
        await asyncio.sleep(1.5)  # 1.2 s after the margin of presumed silence
        pieces = len(handed) - before
        presumed_s = sum(handed[before:]) / 2 / 24_000
    finally:
        await audio.aclose()
        track.stop()
    assert 0.9 < presumed_s < 1.5  # the same silence either way
    if timely:
        assert pieces >= 15  # ~24 ticks of 50 ms
    else:
        assert pieces <= 7  # ~5 ticks of 250 ms


async def test_a_meeting_converts_only_the_audio_of_speakers_with_a_lane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    converted: list[str] = []
    original = InboundConverter.convert

    def counting(self: InboundConverter, frame: av.AudioFrame, arrival: float | None = None) -> bytes:
        converted.append("x")
        return original(self, frame, arrival)

    monkeypatch.setattr(InboundConverter, "convert", counting)
    settings = Settings(engine="passthrough", playout_cushion_ms=60, metrics_port=0)
    track = QueuedTrack()
    try:
        async with running(settings, "needed") as (room, meeting):
            await room.queue.put(PeerChanged(member("a", "Alice", "en")))
            await room.queue.put(PeerChanged(member("b", "Bob", "en-GB")))
            await room.queue.put(PeerAudio("a", track))
            await wait_for(lambda: meeting.frames_heard.get("a", 0) > 10)
            assert meeting.lanes == {} and converted == []  # one language: nobody to interpret Alice for
            await room.queue.put(PeerChanged(member("b", "Bob", "es")))
            await wait_for(lambda: LaneKey("a", "es") in meeting.lanes and len(converted) > 10)
    finally:
        track.stop()


async def test_the_second_stream_is_counted_as_extra_then_interpreted_once_the_first_stops() -> None:
    heard: list[int] = []
    audio = AudioIn(lambda pid, pcm: heard.append(len(pcm)), name_of=str)
    first, second = QueuedTrack(), QueuedTrack()
    extra_before = metrics.counter_value(metrics.FRAMES_IGNORED, reason="extra_stream")
    try:
        audio.start("a", "a/0", first)
        audio.start("a", "a/1", second)
        await wait_for(lambda: second.delivered > 10)
        extra = metrics.counter_value(metrics.FRAMES_IGNORED, reason="extra_stream") - extra_before
        assert extra >= second.delivered - 1
        audio.stop("a", "a/0")
        taken_over_at = len(heard)
        await wait_for(lambda: len(heard) > taken_over_at + 10)
        assert audio.frames_heard["a"] == second.delivered
    finally:
        await audio.aclose()
        first.stop()
        second.stop()
