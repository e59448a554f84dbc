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
import logging
from typing import Any

import numpy as np
from pydantic import BaseModel, TypeAdapter

from translator_bot.audio.formats import MODEL_BYTES_PER_MS, MODEL_RATE
from translator_bot.audio.vad import VoiceActivityDetector, VoiceStarted, VoiceStopped
from translator_bot.engine.protocol import CLIENT_EVENT_TYPES, client_events
from translator_bot.fake import session_config as cfg
from translator_bot.fake.base_session import BaseSession
from translator_bot.fake.conversation import Conversation, Item
from translator_bot.fake.events import new_id
from translator_bot.fake.recognition import Recognitions, send_input_transcript
from translator_bot.fake.response_runner import ResponseRunner
from translator_bot.fake.state import TruncateRecord

log = logging.getLogger(__name__)

_MIN_COMMIT_MS = 100


class ConversationSession(BaseSession):
    """One `/v1/realtime` connection: its session configuration, input audio buffer and turn detection,
    and conversation items; responses are run by its `ResponseRunner`."""

    client_types = CLIENT_EVENT_TYPES

    @property
    def client_adapter(self) -> TypeAdapter[Any]:
        return client_events()

    def setup(self) -> None:
        self.session = cfg.default_realtime_session(self.record.id, self.record.model)
        self.conversation_id = new_id("conv")
        self.conv = Conversation()
        self.vad: VoiceActivityDetector | None = None
        self._configure_vad()
        self._buffer = bytearray()
        self._buffer_start_ms = 0
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0
        self._recognitions = Recognitions(self.ctx, self.record)
        self.responses = ResponseRunner(
            sink=self.sink,
            ctx=self.ctx,
            record=self.record,
            conv=self.conv,
            conversation_id=self.conversation_id,
            recognitions=self._recognitions,
            session=lambda: self.session,
            spawn=self.spawn,
        )
        self.record.target_language = cfg.target_from_instructions(self.session.get("instructions"))

    async def open(self) -> None:
        self.setup()
        self.spawn(self._recognitions.run(), "recogniser")
        await self.sink.send({"type": "session.created", "session": self.session})
        await self.sink.send(
            {
                "type": "conversation.created",
                "conversation": {"id": self.conversation_id, "object": "realtime.conversation"},
            }
        )

    async def on_close(self) -> None:
        self.responses.stop()

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
                    f"This server supports only audio/pcm at {MODEL_RATE} Hz.",
                    event_id,
                    code="unsupported_format",
                )
                return
        old_voice = ((self.session.get("audio") or {}).get("output") or {}).get("voice")
        new_voice = (audio.get("output") or {}).get("voice")
        if self.responses.audio_sent and new_voice != old_voice:
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
            # On the session's audio clock in samples: whole milliseconds, as the events report them.
            self.vad = VoiceActivityDetector(config.detector(), origin=self.audio_ms * MODEL_RATE // 1000)
        else:
            self.vad.reconfigure(config.detector())

    # --- input audio ----------------------------------------------------------------------------

    async def _append(self, data: dict[str, Any], event_id: str | None) -> None:
        samples = await self.decode_audio(data["audio"], event_id)
        if samples is None:
            return
        self._buffer.extend(samples.tobytes())
        if self.vad is None:
            return
        for vad_event in self.vad.feed(samples):
            if isinstance(vad_event, VoiceStarted):
                await self._speech_started(vad_event.start_ms)
            elif isinstance(vad_event, VoiceStopped):
                await self._speech_stopped(vad_event.end_ms)
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
        if self.responses.active is not None and cfg.flag(self.session, "interrupt_response"):
            await self.responses.cancel_active("turn_detected")

    async def _speech_stopped(self, audio_end_ms: int) -> None:
        self.record.turn_ends_at.append(asyncio.get_running_loop().time())
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
            if self.responses.active is not None:
                # As documented for interrupt_response=false: no new response while one is running.
                log.info("session %s: turn %s gets no response (one is active)", self.record.id, item_id)
                return
            await self.responses.start(None, source_item_id=item_id)

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
        future = self._recognitions.submit(item_id, np.frombuffer(audio, dtype="<i2").astype(np.int16))
        if cfg.transcription_enabled(self.session):
            transcript = send_input_transcript(self.sink, self.ctx, item, future)
            self.spawn(transcript, f"transcribe:{item_id}")

    async def _clear(self, data: dict[str, Any], event_id: str | None) -> None:
        self._buffer.clear()
        self._buffer_start_ms = self.audio_ms
        self._speech_item_id = None
        if self.vad is not None:
            self.vad.reset()
        await self.sink.send({"type": "input_audio_buffer.cleared"})

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
            self._recognitions.submit(item.id, np.frombuffer(bytes(item.audio), "<i2").astype(np.int16))

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
        active = self.responses.active
        if active is not None:
            await self.sink.error(
                "invalid_request_error",
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {active.id}. Wait "
                "until the response is finished before creating a new one.",
                event_id=event_id,
            )
            return
        source = next(
            (i.id for i in reversed(self.conv.items) if i.role == "user" and i.modality == "audio"), None
        )
        await self.responses.start(data.get("response") or {}, source_item_id=source, event_id=event_id)

    async def _response_cancel(self, data: dict[str, Any], event_id: str | None) -> None:
        wanted = data.get("response_id")
        active = self.responses.active
        if active is None or (wanted is not None and wanted != active.id):
            await self.sink.error(
                "invalid_request_error",
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                event_id=event_id,
            )
            return
        await self.responses.cancel_active("client_cancelled")

    async def _invalid(
        self, param: str, message: str, event_id: str | None, *, code: str = "invalid_value"
    ) -> None:
        await self.sink.error("invalid_request_error", code, message, param=param, event_id=event_id)
