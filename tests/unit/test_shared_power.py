"""A speaker's 20 ms frame powers are computed once per chunk (per frame grid), by its speech-end
tracker, and every lane's input gate on that grid reuses them instead of computing them again. Whatever
the chunks (whole frames, odd bytes, half frames) and whenever a lane opens, each gate must say exactly
what it says computing its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from tests.unit.test_meeting import FakeRoom, member, wait_for
from tests.unit.test_speech import tone
from translator_bot.audio import vad
from translator_bot.audio.clock import FakeClock
from translator_bot.audio.vad import (
    SharedChunk,
    VoiceActivityConfig,
    VoiceActivityDetector,
    VoiceStarted,
    amplitude_dbfs,
)
from translator_bot.engine.base import LaneSpec
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.feed import AudioFeed
from translator_bot.engine.intake import Intake
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import RealtimeSession
from translator_bot.engine.silence_gate import SILENCE_FLOOR_DBFS
from translator_bot.interpreter.meeting import Meeting
from translator_bot.interpreter.plan import LaneKey
from translator_bot.interpreter.port import PeerChanged
from translator_bot.interpreter.speech import SpeechEndTracker
from translator_bot.settings import Settings

FRAME = 480  # 20 ms at 24 kHz
GATE = VoiceActivityConfig(  # the engine input gate's settings (engine/feed.py)
    threshold_dbfs=amplitude_dbfs(300.0), frame_ms=20, min_speech_ms=20, hangover_ms=500
)


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Bursts of noise at levels around the thresholds, with pauses: many starts, stops and floors."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    total = int(seconds * 24_000)
    while sum(len(part) for part in out) < total:
        length = int(rng.integers(60, 20_000))  # up to ~0.8 s: pauses past the hangover
        level = float(rng.choice([0.0, 10.0, 30.0, 250.0, 300.0, 320.0, 3000.0]))
        out.append((rng.standard_normal(length) * level).astype(np.int16))
    return np.concatenate(out)[:total]


def state(detector: VoiceActivityDetector) -> tuple[Any, ...]:
    return (
        detector.in_speech,
        detector.position,
        detector.received,
        detector.last_voiced_end,
        detector.last_sound_end,
    )


def test_detectors_sharing_chunks_say_what_each_says_reading_them_alone() -> None:
    # Detectors that began at different points of the stream (on the frame grid or off it) read the
    # same chunks, of any size: each must say exactly what it says reading the chunks on its own.
    samples = speech_like(20.0, seed=3)
    rng = np.random.default_rng(4)
    sizes = [480] * 300 + [int(rng.integers(1, 1500)) for _ in range(300)] + [480] * 200
    starts = {0: 0, 1: 0, 37: 0, 300: 0, 305: 0, 350: 0, 600: 0}  # chunk index -> phase, when begun
    pairs: list[tuple[VoiceActivityDetector, VoiceActivityDetector]] = []
    position, events = 0, 0
    for index, size in enumerate(sizes):
        if index in starts:
            pairs.append(
                (
                    VoiceActivityDetector(GATE, sound_floor_dbfs=SILENCE_FLOOR_DBFS),
                    VoiceActivityDetector(GATE, sound_floor_dbfs=SILENCE_FLOOR_DBFS),
                )
            )
        chunk = samples[position : position + size]
        position += size
        shared = SharedChunk(chunk.astype("<i2").tobytes())
        for alone, sharing in pairs:
            expected = alone.feed(chunk)
            assert sharing.feed_shared(shared) == expected, index
            assert state(sharing) == state(alone), index
            events += len(expected)
    assert events > 50  # the audio really starts and stops speech, many times


def test_a_frame_exactly_at_the_threshold_is_voiced_as_before() -> None:
    # RMS 300 is the gate's threshold; a frame of it has a power of exactly 90000 (float32), and the
    # threshold's power in double precision is 90000.00000000007. numpy compared the float32 powers
    # with the threshold rounded to float32, so such a frame was voiced: it still is.
    frame = np.full(FRAME, 300, dtype=np.int16)
    alone, sharing = VoiceActivityDetector(GATE), VoiceActivityDetector(GATE)
    assert alone.feed(frame) == [VoiceStarted(0, 0)]
    assert sharing.feed_shared(SharedChunk(frame.astype("<i2").tobytes())) == [VoiceStarted(0, 0)]
    quieter = VoiceActivityDetector(GATE)
    assert quieter.feed_shared(SharedChunk((frame - 1).astype("<i2").tobytes())) == []
    assert not quieter.in_speech


def test_digital_silence_has_the_powers_computing_them_gives() -> None:
    silent = np.zeros(1000, dtype=np.int16)
    chunk = SharedChunk(silent.astype("<i2").tobytes())
    for carry in (silent[:0], silent[:100], np.array([0, 0, 1], dtype=np.int16)):
        expected = vad._frame_power(np.concatenate([carry, silent]), FRAME).tolist()
        assert chunk.frame_powers(carry, FRAME) == expected
    assert chunk.frame_powers(np.array([0, 0, 1], dtype=np.int16), FRAME)[0] > 0


def test_only_bytes_of_whole_samples_are_shared() -> None:
    assert SharedChunk.of(bytes(961)) is None
    mutable: Any = bytearray(960)
    assert SharedChunk.of(mutable) is None  # may change under its readers: not shared
    chunk = SharedChunk.of(bytes(960))
    assert chunk is not None and len(chunk.samples) == FRAME
    # A gate handed the chunk of other bytes than those it is pushed reads what it is pushed.
    feed = AudioFeed()
    feed.push(tone(20), chunk)
    assert feed.voiced


def feed_state(feed: AudioFeed) -> tuple[Any, ...]:
    return (feed.end, feed.voiced, feed.run_start, feed.run_end, feed.quiet_since, feed.quiet_for())


def chunks_of(audio: bytes) -> list[bytes]:
    """20 ms chunks, with an odd-byte pair and a half frame then one and a half that leave the
    tracker's grid and come back to it (a lane opened between them keeps a grid of its own)."""
    whole = [audio[start : start + 960] for start in range(0, len(audio), 960)]
    out = whole[:40]
    joined = b"".join(whole[40:44])
    out += [joined[:961], joined[961:1920], joined[1920:2400], joined[2400:]]  # odd bytes, 10 ms
    out += whole[44:70]
    pair = b"".join(whole[70:72])
    out += [pair[:480], pair[480:], *whole[72:]]
    return out


