"""`/v1/realtime/translations`: continuous interpretation into the session's output language.

The client streams audio without pause (silence included); the fake finds utterances in it with
the energy VAD, recognises each fixture after its end, and streams that sentence's recording in the
target language as ~200 ms `session.output_audio.delta` chunks with input and output transcript
deltas. The real service starts translating while the speaker is still talking (it consumes 200 ms
frames as they come); the fake answers only once the utterance has ended, so its delay is about
`silence_duration` plus `first_audio_delay_ms` longer at the start and it does not overlap with the
speaker.

Like the real endpoint it also sends all-zero "heartbeat" audio chunks while idle, which a client
must not let build up playout delay. Speech already in the target language gets no audio.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from translator_bot.audio.formats import MODEL_BYTES_PER_MS, MODEL_RATE
from translator_bot.engine.protocol import TRANSLATION_CLIENT_EVENT_TYPES, TRANSLATION_CLIENT_EVENTS
from translator_bot.fake import session_config as cfg
from translator_bot.fake.base_session import UNRECOGNISED_TRANSCRIPT, BaseSession
from translator_bot.fake.events import spread, transcript_pieces
from translator_bot.fake.vad import EnergyVad, SpeechStarted, SpeechStopped, VadConfig

log = logging.getLogger(__name__)

_ELAPSED_STEP_MS = 200


class TranslationSession(BaseSession):
    client_adapter = TRANSLATION_CLIENT_EVENTS
    client_types = TRANSLATION_CLIENT_EVENT_TYPES

    def setup(self) -> None:
        self.session = cfg.default_translation_session(self.record.id, self.record.model)
        self.vad = EnergyVad(VadConfig())
        self._buffer = bytearray()
        self._buffer_start_ms = 0
        self._speech_start_ms = 0
        self._segments: asyncio.Queue[npt.NDArray[np.int16] | None] = asyncio.Queue()
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def open(self) -> None:
        self.setup()
        self.spawn(self._output_worker(), "output")
        if self.ctx.options.heartbeat_ms > 0:
            self.spawn(self._heartbeats(), "heartbeats")
        await self.sink.send({"type": "session.created", "session": self.session})

    async def dispatch(self, event: BaseModel, data: dict[str, Any]) -> None:
        kind = data["type"]
        event_id: str | None = data.get("event_id")
        if self._closing:
            await self.sink.error(
                "invalid_request_error", "session_closing", "The session is closing.", event_id=event_id
            )
            return
        if kind == "session.update":
            await self._session_update(data, event_id)
        elif kind == "session.input_audio_buffer.append":
            await self._append(data, event_id)
        elif kind == "session.close":
            await self._close()

    async def _session_update(self, data: dict[str, Any], event_id: str | None) -> None:
        update = dict(data["session"])
        language = ((update.get("audio") or {}).get("output") or {}).get("language")
        if language is not None and cfg.target_from_language_tag(language) is None:
            await self.sink.error(
                "invalid_request_error",
                "invalid_value",
                f"Invalid value: '{language}'. Expected a BCP-47 language tag.",
                param="session.audio.output.language",
                event_id=event_id,
            )
            return
        self.session = cfg.merge_session(self.session, update)
        self.record.target_language = cfg.target_from_language_tag(
            self.session["audio"]["output"].get("language")
        )
        await self.sink.send({"type": "session.updated", "session": self.session})

    async def _append(self, data: dict[str, Any], event_id: str | None) -> None:
        samples = await self.decode_audio(data["audio"], event_id)
        if samples is None:
            return
        self._buffer.extend(samples.tobytes())
        for vad_event in self.vad.feed(samples):
            if isinstance(vad_event, SpeechStarted):
                self._speech_start_ms = vad_event.audio_start_ms
            elif isinstance(vad_event, SpeechStopped):
                self._cut(vad_event.audio_end_ms)
        if not self.vad.in_speech:
            excess_ms = self.audio_ms - self._buffer_start_ms - 1000
            if excess_ms > 1000:
                del self._buffer[: excess_ms * MODEL_BYTES_PER_MS]
                self._buffer_start_ms += excess_ms

    def _cut(self, end_ms: int) -> None:
        start = max(0, (self._speech_start_ms - self._buffer_start_ms) * MODEL_BYTES_PER_MS)
        end = max(start, (end_ms - self._buffer_start_ms) * MODEL_BYTES_PER_MS)
        segment = np.frombuffer(bytes(self._buffer[start:end]), dtype="<i2").astype(np.int16)
        del self._buffer[:end]
        self._buffer_start_ms = end_ms
        self._idle.clear()
        self._segments.put_nowait(segment)

    async def _close(self) -> None:
        """Flush: finish the utterance in progress and everything queued, then `session.closed`."""
        self._closing = True
        for vad_event in self.vad.flush():
            if isinstance(vad_event, SpeechStopped):
                self._cut(vad_event.audio_end_ms)
        self._segments.put_nowait(None)

    async def _output_worker(self) -> None:
        while True:
            segment = await self._segments.get()
            if segment is None:
                await self.sink.send({"type": "session.closed"})
                self.record.close_reason = "session.close"
                await self.ws.close()
                return
            try:
                await self._translate(segment)
            finally:
                if self._segments.empty():
                    self._idle.set()

    async def _translate(self, segment: npt.NDArray[np.int16]) -> None:
        result = await asyncio.to_thread(self.ctx.catalog.recognise, segment)
        target = self.record.target_language
        log.info(
            "session %s heard %s (score %.3f, next %.3f, %s), target %s",
            self.record.id,
            result.utterance_id,
            result.score,
            result.runner_up_score,
            result.reason,
            target,
        )
        if result.utterance_id is None:
            self.record.unrecognised += 1
            await self._input_transcript(UNRECOGNISED_TRANSCRIPT)
            return
        self.record.recognised.append(result.utterance_id)
        heard = self.ctx.catalog.utterance(result.utterance_id)
        if target is None:
            await self.sink.error(
                "invalid_request_error",
                "no_target_language",
                "Set session.audio.output.language before streaming audio.",
            )
            return
        delay_ms = self.ctx.faults.first_audio_delay_ms
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        await self._input_transcript(heard.text)
        reply = self.ctx.catalog.reply(heard.id, target)
        if reply is None or reply.id == heard.id:
            if reply is not None:
                self.record.same_language += 1
            return
        await self._stream(self.ctx.catalog.pcm(reply.id).tobytes(), reply.text)

    async def _input_transcript(self, text: str) -> None:
        if not (self.session["audio"].get("input") or {}).get("transcription"):
            return
        for piece in transcript_pieces(text):
            await self.sink.send(
                {"type": "session.input_transcript.delta", "delta": piece, "elapsed_ms": self._elapsed()}
            )

    async def _stream(self, pcm: bytes, text: str) -> None:
        opts = self.ctx.options
        chunk = opts.translation_chunk_ms * MODEL_BYTES_PER_MS
        chunks = [pcm[i : i + chunk] for i in range(0, len(pcm), chunk)]
        words = transcript_pieces(text + self.ctx.faults.transcript_suffix)
        texts = spread(words, len(chunks))
        for index, audio in enumerate(chunks):
            piece = texts[index]
            if piece:
                await self.sink.send(
                    {"type": "session.output_transcript.delta", "delta": piece, "elapsed_ms": self._elapsed()}
                )
            await self._send_audio(audio)
            await asyncio.sleep(len(audio) / MODEL_BYTES_PER_MS / 1000 / opts.translation_speed)

    async def _send_audio(self, audio: bytes) -> None:
        await self.sink.send(
            {
                "type": "session.output_audio.delta",
                "delta": base64.b64encode(audio).decode("ascii"),
                "sample_rate": MODEL_RATE,
                "channels": 1,
                "format": "pcm16",
                "elapsed_ms": self._elapsed(),
            }
        )

    async def _heartbeats(self) -> None:
        opts = self.ctx.options
        silence = bytes(opts.translation_chunk_ms * MODEL_BYTES_PER_MS)
        while True:
            await asyncio.sleep(opts.heartbeat_ms / 1000)
            await self._idle.wait()
            if self._closing:
                return
            self.record.heartbeats_sent += 1
            await self._send_audio(silence)

    def _elapsed(self) -> int:
        return self.audio_ms // _ELAPSED_STEP_MS * _ELAPSED_STEP_MS
