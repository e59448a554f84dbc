"""Where sentences end in a continuous stream of speech: how the fake translate endpoint segments.

The translation endpoint has no turns: it interprets while the speaker is still talking. A speaker
in a monologue pauses briefly between sentences (300-500 ms, far less than the half second of silence
that ends a conversational turn) and even less inside one (a comma: up to ~250 ms in the recorded
fixtures). So a sentence ends at a voiced-to-silent run of `pause_ms` (300 ms) measured with the same
energy detector as the fake's turn detection, and is handed on at once, while the next sentence is
being spoken.

`split_sentences` is a pure function of the audio not yet handed on: the caller keeps that audio,
calls it after every append, hands on the sentences it returns and drops the `consumed` samples.
Re-reading the unconsumed audio costs ~1 ms per append and keeps the decision free of hidden state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.vad import ServerVadConfig, VoiceActivityDetector, VoiceStarted, VoiceStopped

_SAMPLES_PER_MS = MODEL_RATE // 1000


@dataclass(frozen=True)
class SentenceConfig:
    threshold: float = 0.5  # voiced-frame level, on the turn detector's 0..1 scale
    pause_ms: int = 300  # a silence this long ends a sentence; shorter ones (commas) do not
    edge_ms: int = 100  # audio kept before and after the voiced part (at most half of `pause_ms`)
    # A speaker who never pauses still gets interpreted: the sentence is cut here. This also bounds
    # the audio the caller has to keep.
    max_sentence_ms: int = 15_000


@dataclass(frozen=True)
class Sentence:
    """Sample offsets into the audio given to `split_sentences`, `edge_ms` included at each end."""

    start: int
    end: int  # exclusive
    voiced_start: int  # first voiced sample
    voiced_end: int  # just after the last voiced sample


@dataclass(frozen=True)
class Split:
    sentences: tuple[Sentence, ...]
    consumed: int  # samples the caller can drop: handed on, or silence no sentence will need


def split_sentences(
    pcm: npt.NDArray[np.int16], config: SentenceConfig = SentenceConfig(), *, final: bool = False
) -> Split:
    """The sentences complete in `pcm` (24 kHz mono): ended by a pause, by `max_sentence_ms`, or,
    when `final` (no more audio will come), by the end of the audio."""
    turns = ServerVadConfig(
        threshold=config.threshold, prefix_padding_ms=0, silence_duration_ms=config.pause_ms
    )
    vad = VoiceActivityDetector(turns.detector())
    frame = vad.config.frame_ms * _SAMPLES_PER_MS
    events = vad.feed(pcm)
    if final:
        events += vad.flush()
    edge = config.edge_ms * _SAMPLES_PER_MS
    total = len(pcm)
    sentences: list[Sentence] = []
    open_start: int | None = None
    for event in events:
        if isinstance(event, VoiceStarted):
            open_start = event.voiced
        elif isinstance(event, VoiceStopped) and open_start is not None:
            end = event.end
            sentences.append(_sentence(open_start, end, edge, total))
            open_start = None
    if open_start is not None and total - open_start >= config.max_sentence_ms * _SAMPLES_PER_MS:
        sentences.append(Sentence(max(0, open_start - edge), total, open_start, total))
        open_start = None
    # Keep the sentence being spoken and its lead-in; after the last sentence, keep only the lead-in
    # the next one may need (a voiced run too short to count as speech yet also lies within it).
    keep_from = open_start if open_start is not None else total
    consumed = max(0, keep_from - edge)
    if sentences:
        consumed = max(consumed, sentences[-1].end)
    # Whole detector frames only, so the audio kept is framed the same way when it is read again.
    consumed = min(consumed, total) // frame * frame
    return Split(tuple(sentences), consumed)


def _sentence(voiced_start: int, voiced_end: int, edge: int, total: int) -> Sentence:
    return Sentence(max(0, voiced_start - edge), min(total, voiced_end + edge), voiced_start, voiced_end)