def counter(counts: list[int], index: int) -> Callable[[], None]:
    def count() -> None:
        counts[index] += 1

    return count


def test_a_speaker_and_its_lanes_gates_agree_with_their_own_computation() -> None:
    audio = speech_like(20.0, seed=5).astype("<i2").tobytes()
    tracker, reference = SpeechEndTracker(), SpeechEndTracker()
    lanes: list[tuple[AudioFeed, AudioFeed, list[int]]] = []
    chunks = chunks_of(audio)
    for i, chunk in enumerate(chunks):
        # Opened at the start, mid-stream, with a byte carried, on a grid of its own, back on the grid.
        if i in (0, 23, 41, 71, 90):
            starts = [0, 0]  # speech starts heard by the gate given the powers, and by its own
            lanes.append(
                (
                    AudioFeed(on_speech_start=counter(starts, 0)),
                    AudioFeed(on_speech_start=counter(starts, 1)),
                    starts,
                )
            )
        now = (i + 1) * 0.02
        shared_chunk = tracker.feed(chunk, now)
        reference.feed(chunk, now)
        assert (tracker.last_speech_end, tracker.speaking) == (reference.last_speech_end, reference.speaking)
        for shared, own, starts in lanes:
            shared.push(chunk, shared_chunk)
            own.push(chunk)
            assert feed_state(shared) == feed_state(own), i
            assert starts[0] == starts[1]
    # Each lane heard speech start again and again (the one opened on half a sample hears other samples).
    assert [s[0] for _, _, s in lanes] == [8, 8, 2, 8, 8]


