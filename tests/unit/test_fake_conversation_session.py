"""`/v1/realtime` of the fake server, driven by a client that validates every event both ways."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from translator_bot.fake.probe import ProbeClient, types
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import read_pcm, utterance

SPANISH = "You are an interpreter. Translate everything you hear into Spanish."
FAST = FakeOptions(realtime_speed=50.0, transcript_delay_ms=0, heartbeat_ms=0)


def speech(utterance_id: str, lead_ms: int = 300, tail_ms: int = 800) -> np.ndarray:
    lead, tail = np.zeros(24 * lead_ms, np.int16), np.zeros(24 * tail_ms, np.int16)
    return np.concatenate([lead, read_pcm(utterance(utterance_id)), tail])


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    fake = FakeRealtimeServer(options=FAST)
    await fake.start()
    yield fake
    await fake.stop()
    assert fake.state.internal_errors == []


async def connect(server: FakeRealtimeServer, **kwargs) -> ProbeClient:
    client = await ProbeClient.connect(server.websocket_base_url + "/realtime?model=gpt-realtime", **kwargs)
    created = await client.until("conversation.created")
    assert types(created) == ["session.created", "conversation.created"]
    return client


async def configure(client: ProbeClient, **session: object) -> dict[str, Any]:
    await client.send({"type": "session.update", "session": {"type": "realtime", **session}})
    updated = (await client.until("session.updated"))[-1]
    result: dict[str, Any] = updated.session.model_dump(exclude_none=True)
    return result


def audio_of(events) -> bytes:
    return b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")


GA_TURN = [
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "conversation.item.added",
    "conversation.item.done",
    "response.created",
    "rate_limits.updated",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
]
_STREAMED = {
    "response.output_audio.delta",
    "response.output_audio_transcript.delta",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
}


async def test_session_created_carries_the_full_effective_session(server):
    async with await connect(server) as client:
        session = client.received[0].session
        assert session.type == "realtime" and session.model == "gpt-realtime"
        assert session.model_extra["id"].startswith("sess_") and session.model_extra["expires_at"] > 0
        detection = session.audio.input.turn_detection
        assert (detection.type, detection.threshold, detection.silence_duration_ms) == (
            "server_vad",
            0.5,
            500,
        )


async def test_session_update_merges_partially_and_answers_with_the_whole_session(server):
    async with await connect(server) as client:
        first = await configure(client, instructions=SPANISH)
        assert first["audio"]["output"]["voice"] == "marin"
        second = await configure(
            client, audio={"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 650}}}
        )
        assert second["instructions"] == SPANISH
        detection = second["audio"]["input"]["turn_detection"]
        assert detection["silence_duration_ms"] == 650 and detection["prefix_padding_ms"] == 300
        third = await configure(client, audio={"input": {"turn_detection": None}})
        assert "turn_detection" not in third["audio"]["input"]
    assert server.state.sessions[0].target_language == "es"


async def test_a_vad_turn_gives_the_ga_event_sequence_and_the_translated_recording(server):
    async with await connect(server) as client:
        await configure(
            client, instructions=SPANISH, audio={"input": {"transcription": {"model": "gpt-4o-transcribe"}}}
        )
        await client.append(speech("u2-en"), chunk_ms=40)
        events = await client.until("response.done")
        assert [t for t in types(events) if t not in _STREAMED] == GA_TURN
        started, stopped = events[0], events[1]
        assert started.item_id == stopped.item_id
        assert 30 <= started.audio_start_ms <= 60 and 2900 < stopped.audio_end_ms < 3000
        assert audio_of(events) == read_pcm(utterance("u2-es")).tobytes()
        done = events[-1].response
        assert done.status == "completed"
        assert done.output[0].content[0].transcript == utterance("u2-es").text
        assert done.usage.input_tokens > 60 and done.usage.output_token_details.audio_tokens > 60
        deltas = [e for e in events if e.type == "response.output_audio.delta"]
        assert all(len(base64.b64decode(e.delta)) <= 100 * 48 for e in deltas)
        if not any(e.type.endswith("transcription.completed") for e in events):
            events += await client.until("conversation.item.input_audio_transcription.completed")
        completed = next(e for e in events if e.type.endswith("transcription.completed"))
        assert completed.transcript == utterance("u2-en").text
    record = server.state.sessions[0]
    assert record.recognised == ["u2-en"] and record.contract_violations == []
    assert record.input_tokens == [done.usage.input_tokens]


async def test_new_speech_interrupts_the_active_response_and_truncate_is_checked(server):
    server.faults.first_audio_delay_ms = 5000  # the response is still active when the next turn starts
    async with await connect(server) as client:
        await configure(client, instructions=SPANISH)
        await client.append(speech("u1-en"))
        first = await client.until("response.content_part.added")
        assistant_item = first[-1].item_id
        await client.append(speech("u3-en", tail_ms=0)[: 24 * 1000])
        cancelled = await client.until("response.done")
        assert types(cancelled)[0] == "input_audio_buffer.speech_started"
        response = cancelled[-1].response
        assert (response.status, response.status_details.reason) == ("cancelled", "turn_detected")
        assert "response.output_audio.done" in types(cancelled)

        await client.send(
            {
                "type": "conversation.item.truncate",
                "event_id": "evt_trunc",
                "item_id": assistant_item,
                "content_index": 0,
                "audio_end_ms": 500,
            }
        )
        error = (await client.until("error"))[-1].error
        assert error.event_id == "evt_trunc" and "already shorter than 500ms" in error.message
        await client.send(
            {
                "type": "conversation.item.truncate",
                "item_id": assistant_item,
                "content_index": 0,
                "audio_end_ms": 0,
            }
        )
        truncated = (await client.until("conversation.item.truncated"))[-1]
        assert truncated.audio_end_ms == 0
    truncates = server.state.sessions[0].truncates
    assert [(t.audio_end_ms, t.item_audio_ms, t.accepted) for t in truncates] == [
        (500, 0, False),
        (0, 0, True),
    ]
    assert server.state.sessions[0].responses_cancelled == 1


async def test_truncate_shortens_the_context_and_only_assistant_audio_can_be_truncated(server):
    async with await connect(server) as client:
        await configure(client, instructions=SPANISH)
        await client.append(speech("u3-en"))
        events = await client.until("response.done")
        item = events[-1].response.output[0]
        item_ms = len(audio_of(events)) // 48
        user_item = events[2].item_id
        for item_id, end_ms in ((user_item, 10), (item.id, item_ms + 1), ("item_missing", 10)):
            await client.send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": end_ms,
                }
            )
            assert (await client.until("error"))[-1].error.code == "invalid_value"
        await client.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item.id,
                "content_index": 0,
                "audio_end_ms": 400,
            }
        )
        await client.until("conversation.item.truncated")
        await client.send({"type": "conversation.item.retrieve", "item_id": item.id})
        retrieved = (await client.until("conversation.item.retrieved"))[-1].item
        assert retrieved.content[0].transcript is None
        assert len(base64.b64decode(retrieved.content[0].audio)) == 400 * 48
    record = server.state.sessions[0]
    assert [t.accepted for t in record.truncates] == [False, False, False, True]
    assert record.truncates[1].item_audio_ms == item_ms


async def test_manual_turns_response_create_conflict_and_cancel(server):
    async with await connect(server) as client:
        await configure(client, instructions=SPANISH, audio={"input": {"turn_detection": None}})
        await client.send({"type": "input_audio_buffer.commit", "event_id": "evt_c0"})
        error = (await client.until("error"))[-1].error
        assert (error.code, error.event_id) == ("input_audio_buffer_commit_empty", "evt_c0")
        await client.append(speech("u4-en"))
        await client.send({"type": "input_audio_buffer.commit"})
        committed = await client.until("conversation.item.done")
        assert types(committed) == [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
        ]
        # No automatic response without turn detection: the next event answers our retrieve.
        await client.send({"type": "conversation.item.retrieve", "item_id": committed[0].item_id})
        assert types([await client.recv()]) == ["conversation.item.retrieved"]

        server.faults.first_audio_delay_ms = 5000
        await client.send({"type": "response.create"})
        await client.until("response.created")
        await client.send({"type": "response.create", "event_id": "evt_dup"})
        error = (await client.until("error"))[-1].error
        assert (error.code, error.event_id) == ("conversation_already_has_active_response", "evt_dup")
        await client.send({"type": "response.cancel"})
        done = (await client.until("response.done"))[-1].response
        assert (done.status, done.status_details.reason) == ("cancelled", "client_cancelled")
        await client.send({"type": "response.cancel", "event_id": "evt_cx"})
        error = (await client.until("error"))[-1].error
        assert (error.code, error.event_id) == ("response_cancel_not_active", "evt_cx")
        await configure(client, audio={"input": {"transcription": {"model": "whisper-1"}}})
        await client.append(speech("u4-en"))
        await client.send({"type": "input_audio_buffer.commit"})
        await client.until("conversation.item.input_audio_transcription.completed")
    assert server.state.sessions[0].recognised == ["u4-en", "u4-en"]


async def test_create_response_false_commits_without_a_response(server):
    async with await connect(server) as client:
        await configure(
            client,
            instructions=SPANISH,
            audio={"input": {"turn_detection": {"type": "server_vad", "create_response": False}}},
        )
        await client.append(speech("u1-de"))
        events = await client.until("conversation.item.done")
        await client.send({"type": "conversation.item.retrieve", "item_id": events[-1].item.id})
        assert (await client.recv()).type == "conversation.item.retrieved"


async def test_item_create_delete_and_flat_usage_when_the_client_deletes(server):
    async with await connect(server) as client:
        await configure(client, instructions=SPANISH)
        usages = []
        for utterance_id in ("u1-en", "u2-en", "u3-en"):
            await client.append(speech(utterance_id))
            events = await client.until("response.done")
            usages.append(events[-1].response.usage.input_tokens)
            user_item = events[2].item_id
            reply_item = events[-1].response.output[0].id
            for item_id in (user_item, reply_item):
                await client.send({"type": "conversation.item.delete", "item_id": item_id})
                assert (await client.until("conversation.item.deleted"))[-1].item_id == item_id
        await client.send({"type": "conversation.item.delete", "item_id": "item_gone", "event_id": "evt_d"})
        assert (await client.until("error"))[-1].error.event_id == "evt_d"
        await client.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "hola"}],
                },
            }
        )
        assert types(await client.until("conversation.item.done"))[-2:] == [
            "conversation.item.added",
            "conversation.item.done",
        ]
    # Each response sees only instructions and its own turn: usage is flat, not growing.
    assert max(usages) - min(usages) < 20
    assert server.state.sessions[0].input_tokens == usages


async def test_usage_grows_with_the_conversation_and_retention_caps_it():
    fake = FakeRealtimeServer(
        options=FakeOptions(realtime_speed=50.0, retention_tokens=250, transcript_delay_ms=0)
    )
    await fake.start()
    try:
        async with await connect(fake) as client:
            await configure(client, instructions=SPANISH)
            for utterance_id in ("u1-en", "u2-en", "u3-en", "u4-en"):
                await client.append(speech(utterance_id))
                await client.until("response.done")
        tokens = fake.state.sessions[0].input_tokens
        assert tokens[1] > tokens[0] and max(tokens) <= 250
        assert fake.state.sessions[0].items_dropped_by_retention > 0
    finally:
        await fake.stop()


async def test_invalid_client_events_get_errors_with_event_id_and_are_recorded(server):
    async with await connect(server, validate_sent=False) as client:
        await client.send({"type": "session.update", "event_id": "evt_bad", "session": {"instructions": "x"}})
        error = (await client.until("error"))[-1].error
        assert (error.code, error.param, error.event_id) == (
            "missing_required_parameter",
            "session.type",
            "evt_bad",
        )
        await client.send({"type": "response.audio.delta", "event_id": "evt_beta"})
        error = (await client.until("error"))[-1].error
        assert (error.code, error.event_id) == ("invalid_value", "evt_beta")
        await client.send_raw("{not json")
        assert (await client.until("error"))[-1].error.code == "invalid_json"
        await client.send({"type": "input_audio_buffer.append", "audio": "***"})
        assert (await client.until("error"))[-1].error.param == "audio"
    violations = server.state.sessions[0].contract_violations
    assert [v.event_type for v in violations] == ["session.update", "response.audio.delta", None]


async def test_missing_target_language_and_unrecognised_speech(server):
    async with await connect(server) as client:
        await client.append(speech("u1-en"))
        events = await client.until("error")
        assert events[-1].error.code == "no_target_language"
        await configure(
            client, instructions=SPANISH, audio={"input": {"transcription": {"model": "whisper-1"}}}
        )
        # 48 kHz samples sent as if they were 24 kHz: half speed, must not be understood.
        slow = np.repeat(read_pcm(utterance("u3-en")), 2)
        await client.append(np.concatenate([slow, np.zeros(24_000, np.int16)]))
        events = await client.until("response.done")
        assert events[-1].response.output == [] and audio_of(events) == b""
        while not any(e.type.endswith("transcription.completed") for e in events):
            events.append(await client.recv())
        assert events[-1].transcript == "[unrecognised speech]"
    assert server.state.sessions[0].unrecognised == 1 and server.state.sessions[0].recognised == ["u1-en"]


async def test_same_language_speech_is_repeated_and_counted(server):
    async with await connect(server) as client:
        await configure(client, instructions=SPANISH)
        await client.append(speech("u3-es"))
        events = await client.until("response.done")
        assert audio_of(events) == read_pcm(utterance("u3-es")).tobytes()
    assert server.state.sessions[0].same_language == 1


async def test_text_only_responses(server):
    async with await connect(server) as client:
        await configure(client, instructions=SPANISH, output_modalities=["text"])
        await client.append(speech("u2-de"))
        events = await client.until("response.done")
        assert "response.output_text.done" in types(events) and audio_of(events) == b""
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == utterance("u2-es").text


async def test_concurrent_sessions_are_independent(server):
    async def one(utterance_id: str, instructions: str) -> bytes:
        async with await connect(server) as client:
            await configure(client, instructions=instructions)
            await client.append(speech(utterance_id))
            return audio_of(await client.until("response.done"))

    german = "Translate into German."
    results = await asyncio.gather(one("u1-en", SPANISH), one("u4-es", german))
    assert results[0] == read_pcm(utterance("u1-es")).tobytes()
    assert results[1] == read_pcm(utterance("u4-de")).tobytes()
