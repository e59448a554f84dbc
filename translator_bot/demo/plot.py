"""Pictures: the demo's timeline and the latency benchmark's distribution.

matplotlib is an optional extra (`pip install 'translator-bot[plots]'`, which scripts/install.sh
does): a well-kept plotting library draws axes, legends and text far better than hand-made SVG.
Figures are drawn with `matplotlib.figure.Figure` and the Agg canvas only: no display, no pyplot
global state. Without matplotlib, `PlotsUnavailable` says how to get it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from translator_bot.demo.timeline import Timeline

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_HINT = "pip install 'translator-bot[plots]' (scripts/install.sh installs it)"
SAID_COLOR = "#3b6ea5"
HEARD_COLOR = "#d07b2c"
LATENCY_COLOR = "#b2302e"


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _figure(**kwargs: Any) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailable(f"matplotlib is not installed: {INSTALL_HINT}") from None
    return Figure(**kwargs)


def _short(text: str, most: int = 38) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def draw_timeline(timeline: Timeline, path: Path) -> Path:
    """One row per person on a shared time axis: the sentences they said (blue spans, labelled), the
    loudness of the interpreter feed they heard (orange), and for each translation they heard, a red
    bracket from the end of the speaker's sentence to the first translated audio, with its latency."""
    rows = max(len(timeline.people), 1)
    fig = _figure(figsize=(12, 1.9 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    loudest = max((max(p.heard_level, default=0.0) for p in timeline.people), default=0.0) or 1.0
    for ax, person in zip(axes, timeline.people, strict=False):
        for span in person.said:
            ax.broken_barh([(span.start, span.end - span.start)], (0.55, 0.35), color=SAID_COLOR)
            ax.text(span.start, 0.94, _short(span.label), fontsize=7, va="bottom", clip_on=True)
        if person.heard_times:
            level = np.asarray(person.heard_level) / loudest
            ax.fill_between(person.heard_times, 0.05, 0.05 + 0.4 * level, color=HEARD_COLOR, linewidth=0)
        for t in timeline.translations:
            if t.listener != person.name or t.first_audio is None:
                continue
            ax.annotate(
                "",
                xy=(t.first_audio, 0.48),
                xytext=(t.speech_end, 0.48),
                arrowprops={
                    "arrowstyle": "|-|",
                    "color": LATENCY_COLOR,
                    "lw": 1.6,
                    "shrinkA": 0,
                    "shrinkB": 0,
                },
            )
            ax.text(t.first_audio, 0.5, f" {t.latency_s:.2f} s", color=LATENCY_COLOR, fontsize=8, va="bottom")
        ax.set_ylim(0, 1.15)
        ax.set_yticks([0.25, 0.72], ["heard", "said"])
        ax.set_ylabel(f"{person.name}\n({person.language})", rotation=0, ha="right", va="center")
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlim(0, max(timeline.duration_s, 1.0))
    axes[-1].set_xlabel("seconds")
    fig.suptitle(
        "Who said what (blue), what each heard from the interpreter (orange), "
        "and each translation's latency (red: end of sentence to first translated audio)",
        fontsize=9,
    )
    fig.savefig(path, dpi=90)
    return path


def draw_latency_distribution(
    samples: Mapping[str, Sequence[float]],
    path: Path,
    *,
    title: str,
    unit: str = "ms",
    medians: Mapping[str, float] | None = None,
) -> Path:
    """A histogram per series on shared bins, with each median marked: beside the benchmark's table,
    it shows the spread that a median alone hides. `medians`: the table's own figures, so the two
    agree (default: numpy's median)."""
    fig = _figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    values = [v for series in samples.values() for v in series]
    bins = [float(edge) for edge in np.histogram_bin_edges(values or [0.0], bins=30)]
    for index, (name, series) in enumerate(samples.items()):
        color = f"C{index}"
        ax.hist(
            series,
            bins=bins,
            histtype="stepfilled",
            alpha=0.35,
            color=color,
            label=f"{name} (n={len(series)})",
        )
        if series:
            median = (medians or {}).get(name, float(np.median(series)))
            ax.axvline(median, color=color, linestyle="--", linewidth=1.2)
            ax.text(
                median, ax.get_ylim()[1] * (0.95 - 0.07 * index), f" median {median:.0f} {unit}", color=color
            )
    ax.set_xlabel(unit)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right")
    fig.savefig(path, dpi=90)
    return path
