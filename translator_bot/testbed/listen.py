"""What did a participant hear? Their recording cut into utterances, each named by the recogniser.

The recording (48 kHz mono, one arrival time per 20 ms frame) is resampled to 24 kHz, cut where the
energy turn detector finds speech, and each piece is matched against the fixtures, so tests and
benchmarks assert on which recorded sentence, in which language, reached whom, and when.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.vad import ServerVadConfig, VoiceActivityDetector, VoiceStarted
from translator_bot.fake.catalog import load_catalog
from translator_bot.testbed.participant import FRAME_SAMPLES, RATE, Recording


@dataclass(frozen=True)
class Heard:
    utterance_id: str | None  # None: speech that matched no fixture
    first_arrival: float  # monotonic time its first frame reached the listener
    duration_ms: int
    score: float


def heard_utterances(recording: Recording, *, silence_ms: int = 400) -> list[Heard]:
    samples = recording.samples()
    if samples.size == 0:
        return []
    pcm24 = np.asarray(soxr.resample(samples, RATE, MODEL_RATE, quality="HQ"), dtype=np.int16)
    vad = VoiceActivityDetector(
        ServerVadConfig(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=silence_ms).detector()
    )
    events = vad.feed(pcm24) + vad.flush()
    catalog = load_catalog()
    out: list[Heard] = []
    start_ms: int | None = None
    for event in events:
        if isinstance(event, VoiceStarted):
            start_ms = event.voiced_ms
            continue
        if start_ms is None:
            continue
        first, last = start_ms * 24, event.end_ms * 24
        result = catalog.recognise(pcm24[max(0, first - 2400) : last + 2400])
        frame = min(len(recording.arrivals) - 1, start_ms * RATE // 1000 // FRAME_SAMPLES)
        out.append(
            Heard(result.utterance_id, recording.arrivals[frame], event.end_ms - start_ms, result.score)
        )
        start_ms = None
    return out


def recognised_ids(recording: Recording) -> list[str]:
    return [h.utterance_id for h in heard_utterances(recording) if h.utterance_id is not None]
