"""Engine `realtime`: a conversational realtime model (`/v1/realtime`) steered to interpret one speaker.

Server VAD decides the turns and creates one response per turn (`create_response`); it must never
cancel the translation of the previous sentence because the speaker went on talking
(`interrupt_response: false`). We never send `response.create` ourselves, except to retry a
response that failed with a retryable error, when no response is active.

Context is bounded by deleting the oldest conversation items beyond `context_items`, so the input
tokens of each response stay flat over a long meeting instead of growing with it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from dataclasses import dataclass, field

from openai.types.realtime import (
    AudioTranscription,
    ConversationItemAdded,
    ConversationItemCreatedEvent,
    ConversationItemDeletedEvent,
    ConversationItemDeleteEvent,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeAudioConfigOutput,
    RealtimeErrorEvent,
    RealtimeSessionCreateRequest,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCreatedEvent,
    ResponseCreateEvent,
    ResponseDoneEvent,
    SessionUpdateEvent,
)
from openai.types.realtime.realtime_audio_formats import AudioPCM
from openai.types.realtime.realtime_audio_input_turn_detection import (
    RealtimeAudioInputTurnDetection,
    SemanticVad,
    ServerVad,
)
from pydantic import BaseModel

from translator_bot.audio.formats import BYTES_PER_SAMPLE
from translator_bot.engine.base import (
    Clock,
    LaneSpec,
    SourceTranscript,
    SpeechStopped,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
    Usage,
)
from translator_bot.engine.connection import Parser
from translator_bot.engine.endpoint import Endpoint
from translator_bot.engine.feed import ms_to_samples, samples_to_ms
from translator_bot.engine.instructions import build_instructions
from translator_bot.engine.lifetime import is_retryable
from translator_bot.engine.protocol import parse_server_event
from translator_bot.engine.session import HEALTHY_AFTER_S, Link, ManagedSession
from translator_bot.glossary import load_glossary
from translator_bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_ITEMS = 8  # the last four sentences and their translations: enough for pronouns and names
_MAX_RESPONSE_RETRIES = 2


@dataclass
class RealtimeLinkState:
    items: list[str] = field(default_factory=list)  # conversation items in order (as far as we know)
    received: dict[str, int] = field(default_factory=dict)  # assistant item -> samples of audio received
    audio_done: set[str] = field(default_factory=set)
    truncated: dict[str, int] = field(default_factory=dict)  # item -> audio_end_ms sent
    pending_truncate: dict[str, int] = field(
        default_factory=dict
    )  # item -> played samples, item still streaming
    speech_open: int | None = None  # absolute input sample where the current speech started
    speech_starts: list[int] = field(default_factory=list)  # starts of speech not yet answered
    last_speech_end: int = 0
    committed_end: int = 0
    catch_ups: int = 0  # responses we asked for because the server skipped a turn
    covers: dict[str, int] = field(default_factory=dict)  # response id -> input it answers (up to)
    active: set[str] = field(default_factory=set)  # responses in progress
    answered_upto: int = 0
    started_upto: int = 0  # input covered by responses whose translated audio has begun to arrive
    texts: dict[str, str] = field(default_factory=dict)  # assistant item -> transcript until it is done
    retries: int = 0


class RealtimeSession(ManagedSession[RealtimeLinkState]):
    engine_name = "realtime"
    chunk_ms = 40  # small appends keep server VAD responsive: a turn ends at most 40 ms late

    def __init__(
        self,
        endpoint: Endpoint,
        spec: LaneSpec,
        settings: Settings,
        *,
        clock: Clock = time.monotonic,
        context_items: int | None = DEFAULT_CONTEXT_ITEMS,
        give_up_after_s: float | None = None,
        recycle_grace_s: float = 20.0,
        healthy_after_s: float = HEALTHY_AFTER_S,
    ) -> None:
        super().__init__(
            endpoint,
            spec,
            settings,
            clock=clock,
            give_up_after_s=give_up_after_s,
            recycle_grace_s=recycle_grace_s,
            healthy_after_s=healthy_after_s,
        )
        if context_items is not None and context_items < 2:
            raise ValueError("context_items must keep at least the current turn (>= 2) or be None")
        self._context_items = context_items

    # --- configuration ---------------------------------------------------------------------------
    def _parser(self) -> Parser:
        return parse_server_event

    def _new_link_state(self) -> RealtimeLinkState:
        return RealtimeLinkState()

    def _turn_detection(self) -> RealtimeAudioInputTurnDetection:
        s = self._settings
        if s.vad_type == "semantic_vad":
            return SemanticVad(type="semantic_vad", create_response=True, interrupt_response=False)
        return ServerVad(
            type="server_vad",
            threshold=s.vad_threshold,
            prefix_padding_ms=s.vad_prefix_padding_ms,
            silence_duration_ms=s.vad_silence_duration_ms,
            create_response=True,
            interrupt_response=False,
        )

    def session_config(self) -> RealtimeSessionCreateRequest:
        spec, s = self._spec, self._settings
        pcm24k = AudioPCM(type="audio/pcm", rate=24000)
        transcription = AudioTranscription(
            model=s.transcription_model, language=spec.source.base if spec.source is not None else None
        )
        return RealtimeSessionCreateRequest(
            type="realtime",
            instructions=build_instructions(spec, load_glossary(s.glossary) if s.glossary else None),
            output_modalities=["audio"],
            audio=RealtimeAudioConfig(
                input=RealtimeAudioConfigInput(
                    format=pcm24k,
                    transcription=transcription,
                    turn_detection=self._turn_detection(),
                ),
                output=RealtimeAudioConfigOutput(
                    format=AudioPCM(type="audio/pcm", rate=24000), voice=s.voice
                ),
            ),
        )

    def _session_update(self, event_id: str) -> BaseModel:
        return SessionUpdateEvent(type="session.update", event_id=event_id, session=self.session_config())

    def _audio_event(self, b64: str) -> BaseModel:
        return InputAudioBufferAppendEvent(type="input_audio_buffer.append", audio=b64)

    # --- truncation ------------------------------------------------------------------------------
    def report_interrupted(self, item_id: str, played_samples: int) -> None:
        try:
            self._interrupted(item_id, played_samples)
        except Exception:
            log.exception("lane %s: could not truncate %s", self._spec.lane_id, item_id)

    def _interrupted(self, item_id: str, played_samples: int) -> None:
        link = next((lk for lk in self._links if item_id in lk.state.received), None)
        if link is None:
            # The item lives in a server session that is gone (drop or recycle): nothing to fix.
            log.debug("lane %s: truncate of unknown item %s skipped", self._spec.lane_id, item_id)
            return
        played = max(0, int(played_samples))
        if item_id not in link.state.audio_done:
            # More audio may still arrive for it; truncate once we know how much the item really has.
            link.state.pending_truncate[item_id] = min(
                played, link.state.pending_truncate.get(item_id, played)
            )
            return
        self._send_truncate(link, item_id, played)

    def _send_truncate(self, link: Link[RealtimeLinkState], item_id: str, played: int) -> None:
        st = link.state
        received = st.received.get(item_id, 0)
        if played >= received:
            return  # everything the item has was heard: the context already matches
        # Clamp to what the item has and to what was played; whole ms rounded down never overshoot.
        end_ms = samples_to_ms(min(played, received))
        previous = st.truncated.get(item_id)
        if previous is not None and previous <= end_ms:
            return
        st.truncated[item_id] = end_ms
        link.queue(
            ConversationItemTruncateEvent(
                type="conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=end_ms
            )
        )

    # --- lifetime hooks --------------------------------------------------------------------------
    def _resume_point(self, link: Link[RealtimeLinkState]) -> int | None:
        st = link.state
        pad = ms_to_samples(self._settings.vad_prefix_padding_ms)
        # Speech whose translation was already being heard is not sent again: a listener would hear
        # its first words twice. What the drop cut off of that translation is lost instead.
        covered = max(st.answered_upto, st.started_upto)
        points = [s for s in st.speech_starts if s >= covered]
        if st.speech_open is not None:
            points.append(st.speech_open)
        local = self._feed.recent_speech_start(ms_to_samples(2000), pad)
        newest_server = max(st.speech_starts, default=None)
        if local is not None and (newest_server is None or local > newest_server + pad + ms_to_samples(500)):
            points.append(local)  # speech the server had not reported yet when the socket went
        # Server starts already include the VAD's prefix padding, the local one adds its own.
        return min(points) if points else None

    def _clean_point(self, link: Link[RealtimeLinkState]) -> bool:
        return link.state.speech_open is None and not self._feed.voiced

    def _switch_point(self, link: Link[RealtimeLinkState]) -> int | None:
        # The speech going on moves whole to the new link; the old one is told to forget it.
        points = []
        if link.state.speech_open is not None:
            points.append(link.state.speech_open)
        if self._feed.voiced:
            local = self._feed.recent_speech_start(0, ms_to_samples(self._settings.vad_prefix_padding_ms))
            if local is not None:
                points.append(local)
        return min(points) if points else None

    def _end_items(self, link: Link[RealtimeLinkState]) -> None:
        st = link.state
        for item_id, text in list(st.texts.items()):
            # Cut off with its session: the transcript keeps what was said of it.
            st.texts.pop(item_id)
            self._emit(TranslationTranscript(item_id, text, final=True))
        for item_id in list(st.received):
            if item_id not in st.audio_done:
                log.info(
                    "lane %s: %s ended with its session after %d ms of audio",
                    self._spec.lane_id,
                    item_id,
                    samples_to_ms(st.received[item_id]),
                )
                self._item_audio_done(link, item_id)

    def _has_pending_output(self, link: Link[RealtimeLinkState]) -> bool:
        st = link.state
        return bool(st.active) or st.committed_end > st.answered_upto

    def _on_retire(self, link: Link[RealtimeLinkState]) -> None:
        if link.state.speech_open is not None or self._feed.voiced:
            # The new link hears this speech again from its start; the old one must not answer half of it.
            link.queue(InputAudioBufferClearEvent(type="input_audio_buffer.clear"))
            link.state.speech_open = None

    # --- server events ---------------------------------------------------------------------------
    def _abs(self, link: Link[RealtimeLinkState], ms: int) -> int:
        return link.origin + ms_to_samples(ms)

    def _handle(self, link: Link[RealtimeLinkState], event: BaseModel) -> None:
        st = link.state
        if isinstance(event, ResponseAudioDeltaEvent):
            self._on_audio(link, event)
        elif isinstance(event, ResponseAudioTranscriptDeltaEvent):
            st.texts[event.item_id] = st.texts.get(event.item_id, "") + event.delta
            self._emit(TranslationTranscript(event.item_id, event.delta, final=False))
        elif isinstance(event, ResponseAudioTranscriptDoneEvent):
            st.texts.pop(event.item_id, None)
            self._emit(TranslationTranscript(event.item_id, event.transcript, final=True))
        elif isinstance(event, ResponseAudioDoneEvent):
            self._item_audio_done(link, event.item_id)
        elif isinstance(event, InputAudioBufferSpeechStartedEvent):
            start = self._abs(link, event.audio_start_ms)
            st.speech_open = start
            st.speech_starts.append(start)
            self._speech_started_now()
        elif isinstance(event, InputAudioBufferSpeechStoppedEvent):
            st.speech_open = None
            st.last_speech_end = self._abs(link, event.audio_end_ms)
            self._emit(SpeechStopped(self._clock()))
        elif isinstance(event, InputAudioBufferCommittedEvent):
            st.committed_end = max(st.committed_end, st.last_speech_end, 1)
        elif isinstance(event, ConversationItemAdded | ConversationItemCreatedEvent):
            item_id = event.item.id
            if item_id and item_id not in st.items:
                st.items.append(item_id)
        elif isinstance(event, ConversationItemDeletedEvent):
            self._forget(st, event.item_id)
        elif isinstance(event, ConversationItemInputAudioTranscriptionDeltaEvent):
            if event.delta:
                self._emit(SourceTranscript(event.item_id, event.delta, final=False))
        elif isinstance(event, ConversationItemInputAudioTranscriptionCompletedEvent):
            self._emit(SourceTranscript(event.item_id, event.transcript, final=True))
        elif isinstance(event, ConversationItemInputAudioTranscriptionFailedEvent):
            log.info(
                "lane %s: transcription of %s failed: %s", self._spec.lane_id, event.item_id, event.error.code
            )
        elif isinstance(event, ResponseCreatedEvent):
            if event.response.id:
                st.active.add(event.response.id)
                st.covers[event.response.id] = st.committed_end
        elif isinstance(event, ResponseDoneEvent):
            self._on_response_done(link, event)
        elif isinstance(event, RealtimeErrorEvent):
            err = event.error
            if err.code == "conversation_already_has_active_response" and (err.event_id or "").startswith(
                "retry"
            ):
                return  # our retry raced a response the server made itself: harmless
            self._error_event(link, err.type, err.code, err.message)

    def _on_audio(self, link: Link[RealtimeLinkState], event: ResponseAudioDeltaEvent) -> None:
        try:
            pcm = base64.b64decode(event.delta, validate=True)
        except (binascii.Error, ValueError):
            log.warning("lane %s: audio delta that is not base64 skipped", self._spec.lane_id)
            return
        if len(pcm) % BYTES_PER_SAMPLE:
            pcm = pcm[:-1]
        if not pcm:
            return
        st = link.state
        if event.item_id not in st.received:
            st.started_upto = max(st.started_upto, st.covers.get(event.response_id, 0))
        st.received[event.item_id] = st.received.get(event.item_id, 0) + len(pcm) // BYTES_PER_SAMPLE
        self._emit(TranslatedAudio(event.item_id, pcm))

    def _item_audio_done(self, link: Link[RealtimeLinkState], item_id: str) -> None:
        st = link.state
        if item_id in st.audio_done:
            return
        st.audio_done.add(item_id)
        st.received.setdefault(item_id, 0)
        self._emit(TranslationDone(item_id))
        played = st.pending_truncate.pop(item_id, None)
        if played is not None:
            self._send_truncate(link, item_id, played)

    def _on_response_done(self, link: Link[RealtimeLinkState], event: ResponseDoneEvent) -> None:
        st = link.state
        resp = event.response
        rid = resp.id or ""
        st.active.discard(rid)
        for item in resp.output or []:
            if item.id and item.type == "message":
                self._item_audio_done(link, item.id)
        if resp.usage is not None:
            details = resp.usage.input_token_details
            cached = details.cached_tokens_details if details is not None else None
            out = resp.usage.output_token_details
            usage = Usage(
                input_tokens=resp.usage.input_tokens or 0,
                output_tokens=resp.usage.output_tokens or 0,
                cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
                input_audio_tokens=(details.audio_tokens or 0) if details is not None else 0,
                cached_audio_tokens=(cached.audio_tokens or 0) if cached is not None else 0,
                output_audio_tokens=(out.audio_tokens or 0) if out is not None else 0,
            )
            self._add_usage(usage)  # counted in the metrics by the lane, once
        covered = st.covers.pop(rid, None)
        if resp.status == "completed" and covered is not None:
            st.answered_upto = max(st.answered_upto, covered)
            st.speech_starts = [s for s in st.speech_starts if s >= st.answered_upto]
            st.retries = 0
            self._answer_missed_turn(link)
        elif resp.status == "failed":
            self._maybe_retry(link, resp.status_details)
        self._bound_context(link)

    def _answer_missed_turn(self, link: Link[RealtimeLinkState]) -> None:
        """With `interrupt_response` off, a sentence that ends while the previous translation is still
        being generated gets no response from the server. Ask for it once nothing is active, so a
        speaker who talks on never loses a sentence. (No race with server VAD: it creates responses
        only at a commit, and a late duplicate is refused as `conversation_already_has_active_response`.)"""
        st = link.state
        if st.active or st.committed_end <= st.answered_upto:
            return
        st.catch_ups += 1
        log.info("lane %s: translating a sentence that ended during the previous one", self._spec.lane_id)
        link.queue(
            ResponseCreateEvent(type="response.create", event_id=f"retry_turn_{link.serial}_{st.catch_ups}")
        )

    def _maybe_retry(self, link: Link[RealtimeLinkState], details: object) -> None:
        error = getattr(details, "error", None)
        etype, code = getattr(error, "type", None), getattr(error, "code", None)
        st = link.state
        if not is_retryable(etype, code) or st.active or st.retries >= _MAX_RESPONSE_RETRIES:
            log.warning("lane %s: a response failed (%s/%s)", self._spec.lane_id, etype, code)
            return
        st.retries += 1
        log.info("lane %s: retrying a response that failed (%s/%s)", self._spec.lane_id, etype, code)
        link.queue(ResponseCreateEvent(type="response.create", event_id=f"retry_{link.serial}_{st.retries}"))

    def _bound_context(self, link: Link[RealtimeLinkState]) -> None:
        if self._context_items is None:
            return
        st = link.state
        while len(st.items) > self._context_items:
            victim = st.items[0]
            if victim in st.received and victim not in st.audio_done:
                break  # still being spoken
            st.items.pop(0)
            link.queue(ConversationItemDeleteEvent(type="conversation.item.delete", item_id=victim))
            st.received.pop(victim, None)
            st.audio_done.discard(victim)
            st.truncated.pop(victim, None)
            st.texts.pop(victim, None)

    @staticmethod
    def _forget(st: RealtimeLinkState, item_id: str) -> None:
        if item_id in st.items:
            st.items.remove(item_id)
