"""Engine `translate`: the dedicated simultaneous-translation endpoint (`/v1/realtime/translations`).

Only the target language is set (the listener's); the source is detected. Input is streamed without
pause, silence included: a gap in the input would be read as contiguous time. Only once the endpoint
has said all it will about the speech, and at least a segment's gap of quiet was sent, does the lane
rest until the next sound (`engine.silence_gate`). The endpoint has no turns or items, so a run of
translated audio is grouped into a synthetic item id that ends at an all-zero "heartbeat" chunk or
after a quiet spell; heartbeats are never passed on, so they cannot build up playout delay.

The endpoint interprets while the speaker goes on, so the transcript of her next sentence can arrive
while the previous translation is still streaming, and no event says which translation a source
delta belongs to: deltas carry only `elapsed_ms`, the position on the input's audio clock of the
frame they were produced in. Source text is therefore cut into segments where the speaker moved on
(`starts_new_sentence`: a pause in `elapsed_ms` after a finished sentence), each segment is its own
item, and translated output goes to the oldest open item: segment k pairs with translation k.
It reports no token usage and has no truncation: `report_cut_short` has nothing to fix.

`TranslateEngine` is the protocol (state and event in, `Step` out); `TranslateSession` is a lane's
session, the supervisor driving that engine.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel

from translator_bot.audio.formats import BYTES_PER_SAMPLE, MODEL_RATE
from translator_bot.audio.pcm import ms_to_samples
from translator_bot.engine.base import (
    Clock,
    EngineEvent,
    LaneSpec,
    SourceTranscript,
    SpeechStarted,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
)
from translator_bot.engine.endpoint import Endpoint
from translator_bot.engine.feed import AudioFeed
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.silence_gate import translate_settled
from translator_bot.engine.step import NOTHING, At, Step, error_step
from translator_bot.engine.supervisor import HEALTHY_AFTER_S, SupervisedSession
from translator_bot.engine.wire import ErrorEvent
from translator_bot.engine.wire_translate import (
    Audio,
    AudioInput,
    AudioOutput,
    InputAudioAppend,
    InputTranscriptDelta,
    InputTranscription,
    OutputAudioDelta,
    OutputTranscriptDelta,
    SessionClose,
    SessionClosed,
    SessionConfig,
    SessionUpdate,
    parse_server_event,
)
from translator_bot.glossary import warn_unused_once
from translator_bot.metrics import ENGINE_UNKNOWN_EVENTS

log = logging.getLogger(__name__)

ITEM_IDLE_S = 1.5  # no translated audio for this long ends the item even without a heartbeat
TRANSLATION_WAIT_S = 10.0  # an original at the front with no translation yet, and no heartbeat
_CLEAN_QUIET_MS = 300
_REPLAY_PAD_MS = 300  # audio sent again before a speech start, so its first syllable is not clipped
_RESUME_WITHIN_MS = 2000  # speech the input gate heard this recently is sent again after a drop


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
    idle_heard_at: int | None = None  # input sent when a heartbeat last came with no item open


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


class TranslateEngine:
    """The `/v1/realtime/translations` protocol for one lane.

    Per socket it keeps a `TranslateLinkState`; across sockets only two facts of the lane: how many
    items it has numbered, and which run of speech is already being heard in translation.
    """

    name = "translate"
    # Two room frames per append: speech reaches the endpoint at most 20 ms after the bot has it
    # (100 ms appends held it back 40 ms on average). Not one frame each, because the endpoint's
    # guidance is ~200 ms chunks, and every append is a WebSocket message for both ends to handle.
    chunk_ms = 40

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.items_made = 0  # synthetic items numbered per lane, across reconnects
        # Start of the input's run of speech that was going on (or last) when translated audio of an
        # item began to arrive: that speech is being heard, and is not sent again after a drop.
        self.heard_run: int | None = None

    def parse(self, raw: str | bytes) -> BaseModel:
        return parse_server_event(raw)

    def new_state(self) -> TranslateLinkState:
        return TranslateLinkState()

    def session_config(self, spec: LaneSpec) -> SessionConfig:
        if self.options.glossary is not None:
            warn_unused_once(self.name)
        return SessionConfig(
            audio=Audio(
                input=AudioInput(
                    transcription=InputTranscription(model=self.options.transcription_for("translate"))
                ),
                output=AudioOutput(language=spec.target.tag),
            )
        )

    def session_update(self, spec: LaneSpec, event_id: str) -> BaseModel:
        return SessionUpdate(event_id=event_id, session=self.session_config(spec))

    def append(self, pcm: bytes) -> BaseModel:
        return InputAudioAppend(audio=base64.b64encode(pcm).decode("ascii"))

    # --- cut short: this endpoint keeps no conversation that could hold unheard text -------------
    def owns_item(self, state: TranslateLinkState, item_id: str) -> bool:
        return False

    def on_cut_short(self, state: TranslateLinkState, item_id: str, heard_samples: int) -> Step:
        return NOTHING

    # --- moving between sockets ------------------------------------------------------------------
    def on_local_speech_start(self, at: At) -> Step:
        return Step([SpeechStarted(at.clock())])  # the endpoint has no VAD events: the input gate's

    def resume_point(self, state: TranslateLinkState, feed: AudioFeed) -> int | None:
        start = feed.recent_speech_start(
            ms_to_samples(_RESUME_WITHIN_MS, MODEL_RATE), ms_to_samples(_REPLAY_PAD_MS, MODEL_RATE)
        )
        run = feed.run_start
        if start is None or (run is not None and self.heard_run is not None and run <= self.heard_run):
            return None
        return start

    def end_items(self, state: TranslateLinkState, at: At) -> Step:
        return self._close_all(state, at)

    def clean_point(self, state: TranslateLinkState, feed: AudioFeed) -> bool:
        return not feed.voiced and feed.quiet_for() >= ms_to_samples(_CLEAN_QUIET_MS, MODEL_RATE)

    def switch_point(self, state: TranslateLinkState, feed: AudioFeed) -> int | None:
        return None  # the old socket translates what it received; the new one takes the input on

    def has_pending_output(self, state: TranslateLinkState) -> bool:
        return not state.closed_by_server

    def on_retire(self, state: TranslateLinkState, feed: AudioFeed) -> Step:
        # The server flushes what it still holds, sends session.closed, and we close the socket.
        state.close_sent = True
        return Step(sends=[SessionClose()])

    def rest_after_ms(self) -> int:
        return SEGMENT_GAP_MS  # the endpoint's clock keeps at least a segment's gap around a rest

    def input_settled(self, state: TranslateLinkState, feed: AudioFeed) -> bool:
        return translate_settled(bool(state.items), feed.quiet_since, state.idle_heard_at, feed.end)

    def on_tick(self, state: TranslateLinkState, at: At, *, finished: bool) -> Step:
        st = state
        if not st.items:
            return NOTHING
        if finished:
            return self._close_all(st, at)
        item = st.items[0]
        idle = at.now - item.last_activity
        # An original waits for its translation, which may come after the speaker's own pause before
        # it; a heartbeat ends the wait sooner (the endpoint is idle: the speaker already spoke the
        # target language, or it found nothing to translate).
        limit = ITEM_IDLE_S if item.has_audio else TRANSLATION_WAIT_S
        return self._close_front(st, at) if idle >= limit else NOTHING

    # --- server events ---------------------------------------------------------------------------
    def on_server_event(self, state: TranslateLinkState, event: BaseModel, at: At) -> Step:
        st = state
        if isinstance(event, OutputAudioDelta):
            return self._on_audio(st, event, at)
        if isinstance(event, OutputTranscriptDelta):
            step = NOTHING
            front = st.items[0] if st.items else None
            if (
                front is not None
                and len(st.items) > 1
                and front.target_text
                and starts_next_translation(front.target_text, event.delta)
            ):
                # The endpoint streams one translation after another without a heartbeat between
                # them: a finished sentence, and the next original already waiting, end this one.
                step = self._close_front(st, at)
            item, opened = self._output_item(st, at)
            item.target_text += event.delta
            return step + opened + Step([TranslationTranscript(item.item_id, event.delta, final=False)])
        if isinstance(event, InputTranscriptDelta):
            return self._on_source(st, event, at)
        if isinstance(event, SessionClosed):
            st.closed_by_server = True
            return self._close_all(st, at)
        if isinstance(event, ErrorEvent):
            err = event.error
            return error_step(err.type, err.code, err.message, at)
        return NOTHING

    def _on_audio(self, st: TranslateLinkState, event: OutputAudioDelta, at: At) -> Step:
        if (event.sample_rate not in (None, MODEL_RATE)) or (event.channels not in (None, 1)):
            ENGINE_UNKNOWN_EVENTS.labels(engine=self.name, reason="audio_format").inc()
            log.warning(
                "lane %s: translated audio at %s Hz x %s channels skipped (%d x 1 expected)",
                at.lane_id,
                event.sample_rate,
                event.channels,
                MODEL_RATE,
            )
            return NOTHING
        try:
            pcm = base64.b64decode(event.delta, validate=True)
        except (binascii.Error, ValueError):
            ENGINE_UNKNOWN_EVENTS.labels(engine=self.name, reason="malformed").inc()
            return NOTHING
        if len(pcm) % BYTES_PER_SAMPLE:
            pcm = pcm[:-1]
        if not pcm:
            return NOTHING
        if is_heartbeat(pcm):
            if st.items and (st.items[0].has_audio or st.items[0].target_text):
                return self._close_front(st, at)  # the translation is over
            if st.items and st.items[0].source_text:
                return self._close_front(st, at)  # idle with an original in: no translation is coming
            if not st.items:
                st.idle_heard_at = at.feed.sent_upto
            return NOTHING
        item, opened = self._output_item(st, at)
        if not item.has_audio:
            self.heard_run = at.feed.run_start
        item.has_audio = True
        return opened + Step([TranslatedAudio(item.item_id, pcm)])

    def _on_source(self, st: TranslateLinkState, event: InputTranscriptDelta, at: At) -> Step:
        now = at.now
        last = st.items[-1] if st.items else None
        if last is not None:
            if event.elapsed_ms is not None and last.source_elapsed_ms is not None:
                gap_ms: float = event.elapsed_ms - last.source_elapsed_ms
            else:  # no timing from the endpoint: the time the deltas arrived stands in for it
                gap_ms = (now - last.source_arrived) * 1000
            if starts_new_sentence(last.source_text, gap_ms):
                last = None
        step = NOTHING
        if last is None:
            last, step = self._new_item(st, at)
        item = last
        item.source_text += event.delta
        item.source_arrived, item.last_activity = now, now
        if event.elapsed_ms is not None:
            item.source_elapsed_ms = event.elapsed_ms
        return step + Step([SourceTranscript(item.item_id, event.delta, final=False)])

    def _output_item(self, st: TranslateLinkState, at: At) -> tuple[TranslateItem, Step]:
        """The item translated output belongs to: the oldest open one (whose original came first)."""
        step = NOTHING
        if st.items:
            item = st.items[0]
        else:
            item, step = self._new_item(st, at)
        item.last_activity = at.now
        return item, step

    def _new_item(self, st: TranslateLinkState, at: At) -> tuple[TranslateItem, Step]:
        step = self._close_front(st, at) if len(st.items) >= MAX_OPEN_ITEMS else NOTHING
        self.items_made += 1
        item = TranslateItem(f"{at.lane_id}-t{self.items_made}", at.now)
        st.items.append(item)
        return item, step

    def _close_front(self, st: TranslateLinkState, at: At) -> Step:
        item = st.items.popleft()
        if st.items:  # the next original starts waiting for its translation now
            st.items[0].last_activity = at.now
        events: list[EngineEvent] = []
        if item.source_text:
            events.append(SourceTranscript(item.item_id, item.source_text, final=True))
        if item.target_text:
            events.append(TranslationTranscript(item.item_id, item.target_text, final=True))
        events.append(TranslationDone(item.item_id))
        return Step(events)

    def _close_all(self, st: TranslateLinkState, at: At) -> Step:
        step = NOTHING
        while st.items:
            step += self._close_front(st, at)
        return step


class TranslateSession(SupervisedSession[TranslateLinkState]):
    """A lane's session on the translation endpoint."""

    def __init__(
        self,
        endpoint: Endpoint,
        spec: LaneSpec,
        options: EngineOptions,
        *,
        clock: Clock = time.monotonic,
        give_up_after_s: float | None = None,
        recycle_grace_s: float = 20.0,
        healthy_after_s: float = HEALTHY_AFTER_S,
    ) -> None:
        super().__init__(
            TranslateEngine(options),
            endpoint,
            spec,
            options,
            clock=clock,
            give_up_after_s=give_up_after_s,
            recycle_grace_s=recycle_grace_s,
            healthy_after_s=healthy_after_s,
        )
