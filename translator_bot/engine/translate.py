"""Engine `translate`: the dedicated simultaneous-translation endpoint (`/v1/realtime/translations`).

Only the target language is set (the listener's); the source is detected. Input is streamed without
pause, silence included, in the endpoint's 200 ms frames: a gap in the input would be read as
contiguous time. The endpoint has no turns or items, so a run of translated audio is grouped into a
synthetic item id that ends at an all-zero "heartbeat" chunk or after a quiet spell; heartbeats are
never passed on, so they cannot build up playout delay. Transcript deltas attach to the open item.
It reports no token usage and has no truncation: `report_interrupted` has nothing to fix.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass

from openai.types.realtime import (
    RealtimeErrorEvent,
    RealtimeTranslationInputAudioBufferAppendEvent,
    RealtimeTranslationInputTranscriptDeltaEvent,
    RealtimeTranslationOutputAudioDeltaEvent,
    RealtimeTranslationOutputTranscriptDeltaEvent,
    RealtimeTranslationSessionClosedEvent,
    RealtimeTranslationSessionCloseEvent,
    RealtimeTranslationSessionUpdateEvent,
)
from openai.types.realtime.realtime_translation_session_update_request import (
    Audio,
    AudioInput,
    AudioInputTranscription,
    AudioOutput,
    RealtimeTranslationSessionUpdateRequest,
)
from pydantic import BaseModel

from translator_bot.audio.formats import BYTES_PER_SAMPLE, MODEL_RATE
from translator_bot.engine.base import (
    SourceTranscript,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
)
from translator_bot.engine.connection import Parser
from translator_bot.engine.feed import ms_to_samples
from translator_bot.engine.protocol import parse_translation_server_event
from translator_bot.engine.session import Link, ManagedSession
from translator_bot.metrics import ENGINE_UNKNOWN_EVENTS

log = logging.getLogger(__name__)

ITEM_IDLE_S = 1.5  # no translated audio for this long ends the item even without a heartbeat
_CLEAN_QUIET_MS = 300
_REPLAY_PAD_MS = 300  # audio sent again before a speech start, so its first syllable is not clipped


@dataclass
class TranslateLinkState:
    item_id: str | None = None
    has_audio: bool = False
    last_activity: float = 0.0  # loop time of the item's last audio or text
    source_text: str = ""
    target_text: str = ""
    closed_by_server: bool = False
    close_sent: bool = False


def is_heartbeat(pcm: bytes) -> bool:
    return pcm.count(0) == len(pcm)


class TranslateSession(ManagedSession[TranslateLinkState]):
    engine_name = "translate"
    chunk_ms = 100  # half the endpoint's own ~200 ms frame: speech reaches it at most 100 ms late

    _items = 0  # synthetic items numbered per session, across reconnects
    # Start of the input's run of speech that was going on (or last) when translated audio of an item
    # began to arrive: that speech is being heard, and is not sent again after a drop.
    _heard_run: int | None = None

    def _parser(self) -> Parser:
        return parse_translation_server_event

    def _new_link_state(self) -> TranslateLinkState:
        return TranslateLinkState()

    def session_config(self) -> RealtimeTranslationSessionUpdateRequest:
        return RealtimeTranslationSessionUpdateRequest(
            audio=Audio(
                input=AudioInput(
                    transcription=AudioInputTranscription(model=self._settings.transcription_model)
                ),
                output=AudioOutput(language=self._spec.target.tag),
            )
        )

    def _session_update(self, event_id: str) -> BaseModel:
        return RealtimeTranslationSessionUpdateEvent(
            type="session.update", event_id=event_id, session=self.session_config()
        )

    def _audio_event(self, b64: str) -> BaseModel:
        return RealtimeTranslationInputAudioBufferAppendEvent(
            type="session.input_audio_buffer.append", audio=b64
        )

    def report_interrupted(self, item_id: str, played_samples: int) -> None:
        """Nothing to do: this endpoint keeps no conversation that could hold unheard text."""

    # --- lifetime hooks --------------------------------------------------------------------------
    def _local_speech_start(self) -> None:
        self._speech_started_now()

    def _resume_point(self, link: Link[TranslateLinkState]) -> int | None:
        start = self._feed.recent_speech_start(ms_to_samples(2000), ms_to_samples(_REPLAY_PAD_MS))
        run = self._feed.run_start
        if start is None or (run is not None and self._heard_run is not None and run <= self._heard_run):
            return None
        return start

    def _end_items(self, link: Link[TranslateLinkState]) -> None:
        self._close_item(link.state)

    def _clean_point(self, link: Link[TranslateLinkState]) -> bool:
        return not self._feed.voiced and self._feed.quiet_for() >= ms_to_samples(_CLEAN_QUIET_MS)

    def _has_pending_output(self, link: Link[TranslateLinkState]) -> bool:
        return not link.state.closed_by_server

    def _on_retire(self, link: Link[TranslateLinkState]) -> None:
        # The server flushes what it still holds, sends session.closed, and we close the socket.
        link.state.close_sent = True
        link.queue(RealtimeTranslationSessionCloseEvent(type="session.close"))

    def _tick(self, link: Link[TranslateLinkState]) -> None:
        st = link.state
        if st.item_id is None:
            return
        idle = asyncio.get_running_loop().time() - st.last_activity
        # An item with only text (the speaker already spoke the target language) waits longer for audio.
        limit = ITEM_IDLE_S if st.has_audio else 2 * ITEM_IDLE_S
        if idle >= limit or link.finished.is_set():
            self._close_item(st)

    # --- server events ---------------------------------------------------------------------------
    def _handle(self, link: Link[TranslateLinkState], event: BaseModel) -> None:
        st = link.state
        if isinstance(event, RealtimeTranslationOutputAudioDeltaEvent):
            self._on_audio(link, event)
        elif isinstance(event, RealtimeTranslationOutputTranscriptDeltaEvent):
            st.target_text += event.delta
            self._emit(TranslationTranscript(self._open_item(st), event.delta, final=False))
        elif isinstance(event, RealtimeTranslationInputTranscriptDeltaEvent):
            st.source_text += event.delta
            self._emit(SourceTranscript(self._open_item(st), event.delta, final=False))
        elif isinstance(event, RealtimeTranslationSessionClosedEvent):
            st.closed_by_server = True
            if st.item_id is not None:
                self._close_item(st)
        elif isinstance(event, RealtimeErrorEvent):
            err = event.error
            self._error_event(link, err.type, err.code, err.message)

    def _on_audio(
        self, link: Link[TranslateLinkState], event: RealtimeTranslationOutputAudioDeltaEvent
    ) -> None:
        st = link.state
        if (event.sample_rate not in (None, MODEL_RATE)) or (event.channels not in (None, 1)):
            ENGINE_UNKNOWN_EVENTS.labels(engine=self.engine_name, reason="audio_format").inc()
            log.warning(
                "lane %s: translated audio at %s Hz x %s channels skipped (24000 x 1 expected)",
                self._spec.lane_id,
                event.sample_rate,
                event.channels,
            )
            return
        try:
            pcm = base64.b64decode(event.delta, validate=True)
        except (binascii.Error, ValueError):
            ENGINE_UNKNOWN_EVENTS.labels(engine=self.engine_name, reason="malformed").inc()
            return
        if len(pcm) % BYTES_PER_SAMPLE:
            pcm = pcm[:-1]
        if not pcm:
            return
        if is_heartbeat(pcm):
            if st.item_id is not None and st.has_audio:
                self._close_item(st)
            return
        item = self._open_item(st)
        if not st.has_audio:
            self._heard_run = self._feed.run_start
        st.has_audio = True
        self._emit(TranslatedAudio(item, pcm))

    def _open_item(self, st: TranslateLinkState) -> str:
        if st.item_id is None:
            self._items += 1
            st.item_id = f"{self._spec.lane_id}-t{self._items}"
        st.last_activity = asyncio.get_running_loop().time()
        return st.item_id

    def _close_item(self, st: TranslateLinkState) -> None:
        item = st.item_id
        if item is None:
            return
        if st.source_text:
            self._emit(SourceTranscript(item, st.source_text, final=True))
        if st.target_text:
            self._emit(TranslationTranscript(item, st.target_text, final=True))
        self._emit(TranslationDone(item))
        st.item_id, st.has_audio, st.source_text, st.target_text = None, False, "", ""
