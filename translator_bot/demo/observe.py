"""Watching one turn of the demo from the listeners' side: when the translation has arrived and ended,
what it was, how late, and whether the speaker wrongly heard anything on their own feed."""

from __future__ import annotations

import asyncio
import bisect
import json
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.participant import FRAME_SAMPLES, RATE, Recording, SimParticipant, SpokenUtterance

LOUD_RMS = 500.0  # int16 units: well above Opus comfort noise, well below speech
FRAME_MS = FRAME_SAMPLES * 1000 // RATE
# The translation counts as finished after this much silence; longer than any pause inside one
# translated sentence, shorter than a person waits before answering.
QUIET_AFTER_S = 1.5


@dataclass(frozen=True)
class Observation:
    heard_id: str | None
    heard_ms: int
    first_arrival: float | None
    caption: str | None
    leaked_ms: int


def since(recording: Recording, start: float) -> Recording:
    """The part of a recording that arrived at or after `start` (a copy: safe to analyse in a thread)."""
    first = bisect.bisect_left(recording.arrivals, start)
    return Recording(chunks=list(recording.chunks[first:]), arrivals=list(recording.arrivals[first:]))


def _frame_loudness(recording: Recording) -> np.ndarray:
    return np.array(
        [float(np.sqrt(np.mean(c.astype(np.float64) ** 2))) if c.size else 0.0 for c in recording.chunks]
    )


def loud_ms(recording: Recording) -> int:
    return int(np.count_nonzero(_frame_loudness(recording) > LOUD_RMS)) * FRAME_MS


def last_loud_arrival(recording: Recording) -> float | None:
    loud = np.flatnonzero(_frame_loudness(recording) > LOUD_RMS)
    return recording.arrivals[int(loud[-1])] if loud.size else None


async def finished_speaking(person: SimParticipant, count_before: int, timeout_s: float) -> SpokenUtterance:
    """The utterance `person` started after `count_before` others, once its last frame has gone out."""
    async with asyncio.timeout(timeout_s):
        while True:
            spoken = person.spoken
            if len(spoken) > count_before and spoken[count_before].end is not None:
                return spoken[count_before]  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


async def wait_for_translation(
    listener: Recording, start: float, spoken_end: float, timeout_s: float
) -> None:
    """Return once the listener heard speech after `start` followed by QUIET_AFTER_S of silence, or at
    `spoken_end + timeout_s` when nothing (or never-ending audio) arrives."""
    deadline = spoken_end + timeout_s
    while time.monotonic() < deadline:
        last = last_loud_arrival(since(listener, start))
        if last is not None and time.monotonic() - last >= QUIET_AFTER_S:
            return
        await asyncio.sleep(0.2)


def final_caption(messages: list[tuple[float, str]], start: float) -> str | None:
    """The last final translated caption that arrived after `start`."""
    found: str | None = None
    for at, text in messages:
        if at < start:
            continue
        try:
            message = json.loads(text)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("type") == "caption" and message.get("final"):
            translation = message.get("translation")
            if isinstance(translation, str) and translation.strip():
                found = translation.strip()
    return found


async def observe(
    heard: Recording, own: Recording, messages: list[tuple[float, str]], start: float, expected_id: str
) -> Observation:
    """Name what the listener heard since `start` (the recogniser is CPU work: off the event loop)."""
    window, own_window = since(heard, start), since(own, start)
    pieces = await asyncio.to_thread(heard_utterances, window)
    named = [p.utterance_id for p in pieces if p.utterance_id is not None]
    heard_id = expected_id if expected_id in named else (named[0] if named else None)
    return Observation(
        heard_id=heard_id,
        heard_ms=sum(p.duration_ms for p in pieces) if pieces else loud_ms(window),
        first_arrival=pieces[0].first_arrival if pieces else last_loud_arrival(window),
        caption=final_caption(messages, start),
        leaked_ms=loud_ms(own_window),
    )


def write_wav(path: Path, recording: Recording) -> None:
    """What a participant heard, as 48 kHz mono 16-bit WAV."""
    samples = recording.samples()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.astype("<i2").tobytes())
