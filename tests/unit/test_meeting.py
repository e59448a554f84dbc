"""The interpreter's routing and lane life cycle, in-process: a fake room, real audio path, and the
passthrough engine (each utterance comes back as itself), so what reaches each feed is checkable."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from translator_bot.audio.clock import FakeClock
from translator_bot.engine.base import EngineState, LaneSpec, Outage
from translator_bot.engine.passthrough import PassthroughSession
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.interpreter.meeting import Meeting
from translator_bot.interpreter.plan import LaneKey, Member
from translator_bot.interpreter.port import (
    MeetingEnded,
    PeerAudio,
    PeerChanged,
    PeerLeft,
    RoomClosed,
    RoomEvent,
)
from translator_bot.languages import parse_language
from translator_bot.settings import Settings


class SpeakerTrack(MediaStreamTrack):
    """48 kHz stereo 20 ms frames: silence, one fixture utterance, then silence; as fast as read."""

    kind = "audio"

    def __init__(self, pcm24: np.ndarray, silence_ms: int = 1500) -> None:
        super().__init__()
        up = np.repeat(pcm24, 2)  # crude 24k->48k is fine: the passthrough returns what it got
        pad = np.zeros(48 * 300, dtype=np.int16)
        tail = np.zeros(48 * silence_ms, dtype=np.int16)
        self._mono = np.concatenate([pad, up, tail])
        self._pos = 0

    async def recv(self) -> av.AudioFrame:
        if self._pos >= len(self._mono):
            raise MediaStreamError
        chunk = self._mono[self._pos : self._pos + 960]
        chunk = np.pad(chunk, (0, 960 - len(chunk)))
        frame = av.AudioFrame.from_ndarray(np.repeat(chunk, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = self._pos
        frame.time_base = fractions.Fraction(1, 48_000)
        self._pos += 960
        await asyncio.sleep(0)
        return frame


class FakePublication:
    def __init__(self, track, for_id, lang) -> None:
        self.track, self.for_id, self.lang = track, for_id, lang
        self.data: list[str] = []
        self.closed = False

    def send_data(self, text: str) -> None:
        self.data.append(text)

    async def relabel(self, lang: str, for_id: object) -> None:
        self.lang, self.for_id = lang, for_id

    async def aclose(self) -> None:
        self.closed = True


class FakeRoom:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[RoomEvent] = asyncio.Queue()
        self.publications: list[FakePublication] = []

    async def events(self) -> AsyncIterator[RoomEvent]:
        while True:
            yield await self.queue.get()

    async def publish_feed(self, track, *, for_id, lang):
        pub = FakePublication(track, for_id, lang)
        self.publications.append(pub)
        return pub

    def feed_for(self, listener: str) -> FakePublication:
        live = [p for p in self.publications if p.for_id == listener and not p.closed]
        assert len(live) == 1, f"expected one live feed for {listener}, got {live}"
        return live[0]


def member(pid: str, name: str, lang: str) -> Member:
    return Member(pid, name, parse_language(lang))


async def drain(track: MediaStreamTrack, frames: int) -> np.ndarray:
    """What a listener hears of `frames` of the feed: its Opus packets decoded (left channel)."""
    decoder = av.CodecContext.create("libopus", "r")
    out = []
    for _ in range(frames):
        packet = await track.recv()
        assert isinstance(packet, av.Packet)
        for frame in decoder.decode(packet):
            out.append(frame.to_ndarray().reshape(-1, frame.layout.nb_channels)[:, 0])
    return np.concatenate(out)


@pytest.fixture
def settings() -> Settings:
    return Settings(engine="passthrough", playout_cushion_ms=60, metrics_port=0)


def passthrough(settings: Settings, spec: LaneSpec) -> PassthroughSession:
    return PassthroughSession(None, spec, settings)


@contextlib.asynccontextmanager
async def running(settings: Settings, meeting_id: str) -> AsyncIterator[tuple[FakeRoom, Meeting]]:
    """A meeting following a fake room, stopped and closed however the test ends."""
    room = FakeRoom()
    meeting = Meeting(settings, room, meeting_id, engine_factory=passthrough, playout_clock=FakeClock())
    runner = asyncio.create_task(meeting.run())
    try:
        yield room, meeting
    finally:
        meeting.stop()
        await runner
        await meeting.aclose()


async def wait_for(predicate, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - polls state owned by the code under test
            await asyncio.sleep(0.01)


async def test_each_listener_hears_only_the_other_speaker(settings):
    async with running(settings, "m1") as (room, meeting):
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Beatriz", "es-MX")))
        await wait_for(lambda: len(meeting.lanes) == 2 and len(meeting.feeds) == 2)
        assert set(meeting.lanes) == {LaneKey("a", "es"), LaneKey("b", "en")}
        to_b, to_a = room.feed_for("b"), room.feed_for("a")
        assert to_b.lang == "es-MX" and to_a.lang == "en"

        speech = read_pcm(utterance("u1-en"))
        await room.queue.put(PeerAudio("a", SpeakerTrack(speech)))
        lane = meeting.lanes[LaneKey("a", "es")]
        await wait_for(lambda: lane.engine.spec.target.tag == "es-MX" and bool(lane.latencies), 20)

        heard_b = await drain(to_b.track, 250)  # 5 s of B's feed
        heard_a = await drain(to_a.track, 250)
        assert np.abs(heard_a).max() == 0, "the speaker must not hear their own speech"
        voiced = np.flatnonzero(np.abs(heard_b) > 300)
        assert voiced.size, "B heard nothing"
        # The passthrough returns A's own words: B's feed carries about the utterance's length of audio.
        heard_ms = (voiced[-1] - voiced[0]) / 48
        assert abs(heard_ms - utterance("u1-en").duration_ms) < 250
        captions = [json.loads(t) for t in to_b.data]
        assert captions and captions[-1]["speaker"] == "a" and captions[-1]["for"] == ["b"]
        assert not to_a.data
    assert all(p.closed for p in room.publications)
    assert meeting.transcript.utterances and meeting.transcript.utterances[0].speaker_name == "Alice"


async def test_lanes_follow_language_changes_and_leaves(settings):
    async with running(settings, "m2") as (room, meeting):
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bob", "en-GB")))
        await asyncio.sleep(0.05)
        assert meeting.lanes == {} and meeting.feeds == {}  # same language: no lane, no cost
        await room.queue.put(PeerChanged(member("b", "Bob", "de")))
        await wait_for(lambda: set(meeting.lanes) == {LaneKey("a", "de"), LaneKey("b", "en")})
        old_b_feed = room.feed_for("b")
        await room.queue.put(PeerChanged(member("b", "Bob", "es")))
        await wait_for(lambda: set(meeting.lanes) == {LaneKey("a", "es"), LaneKey("b", "en")})
        assert meeting.lanes[LaneKey("b", "en")].engine.spec.source == parse_language("es")
        assert room.feed_for("b") is old_b_feed  # the listener's feed stays, relabelled; lanes change
        assert old_b_feed.lang == "es"
        await room.queue.put(PeerLeft("b"))
        await wait_for(lambda: not meeting.lanes and not meeting.feeds)
        assert all(p.closed for p in room.publications)


async def test_room_gone_is_a_room_error(settings):
    from translator_bot.errors import RoomError

    room = FakeRoom()
    meeting = Meeting(settings, room, "m3", engine_factory=passthrough)
    await room.queue.put(RoomClosed("janus connection lost"))
    with pytest.raises(RoomError, match="janus connection lost"):
        await meeting.run()
    await meeting.aclose()


async def test_a_meeting_that_ends_returns_normally(settings, caplog):
    room = FakeRoom()
    meeting = Meeting(settings, room, "m5", engine_factory=passthrough)
    await room.queue.put(PeerChanged(member("a", "Alice", "en")))
    await room.queue.put(MeetingEnded("meeting ended: the meeting room was destroyed"))
    caplog.set_level("INFO")
    await asyncio.wait_for(meeting.run(), 5)  # returns: no RoomError, as after stop()
    assert "meeting ended: the meeting room was destroyed" in caplog.text
    await meeting.aclose()


async def test_mixed_output_publishes_one_feed_for_everyone():
    settings = Settings(engine="passthrough", output_mode="mixed", metrics_port=0)
    async with running(settings, "m4") as (room, meeting):
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await wait_for(lambda: len(meeting.lanes) == 2)
        assert [p.for_id for p in room.publications] == [None]


async def test_health_says_from_whom_audio_is_arriving(settings):
    """`frames_heard` is 0 from the moment a participant's track is announced until a frame decodes,
    then counts; it goes when the track does. The demo and tests wait on it before anyone speaks."""
    async with running(settings, "m5") as (room, meeting):
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Beatriz", "es")))
        await wait_for(lambda: len(meeting.lanes) == 2)
        ok, details = meeting.health()
        assert ok and details["frames_heard"] == {}

        never_sends = asyncio.Event()

        class SilentUntilTold(MediaStreamTrack):
            kind = "audio"

            async def recv(self) -> av.AudioFrame:
                await never_sends.wait()
                raise MediaStreamError

        await room.queue.put(PeerAudio("b", SilentUntilTold()))
        await room.queue.put(PeerAudio("a", SpeakerTrack(np.zeros(24_000, dtype=np.int16), silence_ms=0)))
        await wait_for(lambda: meeting.frames_heard.get("a", 0) >= 10)
        _, details = meeting.health()
        assert details["frames_heard"]["b"] == 0
        assert details["frames_heard"]["a"] >= 10

        await room.queue.put(PeerLeft("b"))
        await wait_for(lambda: "b" not in meeting.frames_heard)


async def test_health_lists_lanes_whose_provider_is_unreachable(settings):
    """A lane in a provider outage is reported with since, duration and reason, and makes the bot not
    ready (a degraded part); liveness is another endpoint, so nobody restarts the bot for it: it
    resumes by itself, and a restart of the pod would not bring the provider back."""
    async with running(settings, "m6") as (room, meeting):
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await wait_for(lambda: len(meeting.lanes) == 2)
        lane = meeting.lanes[LaneKey("a", "es")]
        lane.engine.state = EngineState.DEGRADED
        lane.engine.outage = Outage(time.monotonic() - 12.0, time.time() - 12.0, "cannot connect to host")
        ok, details = meeting.health()
    assert not ok
    assert details["lanes"]["a->es"] == "degraded" and list(details["outages"]) == ["a->es"]
    assert details["degraded"] == [
        {
            "part": "lane a->es",
            "status": "outage",
            "reason": "the model provider is unreachable: cannot connect to host",
        }
    ]
    entry = details["outages"]["a->es"]
    assert entry["reason"] == "cannot connect to host" and 12.0 <= entry["seconds"] < 13.0
    assert entry["since"].endswith("+00:00")
