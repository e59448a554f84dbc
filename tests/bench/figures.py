"""What a before/after benchmark prints, as pure functions: the order runs visit the source trees in,
medians over runs, meetings per core, and the side-by-side table with the targets beside the figures.

A figure is only as good as the noise it survived. On a shared machine every run sees a different load,
so each tree is measured several times, the trees take turns within one run of the program (a slow
minute hits both), and the table shows the median per tree: one outlier run moves neither side.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

T = TypeVar("T")

CORE_PERCENT = 100.0  # one core, fully used, in the "% of a core" unit the benches measure CPU in


# The label suffix of a tree measured again in rooms with Opus DTX (--dtx both): its own column.
DTX_SUFFIX = "+dtx"

WARMUP = -1  # the run number of the warm-up pass, whose figures are printed but not counted


def run_order(trees: Sequence[T], runs: int, warmup: bool = False) -> list[tuple[int, T]]:
    """(run, tree) in the order to measure them: every run measures every tree, odd runs in reverse
    (A B, B A, A B, ...). Alternating keeps either tree from always going first (the one after a
    fresh Janus, or after a quiet pause), and a load that rises or falls through the program's
    minutes lands on both trees alike. With an even number of runs each tree goes first equally often
    (the benches default to 4); with an odd number the first tree goes first once more.

    With `warmup`, a pass over every tree numbered WARMUP comes first (in the order that continues the
    alternation backwards: B A, then A B, ...): the program's first minutes pay for cold caches and a
    fresh Janus, and that cost belongs to neither tree."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, not {runs}")
    order: list[tuple[int, T]] = []
    for run in range(WARMUP if warmup else 0, runs):
        visit = list(trees) if run % 2 == 0 else list(reversed(trees))
        order.extend((run, tree) for tree in visit)
    return order


def run_name(run: int) -> str:
    """How a progress line names a run: 1, 2, ... or 'warm-up'."""
    return "warm-up" if run == WARMUP else str(run + 1)


def median(values: Iterable[float]) -> float:
    """The median, ignoring NaN (a run that produced no value for this figure); NaN if none is left."""
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the values; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cpu_percent(cpu_seconds_used: float, wall_seconds: float) -> float:
    """CPU time over wall time, in % of one core (200 % is two cores busy)."""
    if wall_seconds <= 0:
        raise ValueError(f"wall time must be positive, not {wall_seconds}")
    return 100.0 * cpu_seconds_used / wall_seconds


def meetings_per_core(cpu_percent_per_meeting: float, underruns: float) -> int | None:
    """How many meetings one core holds: one core (100 %) divided by what one meeting's bot uses while
    people talk, rounded down. Each meeting is its own bot process with nothing shared, so N meetings
    cost N times one; the bot's CPU alone is counted (the people, Janus and the model are elsewhere in
    production). No headroom is kept: the figure is the ceiling, not a sizing advice.

    None when the measurement had playout underruns: that CPU figure was taken at a load the bot did
    not hold, so it says nothing about how many meetings a core holds without them (nor for an
    unmeasured or non-positive CPU figure)."""
    if underruns > 0 or math.isnan(cpu_percent_per_meeting) or cpu_percent_per_meeting <= 0:
        return None
    return math.floor(CORE_PERCENT / cpu_percent_per_meeting)


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Run by run, numerator / denominator of the same run (e.g. webinar CPU / two-party CPU measured
    back to back): the machine's load in that run divides out, which a ratio of medians does not do."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators for {len(denominators)} denominators")
    return [n / d if d > 0 else math.nan for n, d in zip(numerators, denominators, strict=True)]


def paired_differences(values: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Run by run, value - baseline of the same run (e.g. an engine's p95 minus the pass-through p95)."""
    if len(values) != len(baselines):
        raise ValueError(f"{len(values)} values for {len(baselines)} baselines")
    return [v - b for v, b in zip(values, baselines, strict=True)]


@dataclass(frozen=True)
class Target:
    """A figure's goal: at most (or, higher_is_better, at least) the limit."""

    limit: float
    higher_is_better: bool = False

    def met(self, value: float) -> bool | None:
        """Whether the value meets the target; None for no value."""
        if math.isnan(value):
            return None
        return value >= self.limit if self.higher_is_better else value <= self.limit

    def __str__(self) -> str:
        return f"{'>=' if self.higher_is_better else '<='} {self.limit:g}"


@dataclass(frozen=True)
class Figure:
    """One row of the table: a figure's value per source tree (by label), its unit and target."""

    name: str
    unit: str
    values: dict[str, float]
    target: Target | None = None
    decimals: int = 1
    signed: bool = False  # show a sign ("+40"): a figure that is a difference over a baseline


def format_value(value: float | None, decimals: int = 1, signed: bool = False) -> str:
    """The value to `decimals` places ('n/a' for none), with a sign when `signed`; never '-0'."""
    if value is None or math.isnan(value):
        return "n/a"
    value = round(value, decimals) + 0.0  # -0.4 shows as 0, not -0
    return f"{value:{'+' if signed else ''}.{decimals}f}"


def change_text(before: float, after: float, absolute_decimals: int | None = None) -> str:
    """after relative to before, in %: '-48 %'; '' when either is missing or before is 0. With
    absolute_decimals, the difference in the figure's own unit instead ('-62'): for a figure that is
    itself a difference over a baseline (added latency), whose sign can flip, a percentage means nothing."""
    if math.isnan(before) or math.isnan(after):
        return ""
    if absolute_decimals is not None:
        return format_value(after - before, absolute_decimals, signed=True)
    if before == 0:
        return ""
    percent = round(100 * (after - before) / abs(before))
    return f"{percent:+d} %" if percent else "0 %"


def table(figures: Sequence[Figure], trees: Sequence[str]) -> str:
    """The figures as text, one column per tree in the given order, then the change from the first tree
    to the last (when there are two or more; in the figure's unit for a signed figure, else in %), the
    target and whether the last tree meets it."""
    header = ["figure", *trees]
    if len(trees) > 1:
        header.append("change")
    header += ["target", "met"]
    rows: list[list[str]] = []
    for figure in figures:
        name = f"{figure.name} ({figure.unit})" if figure.unit else figure.name
        row = [name]
        row += [format_value(figure.values.get(t, math.nan), figure.decimals, figure.signed) for t in trees]
        first, last = figure.values.get(trees[0], math.nan), figure.values.get(trees[-1], math.nan)
        if len(trees) > 1:
            row.append(change_text(first, last, figure.decimals if figure.signed else None))
        met = figure.target.met(last) if figure.target is not None else None
        row.append(str(figure.target) if figure.target is not None else "")
        row.append({True: "yes", False: "NO", None: ""}[met])
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def figures_to_json(figures: Sequence[Figure], trees: Sequence[str]) -> str:
    """The figures for another program (the combined report) to print; NaN is written as null."""

    def clean(value: object) -> object:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return json.dumps({"trees": list(trees), "figures": [clean(asdict(f)) for f in figures]}, indent=1)


def figures_from_json(text: str) -> tuple[list[Figure], list[str]]:
    data = json.loads(text)
    figures = []
    for raw in data["figures"]:
        target = raw.get("target")
        figures.append(
            Figure(
                name=raw["name"],
                unit=raw["unit"],
                values={k: math.nan if v is None else float(v) for k, v in raw["values"].items()},
                target=Target(**target) if target is not None else None,
                decimals=raw.get("decimals", 1),
                signed=raw.get("signed", False),
            )
        )
    return figures, list(data["trees"])
