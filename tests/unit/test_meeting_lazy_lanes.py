"""Lazy lanes in the meeting, against a fake room with the real audio path: a speaker's lanes open when
their speech tracker first hears them, not when they join; what they said from just before their first
word on reaches the lanes; listeners who never speak open nothing and take no place under the cap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from tests.unit.test_meeting import FakeRoom, SpeakerTrack, member, wait_for
from translator_bot.audio.clock import FakeClock
from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.vad import SharedChunk
from translator_bot.engine.base import LaneSpec
from translator_bot.engine.passthrough import PassthroughSession
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.interpreter.meeting import PRE_ROLL_S, Meeting
from translator_bot.interpreter.plan import LaneKey
from translator_bot.interpreter.port import PeerAudio, PeerChanged, PeerLeft
from translator_bot.settings import Settings


class RecordingSession(PassthroughSession):
    """The passthrough engine, keeping every byte of input it is given (what a model would hear)."""

    def __init__(self, settings: Settings, spec: LaneSpec) -> None:
        super().__init__(None, spec, settings)
        self.received = bytearray()

    def send_audio(self, pcm: bytes, shared: SharedChunk | None = None) -> None:
        self.received += pcm
        super().send_audio(pcm, shared)


@contextlib.asynccontextmanager
async def recording(settings: Settings) -> AsyncIterator[tuple[FakeRoom, Meeting, list[RecordingSession]]]:
    sessions: list[RecordingSession] = []

    def factory(settings: Settings, spec: LaneSpec) -> RecordingSession:
        sessions.append(session := RecordingSession(settings, spec))
        return session

    room = FakeRoom()
    meeting = Meeting(settings, room, "lazy", engine_factory=factory, playout_clock=FakeClock())
    runner = asyncio.create_task(meeting.run())
    try:
        yield room, meeting, sessions
    finally:
        meeting.stop()
        await runner
        await meeting.aclose()


def webinar(**overrides: Any) -> Settings:
    return Settings(
        engine="passthrough", playout_cushion_ms=60, metrics_port=0, output_mode="per-language", **overrides
    )


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * MODEL_RATE), dtype=np.int16)


def test_auto_is_speech_for_per_language_and_join_otherwise() -> None:
    assert webinar().effective_lanes_open == "speech"
    assert Settings(metrics_port=0).effective_lanes_open == "join"
    assert Settings(metrics_port=0, output_mode="mixed").effective_lanes_open == "join"
    assert webinar(lanes_open="join").effective_lanes_open == "join"
    assert Settings(metrics_port=0, lanes_open="speech").effective_lanes_open == "speech"


async def test_silent_listeners_open_no_lane_and_the_speaker_opens_theirs_when_heard() -> None:
    async with recording(webinar()) as (room, meeting, sessions):
        for pid, name, lang in [("a", "Alice", "en"), ("b", "Bea", "es"), ("c", "Dieter", "de")]:
            await room.queue.put(PeerChanged(member(pid, name, lang)))
        await wait_for(lambda: len(meeting.members) == 3)
        await room.queue.put(PeerAudio("b", SpeakerTrack(silence(2.0))))
        await room.queue.put(PeerAudio("c", SpeakerTrack(silence(2.0))))
        await wait_for(
            lambda: meeting.frames_heard.get("b", 0) > 50 and meeting.frames_heard.get("c", 0) > 50
        )
        assert meeting.lanes == {} and meeting.feeds == {} and sessions == []
        ok, details = meeting.health()
        # Nobody is unserved: nobody has spoken yet; the three are listened to for their first words.
        assert ok and details["unserved_lanes"] == [] and details["awaiting_speech"] == ["a", "b", "c"]
        # What is kept of a silent listener's audio for their first word is bounded by the pre-roll.
        for pid in "bc":
            kept = sum(len(chunk) for chunk in meeting._held[pid].chunks)
            assert 0 < kept <= PRE_ROLL_S * MODEL_RATE * 2

        await room.queue.put(PeerAudio("a", SpeakerTrack(read_pcm(utterance("u1-en")))))
        await wait_for(lambda: set(meeting.lanes) == {LaneKey("a", "es"), LaneKey("a", "de")})
        await wait_for(lambda: set(meeting.feeds) == {"lang:es", "lang:de"})
        assert meeting.health()[1]["awaiting_speech"] == ["b", "c"]
        assert len(sessions) == 2, "only Alice's lanes opened a model session"


async def lane_input(mode: str, speech: np.ndarray) -> bytes:
    """Every byte the model session of Alice's lane into Spanish got, with lanes opened by `mode`, when
    Alice's track carries `speech` (after the track's 300 ms of silence)."""
    async with recording(webinar(lanes_open=mode)) as (room, _, sessions):
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        track = SpeakerTrack(speech)
        await room.queue.put(PeerAudio("a", track))
        await wait_for(lambda: track._pos >= len(track._mono), 20)  # every frame read
        await asyncio.sleep(0.1)
        return bytes(next(s for s in sessions if s.spec.lane_id == "a->es").received)


async def test_the_first_sentence_reaches_the_lanes_whole() -> None:
    """The lanes open a few frames into Alice's first word: the model must still get all of it, and the
    quiet just before it (the pre-roll), exactly as a lane open from the start would have got it."""
    speech = read_pcm(utterance("u1-en"))
    at_join, on_speech = await lane_input("join", speech), await lane_input("speech", speech)
    # 300 ms of silence before the word: within the pre-roll, so not one byte differs.
    assert on_speech == at_join
    assert len(on_speech) >= len(speech) * 2


async def test_after_a_long_silence_the_lanes_get_the_pre_roll_and_all_of_the_speech() -> None:
    lead_s = 3.0
    speech = np.concatenate([silence(lead_s), read_pcm(utterance("u1-en"))])
    at_join, on_speech = await lane_input("join", speech), await lane_input("speech", speech)
    assert at_join.endswith(on_speech), "the lazy lane got audio the speaker never sent"
    skipped_s = (len(at_join) - len(on_speech)) / 2 / MODEL_RATE
    # The silence before the pre-roll is skipped; the pre-roll and everything after it are not. The word
    # starts where the fixture first passes the speech tracker's -40 dBFS, after the track's 300 ms pad.
    first_loud = int(np.argmax(np.abs(read_pcm(utterance("u1-en"))) > 328))
    onset_s = 0.3 + lead_s + first_loud / MODEL_RATE
    assert onset_s - PRE_ROLL_S - 0.06 <= skipped_s <= onset_s - PRE_ROLL_S + 0.02, (skipped_s, onset_s)


async def test_with_the_cap_full_of_silent_early_joiners_a_late_speaker_is_still_served() -> None:
    """TRANSLATOR_MAX_LANES=2, three people join and never speak, a fourth joins late and asks a question.
    With lanes at the join the cap goes to the early joiners' unused lanes and the questioner gets no
    interpretation; with lazy lanes (the per-language default) the questioner's lanes are the only ones."""
    async with recording(webinar(max_lanes=2)) as (room, meeting, sessions):
        people = [("a", "Alice", "en"), ("b", "Bea", "es"), ("c", "Dieter", "de"), ("q", "Quique", "es")]
        for pid, name, lang in people:
            await room.queue.put(PeerChanged(member(pid, name, lang)))
        await wait_for(lambda: len(meeting.members) == 4)
        for pid in "abc":
            await room.queue.put(PeerAudio(pid, SpeakerTrack(silence(3.0))))
        await room.queue.put(PeerAudio("q", SpeakerTrack(read_pcm(utterance("u1-es")))))
        await wait_for(lambda: set(meeting.lanes) == {LaneKey("q", "en"), LaneKey("q", "de")})
        await wait_for(lambda: bool(meeting.lanes[LaneKey("q", "en")].latencies), 20)
        assert {s.spec.lane_id for s in sessions} == {"q->en", "q->de"}
        assert meeting.health()[1]["unserved_lanes"] == []


