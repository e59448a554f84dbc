"""A speaker's 20 ms frame powers are computed once, by its speech-end tracker, and every lane's input
gate reads them instead of computing them again. Whatever the chunks (whole frames, odd bytes, half
frames) and whenever a lane opens, each gate must say exactly what it says computing its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from tests.unit.test_meeting import FakeRoom, member, wait_for
from tests.unit.test_speech import silence, tone
from translator_bot.audio import vad
from translator_bot.audio.clock import FakeClock
from translator_bot.audio.vad import (
    ChunkPower,
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


def test_given_frame_powers_give_the_same_events_and_positions_as_computing_them() -> None:
    samples = speech_like(20.0, seed=3)
    own = VoiceActivityDetector(GATE, sound_floor_dbfs=SILENCE_FLOOR_DBFS)
    given = VoiceActivityDetector(GATE, sound_floor_dbfs=SILENCE_FLOOR_DBFS)
    events = 0
    for start in range(0, len(samples), FRAME):
        chunk = samples[start : start + FRAME]
        expected = own.feed(chunk)
        assert given.feed(chunk, ChunkPower.of(chunk, FRAME)) == expected
        assert state(given) == state(own)
        events += len(expected)
    assert events > 20  # the audio really starts and stops speech, many times


def test_a_power_at_the_threshold_is_judged_as_the_array_comparison_judged_it() -> None:
    # The thresholds are Python floats; numpy compared float32 powers with them in float32.
    unrounded = 32768.0**2 * 10.0 ** (GATE.threshold_dbfs / 10.0)
    at = np.float32(unrounded)
    for power in (np.nextafter(at, np.float32(0)), at, np.nextafter(at, np.float32(1e12))):
        expected = bool((np.array([power], dtype=np.float32) >= unrounded)[0])
        detector = VoiceActivityDetector(GATE)
        events = detector.feed(np.zeros(FRAME, dtype=np.int16), ChunkPower(FRAME, [float(power)]))
        assert (events == [VoiceStarted(0, 0)]) == expected, power
    assert float(at) != unrounded  # the case that matters: the threshold is not a float32


def test_powers_of_another_grid_are_not_used() -> None:
    loud = ChunkPower(FRAME, [1e9])  # would be speech if it were used
    carried = VoiceActivityDetector(GATE)
    carried.feed(np.zeros(100, dtype=np.int16))  # 100 samples carried over: frames no longer line up
    assert carried.feed(np.zeros(FRAME, dtype=np.int16), loud) == [] and not carried.in_speech
    other_size = VoiceActivityDetector(VoiceActivityConfig(frame_ms=10, min_speech_ms=10))
    assert other_size.feed(np.zeros(FRAME, dtype=np.int16), loud) == [] and not other_size.in_speech
    assert ChunkPower.of(np.zeros(FRAME + 1, dtype=np.int16), FRAME) is None
    assert ChunkPower.of(np.zeros(0, dtype=np.int16), FRAME) is None


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
    shared_chunks = 0
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
        power = tracker.feed(chunk, now)
        reference.feed(chunk, now)
        shared_chunks += power is not None
        assert (tracker.last_speech_end, tracker.speaking) == (reference.last_speech_end, reference.speaking)
        for shared, own, starts in lanes:
            shared.push(chunk, power)
            own.push(chunk)
            assert feed_state(shared) == feed_state(own), i
            assert starts[0] == starts[1]
    # Each lane heard speech start again and again (the one opened on half a sample hears other samples).
    assert [s[0] for _, _, s in lanes] == [8, 8, 2, 8, 8]
    assert shared_chunks > 0.9 * len(chunks)  # the powers were shared, not computed again each time


def test_the_power_is_computed_once_per_chunk_for_the_tracker_and_every_lane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    computed = [0]
    frame_power = vad._frame_power

    def counted(samples: Any, frame_samples: int) -> Any:
        computed[0] += 1
        return frame_power(samples, frame_samples)

    monkeypatch.setattr(vad, "_frame_power", counted)
    tracker = SpeechEndTracker()
    intakes = [Intake("realtime", 20, 20.0), Intake("realtime", 20, 20.0)]
    audio = tone(400) + silence(400)
    for start in range(0, len(audio), 960):
        chunk = audio[start : start + 960]
        power = tracker.feed(chunk, start / 48_000)
        for intake in intakes:
            intake.push(chunk, power)
    assert computed[0] == len(audio) // 960
    assert all(intake.feed.run_end == 400 * 24 for intake in intakes)


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
