"""A diagnostic engine that "translates" by returning each utterance's own audio after a delay.

It exercises the whole room path (subscribe, convert, lanes, playout, publish) with no model at all:
useful to check that audio flows in a real meeting, and the baseline of the latency benchmark (the
same path, minus the model protocol). It finds utterances with the same energy turn detection the
fake server uses, with the bot's VAD settings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.vad import ServerVadConfig, SharedChunk, VoiceActivityDetector, VoiceStarted
from translator_bot.engine.base import (
    Clock,
    EngineEvent,
    EngineSession,
    EngineState,
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
from translator_bot.settings import Settings
from translator_bot.tasks import TaskSet

_PER_MS = MODEL_RATE // 1000  # samples per millisecond
_CHUNK_SAMPLES = 200 * _PER_MS  # 200 ms, like the real endpoints' deltas
_MAX_UTTERANCE_SAMPLES = MODEL_RATE * 30
_LEAD_IN_MS = 50


class PassthroughSession(EngineSession):
    def __init__(
        self, endpoint: Endpoint | None, spec: LaneSpec, settings: Settings, *, clock: Clock = time.monotonic
    ) -> None:
        self._spec = spec
        self._clock = clock
        self._delay = settings.passthrough_delay_ms / 1000
        self._vad = VoiceActivityDetector(
            ServerVadConfig(
                threshold=settings.vad_threshold,
                prefix_padding_ms=settings.vad_prefix_padding_ms,
                silence_duration_ms=settings.vad_silence_duration_ms,
            ).detector()
        )
        self._history = np.zeros(0, dtype=np.int16)  # recent audio, for prefix padding
        self._history_start_ms = 0
        self._utterance_start_ms: int | None = None
        self._count = 0
        self._events: asyncio.Queue[EngineEvent | None] = asyncio.Queue()
        self._tasks = TaskSet(f"passthrough {spec.lane_id}")
        self.reconnects = 0
        self.usage_total = Usage()
        self.state = EngineState.CONNECTING

    @property
    def spec(self) -> LaneSpec:
        return self._spec

    async def start(self) -> None:
        self.state = EngineState.CONNECTED

    def send_audio(self, pcm: bytes, shared: SharedChunk | None = None) -> None:
        # `shared` is left unused: this detector's 10 ms frames are no other detector's.
        usable = len(pcm) - len(pcm) % 2
        samples = np.frombuffer(pcm[:usable], dtype="<i2")
        self._history = np.concatenate([self._history, samples])
        for event in self._vad.feed(samples):
            now = self._clock()
            if isinstance(event, VoiceStarted):
                # Start where the voice starts (with the short lead-in recordings have), not at the
                # VAD's prefix padding: the baseline must not begin with padding no model returns.
                self._utterance_start_ms = max(0, event.voiced_ms - _LEAD_IN_MS)
                self._events.put_nowait(SpeechStarted(now))
            elif self._utterance_start_ms is not None:
                self._events.put_nowait(SpeechStopped(now))
                self._emit_later(self._cut(self._utterance_start_ms, event.end_ms))
                self._utterance_start_ms = None
        self._trim_history()

    def _cut(self, start_ms: int, end_ms: int) -> np.ndarray:
        first = max(0, (start_ms - self._history_start_ms) * _PER_MS)
        last = max(first, (end_ms - self._history_start_ms) * _PER_MS)
        return self._history[first:last].copy()

    def _trim_history(self) -> None:
        keep_from_ms = self._vad.position_ms - max(self._spec_padding_ms(), 1000)
        if self._utterance_start_ms is not None:
            keep_from_ms = min(keep_from_ms, self._utterance_start_ms)
        drop = max(0, (keep_from_ms - self._history_start_ms) * _PER_MS)
        drop = max(drop, len(self._history) - _MAX_UTTERANCE_SAMPLES)
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start_ms += drop // _PER_MS
            # keep the sample count a whole number of milliseconds so the ms bookkeeping stays exact
            extra = drop % _PER_MS
            if extra:
                self._history = self._history[_PER_MS - extra :]
                self._history_start_ms += 1

    def _spec_padding_ms(self) -> int:
        return self._vad.config.prefix_padding_ms

    def _emit_later(self, audio: np.ndarray) -> None:
        if self._tasks.closed:
            return  # audio that arrives after aclose() is not answered
        self._count += 1
        item = f"passthrough_{self._count}"
        self._tasks.spawn(self._emit(item, audio), name=f"passthrough-{self._spec.lane_id}-{self._count}")

    async def _emit(self, item: str, audio: np.ndarray) -> None:
        await asyncio.sleep(self._delay)
        self._events.put_nowait(SourceTranscript(item, "(original audio)", True))
        for start in range(0, len(audio), _CHUNK_SAMPLES):
            self._events.put_nowait(TranslatedAudio(item, audio[start : start + _CHUNK_SAMPLES].tobytes()))
        self._events.put_nowait(TranslationTranscript(item, "(original audio)", True))
        self._events.put_nowait(TranslationDone(item))

    async def events(self) -> AsyncIterator[EngineEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    def update_spec(self, spec: LaneSpec) -> None:
        self._spec = spec

    def report_cut_short(self, item_id: str, heard_samples: int) -> None:
        return None  # nothing to keep in step: there is no model context

    async def aclose(self) -> None:
        await self._tasks.close()
        self.state = EngineState.CLOSED
        self._events.put_nowait(None)