def test_the_power_is_computed_once_per_chunk_and_phase_for_the_tracker_and_every_lane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    computed = [0]
    frame_power = vad._frame_power

    def counted(samples: Any, frame_samples: int) -> Any:
        computed[0] += 1
        return frame_power(samples, frame_samples)

    monkeypatch.setattr(vad, "_frame_power", counted)
    # As the inbound converter hands it on: a first chunk shorter by the resampler's delay (446
    # samples), then 20 ms chunks; the tracker's frames are off the chunks' grid from then on.
    hush = tone(400, amplitude=0.0003)  # room noise far below the gate; not digital silence
    audio = tone(400) + hush + tone(400) + hush + hush[:9600]
    chunks = [audio[:892]] + [audio[start : start + 960] for start in range(892, len(audio), 960)]
    tracker = SpeechEndTracker()
    with_tracker = [Intake("realtime", 20, 20.0), Intake("realtime", 20, 20.0)]  # opened with it
    later: list[Intake] = []  # opened on a chunk's edge: another frame grid than the tracker's
    for index, chunk in enumerate(chunks):
        if index in (10, 30):
            later.append(Intake("realtime", 20, 20.0))
        computed[0] = 0
        shared = tracker.feed(chunk, index * 0.02)
        for intake in with_tracker + later:
            intake.push(chunk, shared)
        assert computed[0] == (1 if not later else 2), index  # once per grid, however many lanes
    assert {intake.feed.run_end for intake in with_tracker} == {1200 * 24}  # the second tone's end
    for intake, opened in zip(later, (10, 30), strict=True):
        alone = AudioFeed()
        for chunk in chunks[opened:]:
            alone.push(chunk)
        assert feed_state(intake.feed) == feed_state(alone)


def unreachable_session(settings: Settings, spec: LaneSpec) -> RealtimeSession:
    """A real engine session whose provider cannot be reached: its input is kept, and gated, meanwhile."""
    return RealtimeSession(endpoint_for(settings, "realtime"), spec, EngineOptions.from_settings(settings))


async def test_the_meetings_lanes_gate_their_input_as_their_own_computation_would() -> None:
    room = FakeRoom()
    settings = Settings(
        engine="realtime",
        metrics_port=0,
        openai_api_key=SecretStr("sk-test"),
        openai_base_url="http://127.0.0.1:9/v1",  # nothing listens: the sessions keep retrying
    )
    meeting = Meeting(
        settings,
        room,
        "shared-power",
        engine_factory=unreachable_session,
        playout_clock=FakeClock(),
        lane_change_interval=0.0,
    )
    runner = asyncio.create_task(meeting.run())
    own: dict[LaneKey, AudioFeed] = {}

    def say(chunks: list[bytes]) -> None:
        for chunk in chunks:
            meeting._speaker_audio("a", chunk)
            for key, feed in own.items():
                feed.push(chunk)
                engine = meeting.lanes[key].engine
                assert isinstance(engine, RealtimeSession)
                assert feed_state(engine._feed) == feed_state(feed)

    try:
        chunks = chunks_of(speech_like(4.0, seed=8).astype("<i2").tobytes())
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await wait_for(lambda: LaneKey("a", "es") in meeting.lanes)
        own[LaneKey("a", "es")] = AudioFeed()
        say(chunks[:30])
        await room.queue.put(PeerChanged(member("c", "Chloé", "fr")))  # a lane opened mid-stream
        await wait_for(lambda: LaneKey("a", "fr") in meeting.lanes)
        own[LaneKey("a", "fr")] = AudioFeed()
        say(chunks[30:])
        assert all(feed.run_start is not None for feed in own.values())
    finally:
        meeting.stop()
        await runner
        await meeting.aclose()
