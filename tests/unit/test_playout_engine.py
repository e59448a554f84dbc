"""The realtime engine against the fake server streaming at real time with jitter, into playout tracks
paced by the real clock: what a listener hears when the model has a slow day.

The same engine events feed two tracks at once, the fixed 60 ms cushion (the behaviour before the
jitter estimator) and the adaptive one, so both meet exactly the same arrivals.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest
from pydantic import SecretStr

from translator_bot.audio.clock import MonotonicClock
from translator_bot.audio.playout import PlayoutKey, PlayoutTrack
from translator_bot.engine.base import LaneSpec, TranslatedAudio, TranslationDone
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import RealtimeSession
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.languages import parse_language
from translator_bot.settings import Settings

SPEECH = ["u1-en", "u2-en", "u3-en", "u4-en"]
FEED_SPEED = 4.0  # the speaker's audio is sent 4x faster than real time; the model answers at 1x


def speech_with_pauses(pause_ms: int) -> bytes:
    parts = [np.zeros(24 * 300, np.int16)]
    for uid in SPEECH:
        parts += [read_pcm(utterance(uid)), np.zeros(24 * pause_ms, np.int16)]
    return np.concatenate(parts).astype("<i2").tobytes()


@pytest.mark.realtime_clock
async def test_real_time_model_with_jitter_no_gap_after_the_first_translation() -> None:
    server = FakeRealtimeServer(options=FakeOptions(heartbeat_ms=0))
    await server.start()
    await server.control({"action": "stream_pace", "real_time_factor": 1.0, "jitter_ms": 150, "seed": 5})
    settings = Settings(
        openai_api_key=SecretStr("sk-test-fake-0123456789"),
        openai_base_url=server.base_url,
        engine="realtime",
    )
    spec = LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es"))
    session = RealtimeSession(endpoint_for(settings, "realtime"), spec, EngineOptions.from_settings(settings))
    clock = MonotonicClock()
    fixed = PlayoutTrack(cushion_ms=60, hold_ms=0, max_lag_ms=8000, adaptive=False, clock=clock)
    adaptive = PlayoutTrack(cushion_ms=60, hold_ms=0, max_lag_ms=8000, adaptive=True, clock=clock)
    tracks = (fixed, adaptive)
    received: dict[str, int] = {}
    offsets: dict[str, list[float]] = {}  # per item: arrival - media position of each delta
    holds: dict[str, float] = {}  # per item: the adaptive hold when its first delta came
    done: list[str] = []
    drained = {track: asyncio.Event() for track in tracks}

    async def play(track: PlayoutTrack) -> None:
        while True:
            await track.recv()
            if len(done) == len(SPEECH) and track.queued_ms() == 0:
                drained[track].set()

    async def pump() -> None:
        async for event in session.events():
            if isinstance(event, TranslatedAudio):
                before = received.get(event.item_id, 0)
                offsets.setdefault(event.item_id, []).append(clock.now() - before / 24_000)
                holds.setdefault(event.item_id, adaptive.start_hold_ms())
                received[event.item_id] = before + len(event.pcm) // 2
                for track in tracks:
                    track.enqueue(event.pcm, PlayoutKey(spec.lane_id, event.item_id))
            elif isinstance(event, TranslationDone) and event.item_id in received:
                for track in tracks:
                    track.end_item(PlayoutKey(spec.lane_id, event.item_id))
                done.append(event.item_id)
                if len(done) == len(SPEECH):
                    return

    async def speak() -> None:
        # Each pause outlasts the previous translation streaming at real time (up to 3.5 s), so
        # every sentence gets its own response.
        audio = speech_with_pauses(15_000)
        for start in range(0, len(audio), 960):
            session.send_audio(audio[start : start + 960])
            await asyncio.sleep(0.02 / FEED_SPEED)

    await session.start()
    tasks = [asyncio.create_task(coro) for coro in (play(fixed), play(adaptive), speak())]
    try:
        await asyncio.wait_for(pump(), 60)
        async with asyncio.timeout(10):
            for event in drained.values():
                await event.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await session.aclose()
        await server.stop()
    assert server.state.internal_errors == [] and server.state.all_violations() == []
    assert len(done) == len(SPEECH)
    fixed_gaps = [fixed.gaps(PlayoutKey(spec.lane_id, item)) for item in done]
    adaptive_gaps = [adaptive.gaps(PlayoutKey(spec.lane_id, item)) for item in done]
    print(f"\ngaps per translation: fixed cushion {fixed_gaps}, adaptive {adaptive_gaps}")
    for item in done:
        needed = (max(offsets[item]) - offsets[item][0]) * 1000
        print(f"  hold {holds[item]:.0f} ms, needed {needed:.0f} ms (first delta -> latest against schedule)")
    # The fault as reported: the fixed cushion underruns repeatedly inside the translations.
    assert sum(fixed_gaps) >= len(SPEECH) and sum(fixed_gaps[1:]) >= 1, fixed_gaps
    # The target: no inserted gap inside any translation after the first one of the lane.
    assert adaptive_gaps[1:] == [0] * (len(SPEECH) - 1), adaptive_gaps
    for item in done:  # everything received was played, and accounted for
        assert adaptive.played_samples(PlayoutKey(spec.lane_id, item)) == received[item]
        assert fixed.played_samples(PlayoutKey(spec.lane_id, item)) == received[item]
