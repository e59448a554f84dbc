"""The responses of a fake `/v1/realtime` conversation, run without a socket: every event the runner
sends is still validated against the SDK's server event models by the real `EventSink`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from translator_bot.engine.protocol import parse_server_event
from translator_bot.fake import session_config as cfg
from translator_bot.fake.base_session import SessionContext
from translator_bot.fake.catalog import load_catalog
from translator_bot.fake.conversation import Conversation, Item
from translator_bot.fake.events import EventSink
from translator_bot.fake.recognition import Recognitions, send_input_transcript
from translator_bot.fake.response_runner import ResponseRunner
from translator_bot.fake.state import FakeOptions, FakeState, FaultConfig, SessionRecord
from translator_bot.tasks import TaskSet

SPANISH = "You are an interpreter. Translate everything you hear into Spanish."


class RecordingSink(EventSink):
    """The real sink's checks, with the socket replaced by a list."""

    def __init__(self, record: SessionRecord, state: FakeState) -> None:
        super().__init__(web.WebSocketResponse(), parse_server_event, record, state)
        self.sent: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()

    async def send_raw(self, raw: str) -> bool:
        self.sent.append(json.loads(raw))
        self._arrived.set()
        return True

    async def wait_for(self, kind: str) -> None:
        while kind not in self.types():
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), 10)

    def types(self) -> list[str]:
        return [event["type"] for event in self.sent]


@dataclass
class Rig:
    sink: RecordingSink
    record: SessionRecord
    conv: Conversation
    recognitions: Recognitions
    runner: ResponseRunner
    session: dict[str, Any]
    tasks: TaskSet
    ctx: SessionContext

    async def heard(self, utterance_id: str) -> Item:
        """A committed user audio item holding the recording of `utterance_id`."""
        pcm = self.ctx.catalog.pcm(utterance_id)
        item = Item(id=f"item_{utterance_id}", role="user", modality="audio", audio=bytearray(pcm.tobytes()))
        self.conv.add(item)
        self.recognitions.submit(item.id, pcm)
        return item


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    state = FakeState()
    record = SessionRecord(id="sess_test", endpoint="realtime", model="gpt-realtime", path="/v1/realtime")
    ctx = SessionContext(
        state,
        FaultConfig(),
        FakeOptions(realtime_speed=50.0, transcript_delay_ms=0),
        await asyncio.to_thread(load_catalog),
    )
    sink = RecordingSink(record, state)
    conv = Conversation()
    tasks = TaskSet("test session")
    session = cfg.merge_session(
        cfg.default_realtime_session(record.id, record.model), {"instructions": SPANISH}
    )
    recognitions = Recognitions(ctx, record)

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return tasks.spawn(coro, name=name)

    runner = ResponseRunner(
        sink=sink,
        ctx=ctx,
        record=record,
        conv=conv,
        conversation_id="conv_test",
        recognitions=recognitions,
        session=lambda: session,
        spawn=spawn,
    )
    spawn(recognitions.run(), "recogniser")
    try:
        yield Rig(sink, record, conv, recognitions, runner, session, tasks, ctx)
    finally:
        await tasks.close()
    assert state.internal_errors == []


async def test_a_response_streams_the_translation_and_ends_with_usage(rig: Rig) -> None:
    await rig.heard("u1-en")
    await rig.runner.start(None, source_item_id="item_u1-en")
    assert rig.runner.active is not None
    await rig.sink.wait_for("response.done")
    kinds = rig.sink.types()
    assert kinds[:5] == [
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    assert kinds.count("response.output_audio.delta") > 1
    assert kinds[-6:] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    done = rig.sink.sent[-1]["response"]
    assert done["status"] == "completed" and done["usage"]["output_tokens"] > 0
    assert rig.runner.active is None and rig.runner.audio_sent
    assistant = rig.conv.items[-1]
    assert assistant.role == "assistant" and assistant.audio_ms > 0
    assert rig.record.recognised == ["u1-en"]


async def test_cancelling_mid_stream_closes_the_item_as_incomplete(rig: Rig) -> None:
    rig.ctx.faults.first_audio_delay_ms = 5_000  # the response waits before its first delta
    await rig.heard("u1-en")
    await rig.runner.start(None, source_item_id="item_u1-en")
    await rig.sink.wait_for("response.content_part.added")
    await rig.runner.cancel_active("turn_detected")
    assert rig.runner.active is None and rig.record.responses_cancelled == 1
    done = rig.sink.sent[-1]
    assert done["type"] == "response.done"
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    item_done = next(e for e in rig.sink.sent if e["type"] == "response.output_item.done")
    assert item_done["item"]["status"] == "incomplete"


async def test_instructions_without_a_target_language_start_no_response(rig: Rig) -> None:
    await rig.runner.start({"instructions": "Say something nice."}, source_item_id=None, event_id="evt_1")
    assert rig.runner.active is None
    assert rig.sink.types() == ["error"]
    assert rig.sink.sent[0]["error"]["code"] == "no_target_language"


async def test_input_transcript_follows_recognition_in_commit_order(rig: Rig) -> None:
    first, second = await rig.heard("u1-en"), await rig.heard("u1-es")
    for item in (first, second):
        future = rig.recognitions.get(item.id)
        assert future is not None
        await asyncio.wait_for(send_input_transcript(rig.sink, rig.ctx, item, future), 10)
    completed = [e for e in rig.sink.sent if e["type"].endswith("input_audio_transcription.completed")]
    assert [e["item_id"] for e in completed] == [first.id, second.id]
    assert rig.record.recognised == ["u1-en", "u1-es"]
    assert first.text == rig.ctx.catalog.utterance("u1-en").text
    assert completed[0]["usage"]["input_tokens"] > 0
