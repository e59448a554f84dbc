"""The demo's timeline picture and the latency distribution plot, drawn from synthetic data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from translator_bot.demo.plot import PlotsUnavailable, draw_latency_distribution, draw_timeline
from translator_bot.demo.timeline import Timeline, TimelineRecorder
from translator_bot.testbed.participant import Recording


def speech(seconds: float, loud: bool) -> list[np.ndarray]:
    frames = int(seconds * 50)
    rng = np.random.default_rng(1)
    return [(rng.normal(0, 3000 if loud else 20, 960)).astype(np.int16) for _ in range(frames)]


def recorded_meeting() -> Timeline:
    """Ana and Beatriz take two turns each; each hears the other's translation ~1.2 s after the end."""
    t0 = 1000.0
    rec = TimelineRecorder()
    heard = {"Ana": ("en", Recording()), "Beatriz": ("es", Recording())}
    clock = t0
    for turn, (speaker, listener) in enumerate([("Ana", "Beatriz"), ("Beatriz", "Ana")] * 2):
        rec.spoke(speaker, clock, clock + 2.5, f"sentence {turn + 1} said by {speaker}")
        first = clock + 2.5 + 1.2
        rec.translated(speaker, listener, clock + 2.5, first)
        clock = first + 3.0
    for name, (_, recording) in heard.items():
        other = [t for t in rec.translations if t[1] == name]
        t = t0 - 2.0
        while t < clock:
            loud = any(f is not None and f <= t < f + 2.4 for _, _, _, f in other)
            recording.chunks.extend(speech(0.02, loud))
            recording.arrivals.append(t)
            t += 0.02
    return rec.build(heard)


def test_recorder_builds_one_time_axis_and_round_trips_as_json() -> None:
    timeline = recorded_meeting()
    ana, bea = timeline.people
    assert ana.said[0].start == pytest.approx(1.0)  # the lead-in before the first sentence
    assert [t.latency_s for t in timeline.translations] == pytest.approx([1.2] * 4)
    assert min(ana.heard_times) >= 0 and len(ana.heard_times) == len(ana.heard_level)
    assert max(bea.heard_level) > 1000 > min(bea.heard_level)
    assert Timeline.from_json(timeline.to_json()) == timeline


def test_timeline_picture_shows_spans_heard_audio_and_latencies(tmp_path: Path) -> None:
    from matplotlib.image import imread

    path = draw_timeline(recorded_meeting(), tmp_path / "timeline.png")
    assert path.stat().st_size > 20_000
    pixels = imread(path)[:, :, :3]
    height, width = pixels.shape[:2]
    assert width > 900 and height > 300

    def share(rgb: str) -> float:
        target = np.array([int(rgb[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        return float(np.mean(np.all(np.abs(pixels - target) < 0.06, axis=2)))

    assert share("#3b6ea5") > 0.01  # the spans of what was said
    assert share("#d07b2c") > 0.005  # what was heard
    assert share("#b2302e") > 0.0004  # the latency brackets and labels


def test_latency_distribution(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    samples = {"bot": list(rng.normal(900, 80, 40)), "pass-through": list(rng.normal(300, 30, 40))}
    path = draw_latency_distribution(
        samples, tmp_path / "latency.png", title="end of speech -> audio", medians={"bot": 905.0}
    )
    assert path.stat().st_size > 10_000


def test_without_matplotlib_the_reason_and_the_fix_are_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(PlotsUnavailable, match=r"translator-bot\[plots\]"):
        draw_timeline(recorded_meeting(), tmp_path / "timeline.png")
    assert not (tmp_path / "timeline.png").exists()
