"""Contract: the official `openai` SDK client completes sessions against the fake server.

Every event the SDK sends is checked by the fake (strict unions, recorded as contract violations),
and every event the fake sends is re-validated here with the strict unions before use.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import openai
import pytest
from openai.lib.realtime_translation import AsyncTranslationSession

from translator_bot.engine.protocol import parse_server_event, parse_translation_server_event
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import read_pcm, utterance


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    fake = FakeRealtimeServer(
        options=FakeOptions(realtime_speed=50.0, translation_speed=50.0, heartbeat_ms=0)
    )
    await fake.start()
    yield fake
    await fake.stop()
    assert fake.state.internal_errors == []
    assert fake.state.all_violations() == []


def sdk_client(server: FakeRealtimeServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.websocket_base_url)


def chunks(pcm: np.ndarray, ms: int = 100) -> list[str]:
    step = 24 * ms
    return [base64.b64encode(pcm[i : i + step].tobytes()).decode("ascii") for i in range(0, len(pcm), step)]


async def test_sdk_realtime_client_completes_a_translated_turn(server):
    client = sdk_client(server)
    pcm = np.concatenate([np.zeros(2400, np.int16), read_pcm(utterance("u4-en")), np.zeros(24_000, np.int16)])
    seen: list[str] = []
    audio = bytearray()
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.session.update(
            session={
                "type": "realtime",
                "instructions": "You are an interpreter. Translate what you hear into German.",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "gpt-4o-transcribe"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
                },
            }
        )
        for chunk in chunks(pcm):
            await connection.input_audio_buffer.append(audio=chunk)
        transcript_done = False
        while True:
            event: Any = parse_server_event(await connection.recv_bytes())
            seen.append(event.type)
            if event.type == "response.output_audio.delta":
                audio += base64.b64decode(event.delta)
            transcript_done |= event.type == "conversation.item.input_audio_transcription.completed"
            if "response.done" in seen and transcript_done:
                break
        # The SDK's own typed cancel path: nothing active, a harmless error.
        await connection.response.cancel()
        error: Any = parse_server_event(await connection.recv_bytes())
        assert error.error.code == "response_cancel_not_active"
    assert seen[:3] == ["session.created", "conversation.created", "session.updated"]
    assert "response.output_audio_transcript.done" in seen
    assert bytes(audio) == read_pcm(utterance("u4-de")).tobytes()
    assert server.state.sessions[0].recognised == ["u4-en"]


async def test_sdk_translation_session_helper_completes_a_session(server):
    client = sdk_client(server)
    pcm = np.concatenate([read_pcm(utterance("u2-de")), np.zeros(12_000, np.int16)])
    events: list[Any] = []
    async with AsyncTranslationSession(
        client.realtime.translations, model="gpt-realtime-translate"
    ) as session:
        await session.send(
            {
                "type": "session.update",
                "session": {
                    "audio": {
                        "input": {"transcription": {"model": "gpt-4o-transcribe"}},
                        "output": {"language": "en"},
                    }
                },
            }
        )
        for chunk in chunks(pcm, ms=200):
            await session.send({"type": "session.input_audio_buffer.append", "audio": chunk})
        await session.send({"type": "session.close"})
        while True:
            event = await session.recv()
            # The helper parses leniently; the strict unions must accept the same JSON.
            events.append(parse_translation_server_event(event.to_json()))
            if event.type == "session.closed":
                break
    kinds = [e.type for e in events]
    assert kinds[:2] == ["session.created", "session.updated"] and kinds[-1] == "session.closed"
    translated = b"".join(base64.b64decode(e.delta) for e in events if e.type == "session.output_audio.delta")
    assert translated == read_pcm(utterance("u2-en")).tobytes()
    assert (
        "".join(e.delta for e in events if e.type == "session.output_transcript.delta")
        == utterance("u2-en").text
    )
    assert server.state.sessions[0].recognised == ["u2-de"]