async def test_a_speaker_who_leaves_is_heard_again_before_their_lanes_reopen() -> None:
    async with recording(webinar()) as (room, meeting, sessions):
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await room.queue.put(PeerAudio("a", SpeakerTrack(read_pcm(utterance("u1-en")))))
        await wait_for(lambda: LaneKey("a", "es") in meeting.lanes)
        await room.queue.put(PeerLeft("a"))
        await wait_for(lambda: not meeting.lanes)
        await asyncio.sleep(1.1)  # the lane's change interval
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await wait_for(lambda: meeting.health()[1]["awaiting_speech"] == ["a", "b"])
        await room.queue.put(PeerAudio("a", SpeakerTrack(silence(1.0))))
        await wait_for(lambda: meeting.frames_heard.get("a", 0) > 40)
        assert not meeting.lanes, "a returning speaker's lanes wait until they speak again"
        await room.queue.put(PeerAudio("a", SpeakerTrack(read_pcm(utterance("u1-en")))))
        await wait_for(lambda: LaneKey("a", "es") in meeting.lanes)
        assert len(sessions) == 2


@pytest.mark.parametrize("mode", ["join", "speech"])
async def test_language_switch_keeps_the_heard_speakers_lanes(mode: str) -> None:
    async with recording(webinar(lanes_open=mode)) as (room, meeting, _):
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await room.queue.put(PeerAudio("a", SpeakerTrack(read_pcm(utterance("u1-en")))))
        await wait_for(lambda: LaneKey("a", "es") in meeting.lanes)
        await room.queue.put(PeerChanged(member("b", "Bea", "de")))
        await wait_for(
            lambda: set(meeting.lanes) >= {LaneKey("a", "de")} and LaneKey("a", "es") not in meeting.lanes
        )
