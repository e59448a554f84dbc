"""Engine `realtime`: a conversational realtime model (`/v1/realtime`) steered to interpret one speaker.

Server VAD decides the turns and creates one response per turn (configuration: `realtime_config`).
We never send `response.create` ourselves, except to retry a response that failed with a retryable
error, or to answer a sentence that ended while the previous one was being translated.

Context is bounded by deleting the oldest conversation items beyond `context_items`, so the input
tokens of each response stay flat over a long meeting instead of growing with it.

`RealtimeEngine` is the protocol (pure: state and event in, `Step` out); `RealtimeSession` is a lane's
session, the supervisor driving that engine.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from dataclasses import dataclass, field

from pydantic import BaseModel

from translator_bot.audio.formats import BYTES_PER_SAMPLE, MODEL_RATE
from translator_bot.audio.pcm import ms_to_samples
from translator_bot.engine.base import (
    Clock,
    LaneSpec,
    SourceTranscript,
    SpeechStarted,
    SpeechStopped,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
    Usage,
)
from translator_bot.engine.endpoint import Endpoint
from translator_bot.engine.feed import AudioFeed, samples_to_ms
from translator_bot.engine.lifetime import is_retryable
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime_config import session_config
from translator_bot.engine.silence_gate import realtime_rest_after_ms, realtime_settled
from translator_bot.engine.step import NOTHING, At, Step, error_step
from translator_bot.engine.supervisor import HEALTHY_AFTER_S, SupervisedSession
from translator_bot.engine.wire import ErrorEvent
from translator_bot.engine.wire_realtime import (
    InputAudioAppend,
    InputAudioClear,
    InputCommitted,
    InputTranscriptCompleted,
    InputTranscriptDelta,
    InputTranscriptFailed,
    ItemAdded,
    ItemCreated,
    ItemDelete,
    ItemDeleted,
    ItemTruncate,
    OutputAudioDelta,
    OutputAudioDone,
    OutputTranscriptDelta,
    OutputTranscriptDone,
    ResponseCreate,
    ResponseCreated,
    ResponseDone,
    SessionUpdate,
    parse_server_event,
)
from translator_bot.engine.wire_realtime import SpeechStarted as ServerSpeechStarted
from translator_bot.engine.wire_realtime import SpeechStopped as ServerSpeechStopped

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_ITEMS = 8  # the last four sentences and their translations: enough for pronouns and names
_MAX_RESPONSE_RETRIES = 2
_LOCAL_RESUME_WITHIN_MS = 2000  # speech the input gate heard this recently is sent again after a drop
_LOCAL_AHEAD_MS = 500  # a local start this far after the server's newest is speech the server missed


def _samples(ms: int) -> int:
    return ms_to_samples(ms, MODEL_RATE)


@dataclass
class RealtimeLinkState:
    items: list[str] = field(default_factory=list)  # conversation items in order (as far as we know)
    received: dict[str, int] = field(default_factory=dict)  # assistant item -> samples of audio received
    audio_done: set[str] = field(default_factory=set)
    truncated: dict[str, int] = field(default_factory=dict)  # item -> audio_end_ms sent
    pending_truncate: dict[str, int] = field(
        default_factory=dict
    )  # item -> heard samples, item still streaming
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


class RealtimeEngine:
    """The `/v1/realtime` protocol for one lane; every method is a pure step on a socket's state."""

    name = "realtime"
    # One room frame per append: the server VAD hears the end of a turn as soon as the bot does
    # (40 ms appends held every other frame back, 10 ms on average). ~10 us of JSON and base64 each.
    chunk_ms = 20

    def __init__(self, options: EngineOptions, *, context_items: int | None = DEFAULT_CONTEXT_ITEMS) -> None:
        if context_items is not None and context_items < 2:
            raise ValueError("context_items must keep at least the current turn (>= 2) or be None")
        self.options = options
        self.context_items = context_items

    def parse(self, raw: str | bytes) -> BaseModel:
        return parse_server_event(raw)

    def new_state(self) -> RealtimeLinkState:
        return RealtimeLinkState()

    # --- configuration ---------------------------------------------------------------------------
    def session_update(self, spec: LaneSpec, event_id: str) -> BaseModel:
        return SessionUpdate(event_id=event_id, session=session_config(self.options, spec))

    def append(self, pcm: bytes) -> BaseModel:
        return InputAudioAppend(audio=base64.b64encode(pcm).decode("ascii"))

    # --- cut short -------------------------------------------------------------------------------
    def owns_item(self, state: RealtimeLinkState, item_id: str) -> bool:
        return item_id in state.received

    def on_cut_short(self, state: RealtimeLinkState, item_id: str, heard_samples: int) -> Step:
        heard = max(0, int(heard_samples))
        if item_id not in state.audio_done:
            # More audio may still arrive for it; truncate once we know how much the item really has.
            state.pending_truncate[item_id] = min(heard, state.pending_truncate.get(item_id, heard))
            return NOTHING
        return self._truncate(state, item_id, heard)

    def _truncate(self, st: RealtimeLinkState, item_id: str, heard: int) -> Step:
        received = st.received.get(item_id, 0)
        if heard >= received:
            return NOTHING  # everything the item has was heard: the context already matches
        # Clamp to what the item has and to what was heard; whole ms rounded down never overshoot.
        end_ms = samples_to_ms(min(heard, received))
        previous = st.truncated.get(item_id)
        if previous is not None and previous <= end_ms:
            return NOTHING
        st.truncated[item_id] = end_ms
        truncate = ItemTruncate(item_id=item_id, content_index=0, audio_end_ms=end_ms)
        return Step(sends=[truncate])

    # --- moving between sockets ------------------------------------------------------------------
    def resume_point(self, state: RealtimeLinkState, feed: AudioFeed) -> int | None:
        st = state
        pad = _samples(self.options.vad_prefix_padding_ms)
        # Speech whose translation was already being heard is not sent again: a listener would hear
        # its first words twice. What the drop cut off of that translation is lost instead.
        covered = max(st.answered_upto, st.started_upto)
        points = [s for s in st.speech_starts if s >= covered]
        if st.speech_open is not None:
            points.append(st.speech_open)
        local = feed.recent_speech_start(_samples(_LOCAL_RESUME_WITHIN_MS), pad)
        newest_server = max(st.speech_starts, default=None)
        if local is not None and (
            newest_server is None or local > newest_server + pad + _samples(_LOCAL_AHEAD_MS)
        ):
            points.append(local)  # speech the server had not reported yet when the socket went
        # Server starts already include the VAD's prefix padding, the local one adds its own.
        return min(points) if points else None

    def clean_point(self, state: RealtimeLinkState, feed: AudioFeed) -> bool:
        return state.speech_open is None and not feed.voiced

    def switch_point(self, state: RealtimeLinkState, feed: AudioFeed) -> int | None:
        # The speech going on moves whole to the new socket; the old one is told to forget it.
        points = []
        if state.speech_open is not None:
            points.append(state.speech_open)
        if feed.voiced:
            local = feed.recent_speech_start(0, _samples(self.options.vad_prefix_padding_ms))
            if local is not None:
                points.append(local)
        return min(points) if points else None

    def end_items(self, state: RealtimeLinkState, at: At) -> Step:
        st = state
        step = NOTHING
        for item_id, text in list(st.texts.items()):
            # Cut off with its session: the transcript keeps what was said of it.
            st.texts.pop(item_id)
            step += Step([TranslationTranscript(item_id, text, final=True)])
        for item_id in list(st.received):
            if item_id not in st.audio_done:
                log.info(
                    "lane %s: %s ended with its session after %d ms of audio",
                    at.lane_id,
                    item_id,
                    samples_to_ms(st.received[item_id]),
                )
                step += self._item_audio_done(st, item_id)
        return step

    def has_pending_output(self, state: RealtimeLinkState) -> bool:
        return bool(state.active) or state.committed_end > state.answered_upto

    def on_retire(self, state: RealtimeLinkState, feed: AudioFeed) -> Step:
        if state.speech_open is None and not feed.voiced:
            return NOTHING
        # The new socket hears this speech again from its start; the old one must not answer half of it.
        state.speech_open = None
        return Step(sends=[InputAudioClear()])

    def rest_after_ms(self) -> int:
        return realtime_rest_after_ms(self.options.vad_type, self.options.vad_silence_duration_ms)

    def input_settled(self, state: RealtimeLinkState, feed: AudioFeed) -> bool:
        return realtime_settled(state.speech_open is not None, feed.voiced)

    def on_tick(self, state: RealtimeLinkState, at: At, *, finished: bool) -> Step:
        return NOTHING

    def on_local_speech_start(self, at: At) -> Step:
        return NOTHING  # the server's VAD reports speech

    # --- server events ---------------------------------------------------------------------------
    def on_server_event(self, state: RealtimeLinkState, event: BaseModel, at: At) -> Step:
        st = state
        if isinstance(event, OutputAudioDelta):
            return self._on_audio(st, event, at)
        if isinstance(event, OutputTranscriptDelta):
            st.texts[event.item_id] = st.texts.get(event.item_id, "") + event.delta
            return Step([TranslationTranscript(event.item_id, event.delta, final=False)])
        if isinstance(event, OutputTranscriptDone):
            st.texts.pop(event.item_id, None)
            return Step([TranslationTranscript(event.item_id, event.transcript, final=True)])
        if isinstance(event, OutputAudioDone):
            return self._item_audio_done(st, event.item_id)
        if isinstance(event, ServerSpeechStarted):
            start = at.input_sample(_samples(event.audio_start_ms))
            st.speech_open = start
            st.speech_starts.append(start)
            return Step([SpeechStarted(at.clock())])
        if isinstance(event, ServerSpeechStopped):
            st.speech_open = None
            st.last_speech_end = at.input_sample(_samples(event.audio_end_ms))
            return Step([SpeechStopped(at.clock())])
        if isinstance(event, InputCommitted):
            st.committed_end = max(st.committed_end, st.last_speech_end, 1)
        elif isinstance(event, ItemAdded | ItemCreated):
            item_id = event.item.id
            if item_id and item_id not in st.items:
                st.items.append(item_id)
        elif isinstance(event, ItemDeleted):
            if event.item_id in st.items:
                st.items.remove(event.item_id)
        elif isinstance(event, InputTranscriptDelta):
            if event.delta:
                return Step([SourceTranscript(event.item_id, event.delta, final=False)])
        elif isinstance(event, InputTranscriptCompleted):
            return Step([SourceTranscript(event.item_id, event.transcript, final=True)])
        elif isinstance(event, InputTranscriptFailed):
            log.info("lane %s: transcription of %s failed: %s", at.lane_id, event.item_id, event.error.code)
        elif isinstance(event, ResponseCreated):
            if event.response.id:
                st.active.add(event.response.id)
                st.covers[event.response.id] = st.committed_end
        elif isinstance(event, ResponseDone):
            return self._on_response_done(st, event, at)
        elif isinstance(event, ErrorEvent):
            err = event.error
            if err.code == "conversation_already_has_active_response" and (err.event_id or "").startswith(
                "retry"
            ):
                return NOTHING  # our retry raced a response the server made itself: harmless
            return error_step(err.type, err.code, err.message, at)
        return NOTHING

    def _on_audio(self, st: RealtimeLinkState, event: OutputAudioDelta, at: At) -> Step:
        try:
            pcm = base64.b64decode(event.delta, validate=True)
        except (binascii.Error, ValueError):
            log.warning("lane %s: audio delta that is not base64 skipped", at.lane_id)
            return NOTHING
        if len(pcm) % BYTES_PER_SAMPLE:
            pcm = pcm[:-1]
        if not pcm:
            return NOTHING
        if event.item_id not in st.received:
            st.started_upto = max(st.started_upto, st.covers.get(event.response_id, 0))
        st.received[event.item_id] = st.received.get(event.item_id, 0) + len(pcm) // BYTES_PER_SAMPLE
        return Step([TranslatedAudio(event.item_id, pcm)])

    def _item_audio_done(self, st: RealtimeLinkState, item_id: str) -> Step:
        if item_id in st.audio_done:
            return NOTHING
        st.audio_done.add(item_id)
        st.received.setdefault(item_id, 0)
        step = Step([TranslationDone(item_id)])
        heard = st.pending_truncate.pop(item_id, None)
        if heard is not None:
            step += self._truncate(st, item_id, heard)
        return step

    def _on_response_done(self, st: RealtimeLinkState, event: ResponseDone, at: At) -> Step:
        resp = event.response
        rid = resp.id or ""
        st.active.discard(rid)
        step = NOTHING
        for item in resp.output or []:
            if item.id and item.type == "message":
                step += self._item_audio_done(st, item.id)
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
            step += Step([usage])  # counted in the metrics by the lane, once
        covered = st.covers.pop(rid, None)
        if resp.status == "completed" and covered is not None:
            st.answered_upto = max(st.answered_upto, covered)
            st.speech_starts = [s for s in st.speech_starts if s >= st.answered_upto]
            st.retries = 0
            step += self.answer_missed_turn(st, at)
        elif resp.status == "failed":
            step += self.retry_failed(st, resp.status_details, at)
        return step + self.bound_context(st)

    def answer_missed_turn(self, st: RealtimeLinkState, at: At) -> Step:
        """With `interrupt_response` off, a sentence that ends while the previous translation is still
        being generated gets no response from the server. Ask for it once nothing is active, so a
        speaker who talks on never loses a sentence. (No race with server VAD: it creates responses
        only at a commit, and a late duplicate is refused as `conversation_already_has_active_response`.)"""
        if st.active or st.committed_end <= st.answered_upto:
            return NOTHING
        st.catch_ups += 1
        log.info("lane %s: translating a sentence that ended during the previous one", at.lane_id)
        event_id = f"retry_turn_{at.serial}_{st.catch_ups}"
        return Step(sends=[ResponseCreate(event_id=event_id)])

    def retry_failed(self, st: RealtimeLinkState, details: object, at: At) -> Step:
        error = getattr(details, "error", None)
        etype, code = getattr(error, "type", None), getattr(error, "code", None)
        if not is_retryable(etype, code) or st.active or st.retries >= _MAX_RESPONSE_RETRIES:
            log.warning("lane %s: a response failed (%s/%s)", at.lane_id, etype, code)
            return NOTHING
        st.retries += 1
        log.info("lane %s: retrying a response that failed (%s/%s)", at.lane_id, etype, code)
        event_id = f"retry_{at.serial}_{st.retries}"
        return Step(sends=[ResponseCreate(event_id=event_id)])

    def bound_context(self, st: RealtimeLinkState) -> Step:
        if self.context_items is None:
            return NOTHING
        deletes: list[BaseModel] = []
        while len(st.items) > self.context_items:
            victim = st.items[0]
            if victim in st.received and victim not in st.audio_done:
                break  # still being spoken
            st.items.pop(0)
            deletes.append(ItemDelete(item_id=victim))
            st.received.pop(victim, None)
            st.audio_done.discard(victim)
            st.truncated.pop(victim, None)
            st.texts.pop(victim, None)
        return Step(sends=deletes)


class RealtimeSession(SupervisedSession[RealtimeLinkState]):
    """A lane's session on the realtime endpoint."""

    def __init__(
        self,
        endpoint: Endpoint,
        spec: LaneSpec,
        options: EngineOptions,
        *,
        clock: Clock = time.monotonic,
        context_items: int | None = DEFAULT_CONTEXT_ITEMS,
        give_up_after_s: float | None = None,
        recycle_grace_s: float = 20.0,
        healthy_after_s: float = HEALTHY_AFTER_S,
    ) -> None:
        super().__init__(
            RealtimeEngine(options, context_items=context_items),
            endpoint,
            spec,
            options,
            clock=clock,
            give_up_after_s=give_up_after_s,
            recycle_grace_s=recycle_grace_s,
            healthy_after_s=healthy_after_s,
        )
