"""The responses of a `/v1/realtime` conversation: at most one at a time, each streamed as the real
service streams it (item, content part, audio and transcript deltas, the closing events, usage) and
cancellable half way, by the client or by new speech.

The reply is the fixture recording of the recognised utterance in the target language, streamed faster
than real time by default or at the pace and jitter of the `stream_pace` fault.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from translator_bot.audio.formats import MODEL_BYTES_PER_MS
from translator_bot.fake import session_config as cfg
from translator_bot.fake.base_session import SessionContext
from translator_bot.fake.conversation import Conversation, Item
from translator_bot.fake.events import EventSink, new_id, spread, transcript_pieces
from translator_bot.fake.pacing import DeltaSchedule
from translator_bot.fake.recognition import Recognitions
from translator_bot.fake.responses import ActiveResponse, apply_truncation, rate_limits_event, response_wire
from translator_bot.fake.state import SessionRecord
from translator_bot.fixtures import RecordedUtterance

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class ResponseRunner:
    """Starts, streams, finishes and cancels the responses of one conversation session."""

    def __init__(
        self,
        *,
        sink: EventSink,
        ctx: SessionContext,
        record: SessionRecord,
        conv: Conversation,
        conversation_id: str,
        recognitions: Recognitions,
        session: Callable[[], dict[str, Any]],
        spawn: Spawn,
    ) -> None:
        self._sink = sink
        self._ctx = ctx
        self._record = record
        self._conv = conv
        self._conversation_id = conversation_id
        self._recognitions = recognitions
        self._session = session  # the session's current configuration (a session.update replaces it)
        self._spawn = spawn
        self.active: ActiveResponse | None = None
        self.audio_sent = False  # assistant audio exists: the voice can no longer change

    def stop(self) -> None:
        """The session is closing: the response in progress ends without its closing events."""
        if self.active is not None and self.active.task is not None:
            self.active.task.cancel()

    async def start(
        self, params: dict[str, Any] | None, *, source_item_id: str | None, event_id: str | None = None
    ) -> None:
        params = params or {}
        session = self._session()
        instructions = params.get("instructions") or session.get("instructions")
        target = cfg.target_from_instructions(instructions)
        if target is None:
            await self._sink.error(
                "invalid_request_error",
                "no_target_language",
                "The instructions name no target language (expected the phrase 'into <Language>').",
                event_id=event_id,
            )
            return
        conversation = params.get("conversation", "auto") != "none"
        if conversation:
            dropped = apply_truncation(self._conv, session, self._ctx.options.retention_tokens, instructions)
            self._record.items_dropped_by_retention += len(dropped)
        usage = self._conv.input_tokens(instructions)
        active = ActiveResponse(
            id=new_id("resp"),
            source_item_id=source_item_id,
            conversation=conversation,
            modalities=list(params.get("output_modalities") or session.get("output_modalities") or ["audio"]),
            metadata=params.get("metadata"),
            input_tokens=usage.total,
            input_text_tokens=usage.text,
            input_audio_tokens=usage.audio,
        )
        self.active = active
        active.task = self._spawn(self._run(active, target), f"response:{active.id}")

    async def cancel_active(self, reason: str) -> None:
        active = self.active
        if active is None:
            return
        self.active = None
        if active.finishing and active.task is not None:
            await asyncio.shield(active.task)
            return
        if active.task is not None:
            active.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await active.task
        self._record.responses_cancelled += 1
        await self._close_item(active, "cancelled")
        await self._finish(active, "cancelled", {"type": "cancelled", "reason": reason})

    def _wire(self, active: ActiveResponse, status: str, details: dict[str, Any] | None) -> dict[str, Any]:
        return response_wire(active, self._session(), self._conversation_id, status, details)

    async def _run(self, active: ActiveResponse, target: str) -> None:
        await self._sink.send(
            {"type": "response.created", "response": self._wire(active, "in_progress", None)}
        )
        await self._sink.send(rate_limits_event(active.input_tokens))
        if self._ctx.faults.quota_exceeded:
            details = {
                "type": "failed",
                "error": {
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                    "message": "quota exceeded",
                },
            }
            await self._finish(active, "failed", details)
            return
        reply = await self._reply_for(active.source_item_id, target)
        if reply is not None:
            await self._stream_reply(active, reply)
        active.finishing = True
        await self._close_item(active, "completed")
        await self._finish(active, "completed", None)

    async def _reply_for(self, source_item_id: str | None, target: str) -> RecordedUtterance | None:
        future = self._recognitions.get(source_item_id) if source_item_id else None
        if future is None:
            return None
        result = await future
        if result.utterance_id is None:
            return None
        reply = self._ctx.catalog.reply(result.utterance_id, target)
        if reply is not None and reply.id == result.utterance_id:
            self._record.same_language += 1
        return reply

    async def _stream_reply(self, active: ActiveResponse, reply: RecordedUtterance) -> None:
        audio_mode = "audio" in active.modalities
        item = Item(
            id=new_id("item"),
            role="assistant",
            modality="audio" if audio_mode else "text",
            status="in_progress",
            text="",
        )
        active.item = item
        await self._announce_item(active, item, audio_mode)
        faults = self._ctx.faults
        if faults.first_audio_delay_ms > 0:
            await asyncio.sleep(faults.first_audio_delay_ms / 1000)
        pcm = self._ctx.catalog.pcm(reply.id).tobytes()
        chunk = self._ctx.options.realtime_chunk_ms * MODEL_BYTES_PER_MS
        chunks = [pcm[i : i + chunk] for i in range(0, len(pcm), chunk)] if audio_mode else [b""]
        texts = spread(transcript_pieces(reply.text + faults.transcript_suffix), len(chunks))
        loop = asyncio.get_running_loop()
        pace = faults.stream_pace
        schedule = None if pace is None else DeltaSchedule(pace, faults.pace_rng, loop.time())
        for index, audio in enumerate(chunks):
            if schedule is not None:
                send_at = schedule.next_send_at(len(audio) / MODEL_BYTES_PER_MS / 1000)
                await asyncio.sleep(max(0.0, send_at - loop.time()))
            text = texts[index]
            if text:
                active.sent_text.append(text)
                item.text = None if item.truncated_ms is not None else active.transcript
                kind = (
                    "response.output_audio_transcript.delta" if audio_mode else "response.output_text.delta"
                )
                await self._sink.send({**_part_ids(active), "type": kind, "delta": text})
            if audio:
                if not item.audio:
                    self._record.first_audio_at.append(loop.time())
                item.audio.extend(audio)
                self.audio_sent = True
                await self._sink.send(
                    {**_part_ids(active), "type": "response.output_audio.delta", "delta": _b64(audio)}
                )
                if schedule is None:
                    speed = self._ctx.options.realtime_speed
                    await asyncio.sleep(len(audio) / MODEL_BYTES_PER_MS / 1000 / speed)

    async def _announce_item(self, active: ActiveResponse, item: Item, audio_mode: bool) -> None:
        """The output item and its content part, before the first delta."""
        previous = self._conv.last_id()
        if active.conversation:
            self._conv.add(item)
        await self._sink.send(
            {
                "type": "response.output_item.added",
                "response_id": active.id,
                "output_index": 0,
                "item": item.to_wire(),
            }
        )
        if active.conversation:
            added: dict[str, Any] = {"type": "conversation.item.added", "item": item.to_wire()}
            if previous is not None:
                added["previous_item_id"] = previous
            await self._sink.send(added)
        await self._sink.send(
            {
                **_part_ids(active),
                "type": "response.content_part.added",
                "part": {"type": "audio", "transcript": ""} if audio_mode else {"type": "text", "text": ""},
            }
        )
        active.part_open = True

    async def _close_item(self, active: ActiveResponse, status: str) -> None:
        """The closing events of the output item (also sent when a response is cancelled)."""
        item = active.item
        if item is None:
            return
        item.status = "completed" if status == "completed" else "incomplete"
        if active.part_open:
            ids = _part_ids(active)
            if item.modality == "audio":
                await self._sink.send({**ids, "type": "response.output_audio.done"})
                await self._sink.send(
                    {**ids, "type": "response.output_audio_transcript.done", "transcript": active.transcript}
                )
                part: dict[str, Any] = {"type": "audio", "transcript": active.transcript}
            else:
                await self._sink.send({**ids, "type": "response.output_text.done", "text": active.transcript})
                part = {"type": "text", "text": active.transcript}
            await self._sink.send({**ids, "type": "response.content_part.done", "part": part})
            active.part_open = False
        await self._sink.send(
            {
                "type": "response.output_item.done",
                "response_id": active.id,
                "output_index": 0,
                "item": item.to_wire(),
            }
        )
        if active.conversation:
            await self._sink.send({"type": "conversation.item.done", "item": item.to_wire()})

    async def _finish(self, active: ActiveResponse, status: str, details: dict[str, Any] | None) -> None:
        self._record.input_tokens.append(active.input_tokens)
        if self.active is active:
            self.active = None
        await self._sink.send({"type": "response.done", "response": self._wire(active, status, details)})


def _part_ids(active: ActiveResponse) -> dict[str, Any]:
    assert active.item is not None
    return {"response_id": active.id, "item_id": active.item.id, "output_index": 0, "content_index": 0}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
