"""`/v1/realtime/translations`: continuous interpretation into the session's output language.

The client streams audio without pause (silence included). Like the real service, the fake
interprets while the speaker is still talking: it cuts the input into sentences at short pauses
(`sentences.split_sentences`), recognises each fixture sentence as soon as it has ended, sends its
input transcript at once, and streams that sentence's recording in the target language as ~200 ms
`session.output_audio.delta` chunks with output transcript deltas. Translations go out one after
another, never overlapping: a sentence that is ready while the previous one is still being spoken
waits for it, and then for the speaker's pause between the two, at most `pause_ms`: the listener
hears a sentence break, and a translation longer than the next original does not push every later
one back (`pacing.translation_start`). The delay of each sentence is about `pause_ms` (300 ms) plus
`first_audio_delay_ms` after the speaker finished it.

Like the real endpoint it also sends all-zero "heartbeat" audio chunks while idle, which a client
must not let build up playout delay. Speech already in the target language gets no audio.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, TypeAdapter

from translator_bot.audio.formats import BYTES_PER_SAMPLE, MODEL_BYTES_PER_MS, MODEL_RATE
from translator_bot.engine.protocol import TRANSLATION_CLIENT_EVENT_TYPES, translation_client_events
from translator_bot.fake import session_config as cfg
from translator_bot.fake.base_session import UNRECOGNISED_TRANSCRIPT, BaseSession
from translator_bot.fake.events import spread, transcript_pieces
from translator_bot.fake.pacing import translation_start
from translator_bot.fake.sentences import SentenceConfig, split_sentences
from translator_bot.fixtures import RecordedUtterance

log = logging.getLogger(__name__)

_ELAPSED_STEP_MS = 200
_SAMPLES_PER_MS = MODEL_RATE // 1000
# Sentences heard but not yet recognised, and translations waiting to be spoken. When either is
# full the session stops reading the socket until there is room (the client's sends then block),
# as a service that consumes its input at the pace of its output does.
_BACKLOG_SENTENCES = 16


@dataclass(frozen=True)
class HeardSentence:
    pcm: npt.NDArray[np.int16]
    voiced_start_ms: int  # on the session's audio clock
    voiced_end_ms: int
    ended_at: float  # loop time its end was found


@dataclass(frozen=True)
class PendingTranslation:
    reply: RecordedUtterance
    pause_before_ms: int  # the speaker's pause between the previous sentence and this one
    ended_at: float  # loop time the sentence's end was found


class TranslationSession(BaseSession):
    client_types = TRANSLATION_CLIENT_EVENT_TYPES

    @property
    def client_adapter(self) -> TypeAdapter[Any]:
        return translation_client_events()

    def setup(self) -> None:
        self.session = cfg.default_translation_session(self.record.id, self.record.model)
        self.sentence_config = SentenceConfig()
        self._buffer = bytearray()  # input not yet handed on as a sentence
        self._buffer_start = 0  # its first sample on the session's audio clock
        self._last_voiced_end_ms: int | None = None
        self._heard: asyncio.Queue[HeardSentence | None] = asyncio.Queue(_BACKLOG_SENTENCES)
        self._to_speak: asyncio.Queue[PendingTranslation | None] = asyncio.Queue(_BACKLOG_SENTENCES)
        self._in_flight = 0  # sentences handed on and not yet fully answered
        self._transcribed_any = False
        self._spoken_any = False
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def open(self) -> None:
        self.setup()
        self.spawn(self._recognise_worker(), "recognise")
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
        await self._hand_on_sentences(final=False)

    async def _hand_on_sentences(self, *, final: bool) -> None:
        """Pass every sentence complete in the buffer to recognition, and drop what is done with."""
        pcm = np.frombuffer(bytes(self._buffer), dtype="<i2").astype(np.int16)
        split = split_sentences(pcm, self.sentence_config, final=final)
        for sentence in split.sentences:
            self._in_flight += 1
            self._idle.clear()
            await self._heard.put(
                HeardSentence(
                    pcm[sentence.start : sentence.end].copy(),
                    (self._buffer_start + sentence.voiced_start) // _SAMPLES_PER_MS,
                    (self._buffer_start + sentence.voiced_end) // _SAMPLES_PER_MS,
                    asyncio.get_running_loop().time(),
                )
            )
        del self._buffer[: split.consumed * BYTES_PER_SAMPLE]
        self._buffer_start += split.consumed

    async def _close(self) -> None:
        """Flush: finish the sentence in progress and everything queued, then `session.closed`."""
        self._closing = True
        await self._hand_on_sentences(final=True)
        await self._heard.put(None)

    def _answered(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def _recognise_worker(self) -> None:
        """Recognise each sentence as soon as it has ended, while earlier ones may still be spoken."""
        while True:
            heard = await self._heard.get()
            if heard is None:
                await self._to_speak.put(None)
                return
            pause_ms = (
                0 if self._last_voiced_end_ms is None else heard.voiced_start_ms - self._last_voiced_end_ms
            )
            self._last_voiced_end_ms = heard.voiced_end_ms
            reply = await self._recognise(heard.pcm)
            if reply is None:
                self._answered()
            else:
                await self._to_speak.put(PendingTranslation(reply, max(0, pause_ms), heard.ended_at))

    async def _recognise(self, pcm: npt.NDArray[np.int16]) -> RecordedUtterance | None:
        """The recording to speak for this sentence, after its input transcript; None for nothing."""
        result = await asyncio.to_thread(self.ctx.catalog.recognise, pcm)
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
            return None
        self.record.recognised.append(result.utterance_id)
        heard = self.ctx.catalog.utterance(result.utterance_id)
        if target is None:
            await self.sink.error(
                "invalid_request_error",
                "no_target_language",
                "Set session.audio.output.language before streaming audio.",
            )
            return None
        await self._input_transcript(heard.text)
        reply = self.ctx.catalog.reply(heard.id, target)
        if reply is None or reply.id == heard.id:
            if reply is not None:
                self.record.same_language += 1
            return None
        return reply

    async def _output_worker(self) -> None:
        """Speak the translations one at a time, in order, keeping the speaker's sentence breaks."""
        loop = asyncio.get_running_loop()
        spoken_until: float | None = None  # loop time the previous translation's audio ended
        while True:
            pending = await self._to_speak.get()
            if pending is None:
                await self.sink.send({"type": "session.closed"})
                self.record.close_reason = "session.close"
                await self.ws.close()
                return
            try:
                speed = self.ctx.options.translation_speed
                start = translation_start(
                    loop.time(),
                    spoken_until,
                    pending.pause_before_ms / 1000 / speed,
                    self.sentence_config.pause_ms / 1000 / speed,
                )
                if start > loop.time():
                    await asyncio.sleep(start - loop.time())
                delay_ms = self.ctx.faults.first_audio_delay_ms
                if delay_ms > 0:
                    await asyncio.sleep(delay_ms / 1000)
                reply = pending.reply
                self.record.translation_waits_ms.append(round((loop.time() - pending.ended_at) * 1000))
                self.record.turn_ends_at.append(pending.ended_at)
                self.record.first_audio_at.append(loop.time())
                text = " " + reply.text if self._spoken_any else reply.text
                self._spoken_any = True
                await self._stream(self.ctx.catalog.pcm(reply.id).tobytes(), text)
                spoken_until = loop.time()
            finally:
                self._answered()

    async def _input_transcript(self, text: str) -> None:
        if not (self.session["audio"].get("input") or {}).get("transcription"):
            return
        # One running transcript for the whole session: later sentences follow after a space.
        if self._transcribed_any:
            text = " " + text
        self._transcribed_any = True
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
        # Paced against the clock, not by sleeping a chunk's length after each send: the time a send
        # takes would otherwise add up and the stream would fall behind real time (~5 % on a busy
        # machine), which the real service, whose output keeps up with its input, does not do.
        loop = asyncio.get_running_loop()
        started, streamed_ms = loop.time(), 0.0
        for index, audio in enumerate(chunks):
            piece = texts[index]
            if piece:
                await self.sink.send(
                    {"type": "session.output_transcript.delta", "delta": piece, "elapsed_ms": self._elapsed()}
                )
            late_ms = (loop.time() - started) * 1000 - streamed_ms / opts.translation_speed
            self.record.output_late_ms = max(self.record.output_late_ms, round(late_ms))
            await self._send_audio(audio)
            streamed_ms += len(audio) / MODEL_BYTES_PER_MS
            await asyncio.sleep(max(0.0, started + streamed_ms / 1000 / opts.translation_speed - loop.time()))

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
