"""The translate engine against the fake endpoint, into a playout track paced by the real clock: the
translations of sentences spoken one after another, with no heartbeat between them.

The endpoint has no end-of-item event. The engine ends a translation when the next one's transcript
begins (or on a heartbeat, or after a quiet spell), so a translation's audio can run out before the
engine knows it is over. The listener then hears the speaker's pause, which is not a gap inside the
translation: a meeting bench counted those pauses as underruns (12 frames in a two-party run).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pydantic import SecretStr

from translator_bot.audio.clock import MonotonicClock
from translator_bot.audio.playout import PlayoutKey, PlayoutTrack
from translator_bot.engine.base import LaneSpec, TranslatedAudio, TranslationDone
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.translate import TranslateSession
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.languages import parse_language
from translator_bot.settings import Settings
from translator_bot.tasks import TaskSet

SPEECH = ["u1-en", "u2-en", "u3-en"]
PAUSE_MS = 400  # ends a sentence for the endpoint (300 ms), far shorter than the engine's idle end


def speech() -> bytes:
    parts = [np.zeros(24 * 300, np.int16)]
    for uid in SPEECH:
        parts += [read_pcm(utterance(uid)), np.zeros(24 * PAUSE_MS, np.int16)]
    parts.append(np.zeros(24 * 3000, np.int16))  # quiet after the last sentence
    return np.concatenate(parts).astype("<i2").tobytes()


@pytest.mark.realtime_clock
async def test_back_to_back_translations_play_without_an_underrun() -> None:
    server = FakeRealtimeServer()
    await server.start()
    settings = Settings(
        openai_api_key=SecretStr("sk-test-fake-0123456789"),
        openai_base_url=server.base_url,
        engine="translate",
    )
    spec = LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es"))
    options = EngineOptions.from_settings(settings)
    session = TranslateSession(endpoint_for(settings, "translate"), spec, options)
    clock = MonotonicClock()
    track = PlayoutTrack(cushion_ms=60, hold_ms=80, max_lag_ms=8000, clock=clock)
    received: dict[str, int] = {}
    # Items whose audio had all been played when the engine ended them: it ran out before its end
    # was known (the case under test; if it never happens, this test shows nothing).
    out_before_end: list[str] = []
    done: list[str] = []
    drained = asyncio.Event()

    async def play() -> None:
        while True:
            await track.recv()
            if len(done) == len(SPEECH) and track.queued_ms() == 0:
                drained.set()

    async def pump() -> None:
        async for event in session.events():
            if isinstance(event, TranslatedAudio):
                received[event.item_id] = received.get(event.item_id, 0) + len(event.pcm) // 2
                track.enqueue(event.pcm, PlayoutKey(spec.lane_id, event.item_id))
            elif isinstance(event, TranslationDone) and event.item_id in received:
                key = PlayoutKey(spec.lane_id, event.item_id)
                # (All but the upsampler's 1.3 ms look-ahead, which plays once the item ends.)
                if received[event.item_id] - track.played_samples(key) <= 2 * 24:
                    out_before_end.append(event.item_id)
                track.end_item(key)
                done.append(event.item_id)
                if len(done) == len(SPEECH):
                    return

    async def speak() -> None:
        audio = speech()
        start = clock.now()
        for index, offset in enumerate(range(0, len(audio), 960)):  # 20 ms chunks at real time
            session.send_audio(audio[offset : offset + 960])
            await clock.sleep_until(start + (index + 1) * 0.02)

    await session.start()
    tasks = TaskSet("test")
    tasks.spawn(play(), name="play")
    tasks.spawn(speak(), name="speak")
    try:
        await asyncio.wait_for(pump(), 60)
        await asyncio.wait_for(drained.wait(), 10)
    finally:
        await tasks.close()
        await session.aclose()
        await server.stop()
    assert server.state.internal_errors == [] and server.state.all_violations() == []
    assert len(done) == len(SPEECH)
    print(f"\nitems out of audio before their end was known: {out_before_end} of {done}")
    assert out_before_end, "no translation ran out before its end: the case was not exercised"
    assert track.underruns == 0
    for item in done:
        key = PlayoutKey(spec.lane_id, item)
        assert track.gaps(key) == 0
        assert track.played_samples(key) == received[item]  # each translation was heard whole
