"""`/v1/realtime`: a conversational session that "translates" recorded fixture utterances.

Behaves as the GA service does towards a client: server VAD (energy-based, on the audio really
received) or manual commits; the full event sequence of a response with audio streamed faster than
real time; interruption by new speech; `response.cancel`; truncation checked against the audio the
item really holds; input transcription; token usage computed from the conversation it holds.

Limits of the fake: audio formats other than 24 kHz pcm16 are refused; a response always answers
the most recent user audio item (`response.create`'s `input` is not used); only message items can be
created.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from translator_bot.audio.formats import MODEL_BYTES_PER_MS
from translator_bot.engine.protocol import CLIENT_EVENT_TYPES, CLIENT_EVENTS
from translator_bot.fake import session_config as cfg
from translator_bot.fake.base_session import UNRECOGNISED_TRANSCRIPT, BaseSession
from translator_bot.fake.conversation import Conversation, Item, audio_tokens, text_tokens
from translator_bot.fake.events import new_id, spread, transcript_pieces
from translator_bot.fake.pacing import DeltaSchedule
from translator_bot.fake.recognizer import Recognition
from translator_bot.fake.responses import ActiveResponse, apply_truncation, rate_limits_event, response_wire
from translator_bot.fake.state import TruncateRecord
from translator_bot.fake.vad import EnergyVad, SpeechStarted, SpeechStopped
from translator_bot.fixtures import RecordedUtterance

log = logging.getLogger(__name__)

_MIN_COMMIT_MS = 100


class RealtimeSession(BaseSession):
    client_adapter = CLIENT_EVENTS
    client_types = CLIENT_EVENT_TYPES

    def setup(self) -> None:
        self.session = cfg.default_realtime_session(self.record.id, self.record.model)
        self.conversation_id = new_id("conv")
        self.conv = Conversation()
        self.vad: EnergyVad | None = None
        self._configure_vad()
        self._buffer = bytearray()
        self._buffer_start_ms = 0
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0
        self._active: ActiveResponse | None = None
        self._recognitions: dict[str, asyncio.Future[Recognition]] = {}
        self._recognise_queue: asyncio.Queue[tuple[npt.NDArray[np.int16], asyncio.Future[Recognition]]]
        self._recognise_queue = asyncio.Queue()
        self._audio_sent = False
        self.record.target_language = cfg.target_from_instructions(self.session.get("instructions"))

    async def open(self) -> None:
        self.setup()
        self.spawn(self._recognise_worker(), "recogniser")
        await self.sink.send({"type": "session.created", "session": self.session})
        await self.sink.send(
            {
                "type": "conversation.created",
                "conversation": {"id": self.conversation_id, "object": "realtime.conversation"},
            }
        )

    async def on_close(self) -> None:
        if self._active is not None and self._active.task is not None:
            self._active.task.cancel()

    # --- dispatch -------------------------------------------------------------------------------

    async def dispatch(self, event: BaseModel, data: dict[str, Any]) -> None:
        kind = data["type"]
        event_id: str | None = data.get("event_id")
        handler = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._manual_commit,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self._item_create,
            "conversation.item.truncate": self._truncate,
            "conversation.item.delete": self._delete,
            "conversation.item.retrieve": self._retrieve,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
            "output_audio_buffer.clear": self._output_clear,
        }[kind]
        await handler(data, event_id)

    async def _session_update(self, data: dict[str, Any], event_id: str | None) -> None:
        update: dict[str, Any] = dict(data["session"])
        if update.get("type") != "realtime":
            await self._invalid("session.type", "This endpoint serves 'realtime' sessions.", event_id)
            return
        if "model" in update and update["model"] not in (None, self.session["model"]):
            await self._invalid("session.model", "The model of a session cannot be changed.", event_id)
            return
        merged = cfg.merge_session(self.session, update)
        audio = merged.get("audio") or {}
        for direction in ("input", "output"):
            fmt = (audio.get(direction) or {}).get("format") or {}
            if fmt.get("type", "audio/pcm") != "audio/pcm":
                await self._invalid(
                    f"session.audio.{direction}.format",
                    "This server supports only audio/pcm at 24000 Hz.",
                    event_id,
                    code="unsupported_format",
                )
                return
        old_voice = ((self.session.get("audio") or {}).get("output") or {}).get("voice")
        new_voice = (audio.get("output") or {}).get("voice")
        if self._audio_sent and new_voice != old_voice:
            await self._invalid(
                "session.audio.output.voice",
                "Cannot update a conversation's voice if assistant audio is present.",
                event_id,
                code="cannot_update_voice",
            )
            return
        self.session = merged
        self._configure_vad()
        self.record.target_language = cfg.target_from_instructions(merged.get("instructions"))
        await self.sink.send({"type": "session.updated", "session": self.session})

    def _configure_vad(self) -> None:
        config = cfg.vad_config(self.session)
        if config is None:
            self.vad = None
        elif self.vad is None:
            self.vad = EnergyVad(config, origin_ms=self.audio_ms)
        else:
            self.vad.reconfigure(config)

    # --- input audio ----------------------------------------------------------------------------

    async def _append(self, data: dict[str, Any], event_id: str | None) -> None:
        samples = await self.decode_audio(data["audio"], event_id)
        if samples is None:
            return
        self._buffer.extend(samples.tobytes())
        if self.vad is None:
            return
        for vad_event in self.vad.feed(samples):
            if isinstance(vad_event, SpeechStarted):
                await self._speech_started(vad_event.audio_start_ms)
            elif isinstance(vad_event, SpeechStopped):
                await self._speech_stopped(vad_event.audio_end_ms)
        if not self.vad.in_speech:
            self._trim_buffer()

    def _trim_buffer(self) -> None:
        """Between turns only the prefix padding can still become part of an item."""
        keep_ms = (self.vad.config.prefix_padding_ms if self.vad else 0) + 200
        excess_ms = self.audio_ms - self._buffer_start_ms - keep_ms
        if excess_ms > 1000:
            del self._buffer[: excess_ms * MODEL_BYTES_PER_MS]
            self._buffer_start_ms += excess_ms

    async def _speech_started(self, audio_start_ms: int) -> None:
        self._speech_item_id = new_id("item")
        await self.sink.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": self._speech_item_id,
            }
        )
        self._speech_start_ms = audio_start_ms
        if self._active is not None and cfg.flag(self.session, "interrupt_response"):
            await self._cancel_active("turn_detected")

    async def _speech_stopped(self, audio_end_ms: int) -> None:
        item_id = self._speech_item_id or new_id("item")
        self._speech_item_id = None
        await self.sink.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": audio_end_ms, "item_id": item_id}
        )
        start = max(0, (self._speech_start_ms - self._buffer_start_ms) * MODEL_BYTES_PER_MS)
        end = max(start, (audio_end_ms - self._buffer_start_ms) * MODEL_BYTES_PER_MS)
        audio = bytes(self._buffer[start:end])
        del self._buffer[:end]
        self._buffer_start_ms = audio_end_ms
        await self._commit(item_id, audio)
        if cfg.flag(self.session, "create_response"):
            if self._active is not None:
                # As documented for interrupt_response=false: no new response while one is running.
                log.info("session %s: turn %s gets no response (one is active)", self.record.id, item_id)
                return
            await self._start_response(None, source_item_id=item_id)

    async def _manual_commit(self, data: dict[str, Any], event_id: str | None) -> None:
        buffered_ms = len(self._buffer) / MODEL_BYTES_PER_MS
        if buffered_ms < _MIN_COMMIT_MS:
            await self.sink.error(
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
                f"audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                event_id=event_id,
            )
            return
        audio = bytes(self._buffer)
        self._buffer.clear()
        self._buffer_start_ms = self.audio_ms
        if self.vad is not None:
            self.vad.reset()
        item_id = self._speech_item_id or new_id("item")
        self._speech_item_id = None
        await self._commit(item_id, audio)

    async def _commit(self, item_id: str, audio: bytes) -> None:
        item = Item(id=item_id, role="user", modality="audio", audio=bytearray(audio))
        previous = self.conv.add(item)
        committed: dict[str, Any] = {"type": "input_audio_buffer.committed", "item_id": item_id}
        added: dict[str, Any] = {"type": "conversation.item.added", "item": item.to_wire()}
        if previous is not None:
            committed["previous_item_id"] = previous
            added["previous_item_id"] = previous
        await self.sink.send(committed)
        await self.sink.send(added)
        await self.sink.send({"type": "conversation.item.done", "item": item.to_wire()})
        future: asyncio.Future[Recognition] = asyncio.get_running_loop().create_future()
        self._recognitions[item_id] = future
        self._recognise_queue.put_nowait((np.frombuffer(audio, dtype="<i2").astype(np.int16), future))
        if cfg.transcription_enabled(self.session):
            self.spawn(self._transcribe(item, future), f"transcribe:{item_id}")

    async def _clear(self, data: dict[str, Any], event_id: str | None) -> None:
        self._buffer.clear()
        self._buffer_start_ms = self.audio_ms
        self._speech_item_id = None
        if self.vad is not None:
            self.vad.reset()
        await self.sink.send({"type": "input_audio_buffer.cleared"})

    async def _recognise_worker(self) -> None:
        """One segment at a time, in commit order, off the event loop."""
        while True:
            pcm, future = await self._recognise_queue.get()
            result = await asyncio.to_thread(self.ctx.catalog.recognise, pcm)
            if result.utterance_id is None:
                self.record.unrecognised += 1
            else:
                self.record.recognised.append(result.utterance_id)
            log.info(
                "session %s heard %s (score %.3f, next %.3f, %s)",
                self.record.id,
                result.utterance_id,
                result.score,
                result.runner_up_score,
                result.reason,
            )
            if not future.done():
                future.set_result(result)

    async def _transcribe(self, item: Item, future: asyncio.Future[Recognition]) -> None:
        result = await future
        await asyncio.sleep(self.ctx.options.transcript_delay_ms / 1000)
        text = (
            self.ctx.catalog.utterance(result.utterance_id).text
            if result.utterance_id is not None
            else UNRECOGNISED_TRANSCRIPT
        )
        item.text = text
        for piece in transcript_pieces(text):
            await self.sink.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item.id,
                    "content_index": 0,
                    "delta": piece,
                }
            )
        audio_in, text_out = audio_tokens(item.audio_ms), text_tokens(text)
        await self.sink.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item.id,
                "content_index": 0,
                "transcript": text,
                "usage": {
                    "type": "tokens",
                    "input_tokens": audio_in,
                    "output_tokens": text_out,
                    "total_tokens": audio_in + text_out,
                    "input_token_details": {"audio_tokens": audio_in, "text_tokens": 0},
                },
            }
        )

    # --- conversation items ---------------------------------------------------------------------

    async def _item_create(self, data: dict[str, Any], event_id: str | None) -> None:
        raw = data["item"]
        if raw.get("type") != "message":
            await self._invalid("item.type", "This server accepts message items only.", event_id)
            return
        content = (raw.get("content") or [{}])[0]
        item = Item(id=raw.get("id") or new_id("item"), role=raw["role"], modality="text")
        if content.get("type") == "input_audio" and content.get("audio"):
            samples = await self.decode_audio(content["audio"], event_id)
            if samples is None:
                return
            item.modality, item.audio = "audio", bytearray(samples.tobytes())
        else:
            item.text = content.get("text") or content.get("transcript") or ""
        if self.conv.get(item.id) is not None:
            await self._invalid("item.id", f"Item with id '{item.id}' already exists.", event_id)
            return
        try:
            previous = self.conv.add(item, data.get("previous_item_id"))
        except KeyError:
            await self._invalid(
                "previous_item_id", f"Item with id '{data.get('previous_item_id')}' not found.", event_id
            )
            return
        added: dict[str, Any] = {"type": "conversation.item.added", "item": item.to_wire()}
        if previous is not None:
            added["previous_item_id"] = previous
        await self.sink.send(added)
        await self.sink.send({"type": "conversation.item.done", "item": item.to_wire()})
        if item.modality == "audio" and item.role == "user":
            future: asyncio.Future[Recognition] = asyncio.get_running_loop().create_future()
            self._recognitions[item.id] = future
            self._recognise_queue.put_nowait(
                (np.frombuffer(bytes(item.audio), "<i2").astype(np.int16), future)
            )

    async def _truncate(self, data: dict[str, Any], event_id: str | None) -> None:
        item_id, audio_end_ms = data["item_id"], int(data["audio_end_ms"])
        item = self.conv.get(item_id)
        if item is None or item.role != "assistant" or item.modality != "audio":
            self.record.truncates.append(TruncateRecord(item_id, audio_end_ms, None, False))
            message = (
                f"Conversation item '{item_id}' not found."
                if item is None
                else "Only model output audio messages can be truncated"
            )
            await self._invalid("item_id", message, event_id)
            return
        if data.get("content_index", 0) != 0:
            self.record.truncates.append(TruncateRecord(item_id, audio_end_ms, item.audio_ms, False))
            await self._invalid("content_index", "Only content_index 0 can be truncated.", event_id)
            return
        if audio_end_ms > item.audio_ms or audio_end_ms < 0:
            self.record.truncates.append(TruncateRecord(item_id, audio_end_ms, item.audio_ms, False))
            await self._invalid(
                "audio_end_ms",
                f"Audio content of {item.audio_ms}ms is already shorter than {audio_end_ms}ms",
                event_id,
            )
            return
        self.record.truncates.append(TruncateRecord(item_id, audio_end_ms, item.audio_ms, True))
        item.truncated_ms = audio_end_ms
        item.text = None  # the model must not remember words the listener never heard
        await self.sink.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            }
        )

    async def _delete(self, data: dict[str, Any], event_id: str | None) -> None:
        if not self.conv.delete(data["item_id"]):
            await self._invalid("item_id", f"Item with item_id '{data['item_id']}' not found.", event_id)
            return
        await self.sink.send({"type": "conversation.item.deleted", "item_id": data["item_id"]})

    async def _retrieve(self, data: dict[str, Any], event_id: str | None) -> None:
        item = self.conv.get(data["item_id"])
        if item is None:
            await self._invalid("item_id", f"Item with item_id '{data['item_id']}' not found.", event_id)
            return
        await self.sink.send({"type": "conversation.item.retrieved", "item": item.to_wire(with_audio=True)})

    async def _output_clear(self, data: dict[str, Any], event_id: str | None) -> None:
        await self._invalid(
            "type", "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.", event_id
        )

    # --- responses ------------------------------------------------------------------------------

    async def _response_create(self, data: dict[str, Any], event_id: str | None) -> None:
        if self._active is not None:
            await self.sink.error(
                "invalid_request_error",
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._active.id}. Wait "
                "until the response is finished before creating a new one.",
                event_id=event_id,
            )
            return
        source = next(
            (i.id for i in reversed(self.conv.items) if i.role == "user" and i.modality == "audio"), None
        )
        await self._start_response(data.get("response") or {}, source_item_id=source, event_id=event_id)

    async def _response_cancel(self, data: dict[str, Any], event_id: str | None) -> None:
        wanted = data.get("response_id")
        if self._active is None or (wanted is not None and wanted != self._active.id):
            await self.sink.error(
                "invalid_request_error",
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                event_id=event_id,
            )
            return
        await self._cancel_active("client_cancelled")

    async def _start_response(
        self, params: dict[str, Any] | None, *, source_item_id: str | None, event_id: str | None = None
    ) -> None:
        params = params or {}
        instructions = params.get("instructions") or self.session.get("instructions")
        target = cfg.target_from_instructions(instructions)
        if target is None:
            await self.sink.error(
                "invalid_request_error",
                "no_target_language",
                "The instructions name no target language (expected the phrase 'into <Language>').",
                event_id=event_id,
            )
            return
        conversation = params.get("conversation", "auto") != "none"
        if conversation:
            dropped = apply_truncation(
                self.conv, self.session, self.ctx.options.retention_tokens, instructions
            )
            self.record.items_dropped_by_retention += len(dropped)
        usage = self.conv.input_tokens(instructions)
        active = ActiveResponse(
            id=new_id("resp"),
            source_item_id=source_item_id,
            conversation=conversation,
            modalities=list(
                params.get("output_modalities") or self.session.get("output_modalities") or ["audio"]
            ),
            metadata=params.get("metadata"),
            input_tokens=usage.total,
            input_text_tokens=usage.text,
            input_audio_tokens=usage.audio,
        )
        self._active = active
        active.task = self.spawn(self._run_response(active, target), f"response:{active.id}")

    def _response_wire(
        self, active: ActiveResponse, status: str, details: dict[str, Any] | None
    ) -> dict[str, Any]:
        return response_wire(active, self.session, self.conversation_id, status, details)

    async def _run_response(self, active: ActiveResponse, target: str) -> None:
        await self.sink.send(
            {"type": "response.created", "response": self._response_wire(active, "in_progress", None)}
        )
        await self.sink.send(rate_limits_event(active.input_tokens))
        if self.ctx.faults.quota_exceeded:
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
        reply = self.ctx.catalog.reply(result.utterance_id, target)
        if reply is not None and reply.id == result.utterance_id:
            self.record.same_language += 1
        return reply

    async def _stream_reply(self, active: ActiveResponse, reply: RecordedUtterance) -> None:
        opts = self.ctx.options
        audio_mode = "audio" in active.modalities
        item = Item(
            id=new_id("item"),
            role="assistant",
            modality="audio" if audio_mode else "text",
            status="in_progress",
            text="",
        )
        active.item = item
        previous = self.conv.last_id()
        if active.conversation:
            self.conv.add(item)
        await self.sink.send(
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
            await self.sink.send(added)
        await self.sink.send(
            {
                **self._part_ids(active),
                "type": "response.content_part.added",
                "part": {"type": "audio", "transcript": ""} if audio_mode else {"type": "text", "text": ""},
            }
        )
        active.part_open = True
        delay_ms = self.ctx.faults.first_audio_delay_ms
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        pcm = self.ctx.catalog.pcm(reply.id).tobytes()
        chunk = opts.realtime_chunk_ms * MODEL_BYTES_PER_MS
        chunks = [pcm[i : i + chunk] for i in range(0, len(pcm), chunk)] if audio_mode else [b""]
        words = transcript_pieces(reply.text + self.ctx.faults.transcript_suffix)
        texts = spread(words, len(chunks))
        loop = asyncio.get_running_loop()
        pace = self.ctx.faults.stream_pace
        schedule = None if pace is None else DeltaSchedule(pace, self.ctx.faults.pace_rng, loop.time())
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
                await self.sink.send({**self._part_ids(active), "type": kind, "delta": text})
            if audio:
                item.audio.extend(audio)
                self._audio_sent = True
                await self.sink.send(
                    {
                        **self._part_ids(active),
                        "type": "response.output_audio.delta",
                        "delta": _b64(audio),
                    }
                )
                if schedule is None:
                    await asyncio.sleep(len(audio) / MODEL_BYTES_PER_MS / 1000 / opts.realtime_speed)

    def _part_ids(self, active: ActiveResponse) -> dict[str, Any]:
        assert active.item is not None
        return {"response_id": active.id, "item_id": active.item.id, "output_index": 0, "content_index": 0}

    async def _close_item(self, active: ActiveResponse, status: str) -> None:
        """The closing events of the output item (also sent when a response is cancelled)."""
        item = active.item
        if item is None:
            return
        item.status = "completed" if status == "completed" else "incomplete"
        if active.part_open:
            ids = self._part_ids(active)
            if item.modality == "audio":
                await self.sink.send({**ids, "type": "response.output_audio.done"})
                await self.sink.send(
                    {**ids, "type": "response.output_audio_transcript.done", "transcript": active.transcript}
                )
                part: dict[str, Any] = {"type": "audio", "transcript": active.transcript}
            else:
                await self.sink.send({**ids, "type": "response.output_text.done", "text": active.transcript})
                part = {"type": "text", "text": active.transcript}
            await self.sink.send({**ids, "type": "response.content_part.done", "part": part})
            active.part_open = False
        await self.sink.send(
            {
                "type": "response.output_item.done",
                "response_id": active.id,
                "output_index": 0,
                "item": item.to_wire(),
            }
        )
        if active.conversation:
            await self.sink.send({"type": "conversation.item.done", "item": item.to_wire()})

    async def _finish(self, active: ActiveResponse, status: str, details: dict[str, Any] | None) -> None:
        self.record.input_tokens.append(active.input_tokens)
        if self._active is active:
            self._active = None
        await self.sink.send(
            {"type": "response.done", "response": self._response_wire(active, status, details)}
        )

    async def _cancel_active(self, reason: str) -> None:
        active = self._active
        if active is None:
            return
        self._active = None
        if active.finishing and active.task is not None:
            await asyncio.shield(active.task)
            return
        if active.task is not None:
            active.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await active.task
        self.record.responses_cancelled += 1
        await self._close_item(active, "cancelled")
        await self._finish(active, "cancelled", {"type": "cancelled", "reason": reason})

    async def _invalid(
        self, param: str, message: str, event_id: str | None, *, code: str = "invalid_value"
    ) -> None:
        await self.sink.error("invalid_request_error", code, message, param=param, event_id=event_id)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
