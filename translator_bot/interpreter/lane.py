"""One lane: a speaker's audio into one model session, its translation out to the listeners' feeds.

The lane owns its engine session and the single task that consumes the session's events. Where the
audio and captions go is the router's business (per-listener or mixed feeds), so the same lane
serves two-party and larger meetings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from translator_bot.audio.vad import SharedChunk
from translator_bot.engine.base import (
    EngineSession,
    LaneSpec,
    SourceTranscript,
    SpeechStarted,
    SpeechStopped,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
    Usage,
)
from translator_bot.errors import ProviderError
from translator_bot.interpreter.plan import LaneKey, LanePlan
from translator_bot.interpreter.speech import SpeechEndTracker, SpeechSince
from translator_bot.interpreter.transcript import LaneInfo, Transcript
from translator_bot.metrics import ENGINE_TOKENS, TRANSLATION_LATENCY
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)


class LaneRouter(Protocol):
    """Where a lane's output goes; implemented by the meeting, which knows the feeds."""

    def deliver_audio(self, key: LaneKey, item: str, pcm: bytes) -> None: ...

    def end_item(self, key: LaneKey, item: str) -> None: ...

    def caption(self, key: LaneKey, message: dict[str, object]) -> None: ...


def spec_for(plan: LanePlan) -> LaneSpec:
    return LaneSpec(
        lane_id=str(plan.key),
        speaker_name=plan.speaker.name,
        source=plan.speaker.language,
        listener_name=" and ".join(m.name for m in plan.listeners),
        target=plan.target,
    )


def lane_info(plan: LanePlan) -> LaneInfo:
    return LaneInfo(
        lane=str(plan.key),
        speaker_id=plan.speaker.id,
        speaker_name=plan.speaker.name,
        source_language=plan.speaker.language.tag,
        target_language=plan.target.tag,
        listener_ids=plan.listener_ids,
    )


class Lane:
    def __init__(
        self,
        plan: LanePlan,
        engine: EngineSession,
        router: LaneRouter,
        transcript: Transcript,
        *,
        on_fatal: Callable[[ProviderError], None],
        on_stopped: Callable[[Lane, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        speech: SpeechSince | None = None,
    ) -> None:
        """`speech`: the speaker's tracker as this lane sees it, fed by the owner (one per speaker, not
        per lane); without it the lane tracks the audio it is pushed itself."""
        self.plan = plan
        self.engine = engine
        self._router = router
        self._transcript = transcript
        self._on_fatal = on_fatal
        self._on_stopped = on_stopped
        self.stopped_reason: str | None = None  # set when the lane's task ended by itself
        self._clock = clock
        self._own_speech: SpeechEndTracker | None = None
        if speech is None:
            self._own_speech = SpeechEndTracker()
            speech = self._own_speech.since_now()
        self._speech = speech
        self._measured_end: float | None = None
        self._items_started: set[str] = set()
        self._tasks = TaskSet(f"lane {plan.key}", logger=log)
        self.latencies: list[float] = []
        transcript.lane_opened(lane_info(plan))

    @property
    def key(self) -> LaneKey:
        return self.plan.key

    def start(self) -> None:
        """Connect the session and consume its events in the lane's own task, so a slow or retrying
        connection never holds up the meeting; audio pushed meanwhile is buffered by the engine."""
        self._tasks.spawn(self._run(), name=f"lane {self.key}")

    def push_audio(self, pcm: bytes, shared: SharedChunk | None = None) -> None:
        """`shared`: `pcm` as its speaker's tracker read it, whose frame powers the engine's input gate
        reuses (`SpeechEndTracker.feed`)."""
        if self._own_speech is not None:
            own = self._own_speech.feed(pcm, self._clock())
            shared = own if shared is None else shared
        self.engine.send_audio(pcm, shared)

    def update(self, plan: LanePlan) -> None:
        self.plan = plan
        self._transcript.lane_opened(lane_info(plan))
        self.engine.update_spec(spec_for(plan))

    def cut_short(self, item: str, heard_samples: int) -> None:
        """Playout dropped the rest of `item`: the model must not believe the listener heard it."""
        self.engine.report_cut_short(item, heard_samples)

    async def aclose(self) -> None:
        await self._tasks.close()
        await self.engine.aclose()

    async def _run(self) -> None:
        try:
            await self.engine.start()
            async for event in self.engine.events():
                self._handle(event)
            reason = "the model session ended"
            log.error("lane %s stopped: %s", self.key, reason)
        except ProviderError as exc:
            self._on_fatal(exc)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug in one lane must not take the meeting down; the lane stops, says so, and its
            # owner restarts it.
            reason = f"crashed: {type(exc).__name__}: {exc}"
            log.exception("lane %s stopped after an unexpected error", self.key)
        self.stopped_reason = reason
        if self._on_stopped is not None:
            self._on_stopped(self, reason)

    def _handle(self, event: object) -> None:
        lane = str(self.key)
        match event:
            case TranslatedAudio(item_id=item, pcm=pcm):
                if item not in self._items_started:
                    self._items_started.add(item)
                    self._first_audio(item)
                self._router.deliver_audio(self.key, item, pcm)
            case TranslationDone(item_id=item):
                self._router.end_item(self.key, item)
                self._transcript.translation_done(lane, item)
            case SourceTranscript(item_id=item, text=text, final=final):
                self._transcript.source_text(lane, item, text, final)
            case TranslationTranscript(item_id=item, text=text, final=final):
                entry = self._transcript.translation_text(lane, item, text, final)
                if entry is not None:
                    self._router.caption(
                        self.key,
                        {
                            "type": "caption",
                            "lane": lane,
                            "item": item,
                            "speaker": entry.speaker_id,
                            "speaker_name": entry.speaker_name,
                            "for": entry.listener_ids,
                            "source_lang": entry.source_language,
                            "lang": entry.target_language,
                            "original": entry.original,
                            "translation": entry.translation,
                            "final": final,
                        },
                    )
            case Usage(input_tokens=tokens_in, output_tokens=tokens_out, cached_tokens=cached):
                ENGINE_TOKENS.labels(lane, "input").inc(tokens_in)
                ENGINE_TOKENS.labels(lane, "output").inc(tokens_out)
                ENGINE_TOKENS.labels(lane, "cached").inc(cached)
            case SpeechStarted() | SpeechStopped():
                pass
            case _:
                log.debug("lane %s: ignoring %r", lane, event)

    def _first_audio(self, item: str) -> None:
        self._transcript.translation_started(str(self.key), item)
        end = self._speech.last_speech_end
        if end is None or end == self._measured_end or self._speech.speaking:
            return  # simultaneous interpretation began before the speaker paused: nothing to measure
        self._measured_end = end
        latency = self._clock() - end
        self.latencies.append(latency)
        TRANSLATION_LATENCY.observe(latency)
