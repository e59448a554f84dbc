"""Engine `translate`: the dedicated simultaneous-translation endpoint (`/v1/realtime/translations`).

Only the target language is set (the listener's); the source is detected. Input is streamed without
pause, silence included, in the endpoint's 200 ms frames: a gap in the input would be read as
contiguous time. The endpoint has no turns or items, so a run of translated audio is grouped into a
synthetic item id that ends at an all-zero "heartbeat" chunk or after a quiet spell; heartbeats are
never passed on, so they cannot build up playout delay.

The endpoint interprets while the speaker goes on, so the transcript of her next sentence can arrive
while the previous translation is still streaming, and no event says which translation a source
delta belongs to: deltas carry only `elapsed_ms`, the position on the input's audio clock of the
frame they were produced in. Source text is therefore cut into segments where the speaker moved on
(`starts_new_sentence`: a pause in `elapsed_ms` after a finished sentence), each segment is its own
item, and translated output goes to the oldest open item: segment k pairs with translation k.
It reports no token usage and has no truncation: `report_interrupted` has nothing to fix.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections import deque
from dataclasses import dataclass, field

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
from translator_bot.glossary import warn_unused_once
from translator_bot.metrics import ENGINE_UNKNOWN_EVENTS

log = logging.getLogger(__name__)

ITEM_IDLE_S = 1.5  # no translated audio for this long ends the item even without a heartbeat
TRANSLATION_WAIT_S = 10.0  # an original at the front with no translation yet, and no heartbeat
_CLEAN_QUIET_MS = 300
_REPLAY_PAD_MS = 300  # audio sent again before a speech start, so its first syllable is not clipped


# Two source deltas this far apart on the input's clock, the first ending a sentence, are two sentences.
SENTENCE_GAP_MS = 600
# This far apart they are two segments even without punctuation (a transcript that has none).
SEGMENT_GAP_MS = 2000
# Originals waiting for their translations beyond this many: the oldest is ended without one.
MAX_OPEN_ITEMS = 8
_SENTENCE_END = (".", "!", "?", "…", "。", "！", "？", "؟", "।")
_CLOSING = "\"')»”’」』)]"


@dataclass
class TranslateItem:
    item_id: str
    last_activity: float  # loop time of the item's last audio or text (or of reaching the front)
    has_audio: bool = False
    source_text: str = ""
    target_text: str = ""
    source_elapsed_ms: int | None = None  # `elapsed_ms` of its latest source delta
    source_arrived: float = 0.0  # loop time its latest source delta arrived


@dataclass
class TranslateLinkState:
    # Open items, oldest first: translated output goes to the first, source text to the last.
    items: deque[TranslateItem] = field(default_factory=deque)
    closed_by_server: bool = False
    close_sent: bool = False


def is_heartbeat(pcm: bytes) -> bool:
    return pcm.count(0) == len(pcm)


def ends_sentence(text: str) -> bool:
    return text.rstrip().rstrip(_CLOSING).endswith(_SENTENCE_END)


def starts_new_sentence(previous_text: str, gap_ms: float) -> bool:
    """Whether a source delta heard `gap_ms` after the segment so far (`previous_text`) begins the
    next segment rather than continuing this one."""
    if not previous_text.strip():
        return False
    return gap_ms >= SEGMENT_GAP_MS or (gap_ms >= SENTENCE_GAP_MS and ends_sentence(previous_text))


def starts_next_translation(previous_text: str, delta: str) -> bool:
    """Whether an output delta begins a new sentence after a translation that has ended one (called
    only when the next original is already waiting for its translation)."""
    return ends_sentence(previous_text) and (delta[:1].isspace() or previous_text[-1:].isspace())


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
        if self._settings.glossary is not None:
            warn_unused_once(self.engine_name)
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
        self._close_all(link.state)

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
        if not st.items:
            return
        if link.finished.is_set():
            self._close_all(st)
            return
        item = st.items[0]
        idle = asyncio.get_running_loop().time() - item.last_activity
        # An original waits for its translation, which may come after the speaker's own pause before
        # it; a heartbeat ends the wait sooner (the endpoint is idle: the speaker already spoke the
        # target language, or it found nothing to translate).
        limit = ITEM_IDLE_S if item.has_audio else TRANSLATION_WAIT_S
        if idle >= limit:
            self._close_front(st)

    # --- server events ---------------------------------------------------------------------------
    def _handle(self, link: Link[TranslateLinkState], event: BaseModel) -> None:
        st = link.state
        if isinstance(event, RealtimeTranslationOutputAudioDeltaEvent):
            self._on_audio(link, event)
        elif isinstance(event, RealtimeTranslationOutputTranscriptDeltaEvent):
            front = st.items[0] if st.items else None
            if (
                front is not None
                and len(st.items) > 1
                and front.target_text
                and starts_next_translation(front.target_text, event.delta)
            ):
                # The endpoint streams one translation after another without a heartbeat between
                # them: a finished sentence, and the next original already waiting, end this one.
                self._close_front(st)
            item = self._output_item(st)
            item.target_text += event.delta
            self._emit(TranslationTranscript(item.item_id, event.delta, final=False))
        elif isinstance(event, RealtimeTranslationInputTranscriptDeltaEvent):
            self._on_source(st, event)
        elif isinstance(event, RealtimeTranslationSessionClosedEvent):
            st.closed_by_server = True
            self._close_all(st)
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
            if st.items and (st.items[0].has_audio or st.items[0].target_text):
                self._close_front(st)  # the translation is over
            elif st.items and st.items[0].source_text:
                self._close_front(st)  # idle with an original in: no translation is coming for it
            return
        item = self._output_item(st)
        if not item.has_audio:
            self._heard_run = self._feed.run_start
        item.has_audio = True
        self._emit(TranslatedAudio(item.item_id, pcm))

    def _on_source(self, st: TranslateLinkState, event: RealtimeTranslationInputTranscriptDeltaEvent) -> None:
        now = asyncio.get_running_loop().time()
        last = st.items[-1] if st.items else None
        if last is not None:
            if event.elapsed_ms is not None and last.source_elapsed_ms is not None:
                gap_ms: float = event.elapsed_ms - last.source_elapsed_ms
            else:  # no timing from the endpoint: the time the deltas arrived stands in for it
                gap_ms = (now - last.source_arrived) * 1000
            if starts_new_sentence(last.source_text, gap_ms):
                last = None
        item = last if last is not None else self._new_item(st)
        item.source_text += event.delta
        item.source_arrived, item.last_activity = now, now
        if event.elapsed_ms is not None:
            item.source_elapsed_ms = event.elapsed_ms
        self._emit(SourceTranscript(item.item_id, event.delta, final=False))

    def _output_item(self, st: TranslateLinkState) -> TranslateItem:
        """The item translated output belongs to: the oldest open one (whose original came first)."""
        item = st.items[0] if st.items else self._new_item(st)
        item.last_activity = asyncio.get_running_loop().time()
        return item

    def _new_item(self, st: TranslateLinkState) -> TranslateItem:
        if len(st.items) >= MAX_OPEN_ITEMS:
            self._close_front(st)
        self._items += 1
        item = TranslateItem(f"{self._spec.lane_id}-t{self._items}", asyncio.get_running_loop().time())
        st.items.append(item)
        return item

    def _close_front(self, st: TranslateLinkState) -> None:
        item = st.items.popleft()
        if st.items:  # the next original starts waiting for its translation now
            st.items[0].last_activity = asyncio.get_running_loop().time()
        if item.source_text:
            self._emit(SourceTranscript(item.item_id, item.source_text, final=True))
        if item.target_text:
            self._emit(TranslationTranscript(item.item_id, item.target_text, final=True))
        self._emit(TranslationDone(item.item_id))

    def _close_all(self, st: TranslateLinkState) -> None:
        while st.items:
            self._close_front(st)
