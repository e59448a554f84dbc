"""The demo meeting on one time axis: when each person spoke, the loudness of what each heard on the
interpreter feed meant for them, and each translation's latency. Kept as plain data (and saved as
`timeline.json`) so the picture can be drawn, redrawn and tested without a meeting."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from translator_bot.testbed.participant import Recording

LEAD_IN_S = 1.0  # shown before the first sentence starts


@dataclass(frozen=True)
class Span:
    start: float  # seconds from the timeline's origin
    end: float
    label: str


@dataclass(frozen=True)
class Translation:
    speaker: str
    listener: str
    speech_end: float  # seconds from the origin: the end of the speaker's sentence
    first_audio: float | None  # the first translated audio at the listener; None: none arrived

    @property
    def latency_s(self) -> float | None:
        return None if self.first_audio is None else self.first_audio - self.speech_end


@dataclass(frozen=True)
class PersonTrack:
    name: str
    language: str
    said: tuple[Span, ...]
    heard_times: tuple[float, ...]  # one 20 ms frame each, seconds from the origin
    heard_level: tuple[float, ...]  # RMS of that frame, int16 units


@dataclass(frozen=True)
class Timeline:
    people: tuple[PersonTrack, ...]
    translations: tuple[Translation, ...]
    duration_s: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Timeline:
        data: dict[str, Any] = json.loads(text)
        people = tuple(
            PersonTrack(
                p["name"],
                p["language"],
                tuple(Span(**s) for s in p["said"]),
                tuple(p["heard_times"]),
                tuple(p["heard_level"]),
            )
            for p in data["people"]
        )
        return cls(people, tuple(Translation(**t) for t in data["translations"]), data["duration_s"])


def frame_levels(recording: Recording) -> np.ndarray:
    return np.array(
        [float(np.sqrt(np.mean(c.astype(np.float64) ** 2))) if c.size else 0.0 for c in recording.chunks]
    )


@dataclass
class TimelineRecorder:
    """Filled in by the demo as turns are played (monotonic clock times), then `build` with what each
    person's listening track recorded."""

    said: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict)
    translations: list[tuple[str, str, float, float | None]] = field(default_factory=list)

    def spoke(self, name: str, start: float, end: float, label: str) -> None:
        self.said.setdefault(name, []).append((start, end, label))

    def translated(self, speaker: str, listener: str, speech_end: float, first_audio: float | None) -> None:
        self.translations.append((speaker, listener, speech_end, first_audio))

    def build(self, heard: dict[str, tuple[str, Recording]]) -> Timeline:
        starts = [start for spans in self.said.values() for start, _, _ in spans]
        origin = (min(starts) if starts else 0.0) - LEAD_IN_S
        people = []
        end = 0.0
        for name, (language, recording) in heard.items():
            levels = frame_levels(recording)
            times = np.asarray(recording.arrivals, dtype=np.float64) - origin
            keep = times >= 0
            spans = tuple(Span(s - origin, e - origin, label) for s, e, label in self.said.get(name, []))
            people.append(
                PersonTrack(
                    name,
                    language,
                    spans,
                    tuple(round(float(t), 3) for t in times[keep]),
                    tuple(round(float(v), 1) for v in levels[keep]),
                )
            )
            end = max([end, *(s.end for s in spans), *(float(t) for t in times[keep][-1:])])
        translations = tuple(
            Translation(s, li, e - origin, None if f is None else f - origin)
            for s, li, e, f in self.translations
        )
        return Timeline(tuple(people), translations, round(end, 3))


def save_timeline(timeline: Timeline, path: Path) -> Path:
    path.write_text(timeline.to_json() + "\n", encoding="utf-8")
    return path
