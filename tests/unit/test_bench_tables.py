"""What the before/after benchmarks put in their tables, from given measurements: the capacity figures
(meetings per core from the median CPU, none when a run underran), the webinar ratio taken run by run,
and the added latency over the same tree's pass-through."""

from __future__ import annotations

import math

from tests.bench.bench_meeting import EngineRuns, MeetingSample, capacity_figures, held, latency_figures
from tests.bench.bench_webinar import CaseRun, webinar_figures
from tests.bench.figures import Figure, Target, table
from tests.bench.perf_report import fold_variants


def row(figures: list[Figure], name: str) -> dict[str, float]:
    return next(f.values for f in figures if f.name.startswith(name))


def test_capacity_takes_the_median_meeting_and_derives_meetings_per_core() -> None:
    samples = {
        "before": [MeetingSample(16.0, 148, 0), MeetingSample(17.0, 149, 0), MeetingSample(40.0, 150, 0)],
        "after": [MeetingSample(7.0, 100, 0), MeetingSample(8.0, 101, 0), MeetingSample(9.0, 102, 0)],
    }
    figures = capacity_figures(samples, ["before", "after"])
    assert row(figures, "bot CPU per two-party meeting") == {"before": 17.0, "after": 8.0}
    assert row(figures, "meetings per core") == {"before": 5.0, "after": 12.0}
    assert row(figures, "bot peak RSS") == {"before": 149.0, "after": 101.0}


def test_capacity_gives_no_meetings_per_core_from_runs_that_underran() -> None:
    samples = {"after": [MeetingSample(5.0, 100, 0), MeetingSample(5.0, 100, 3)]}
    figures = capacity_figures(samples, ["after"])
    assert math.isnan(row(figures, "meetings per core")["after"])
    assert row(figures, "playout underruns") == {"after": 3.0}


def test_the_ramp_reports_the_most_meetings_held_without_underruns() -> None:
    clean, bad = MeetingSample(10.0, 100, 0), MeetingSample(10.0, 100, 2)
    samples = {1: {"after": [clean]}, 2: {"after": [clean, clean]}, 3: {"after": [clean, bad, clean]}}
    assert held(samples, "after") == 2.0
    assert math.isnan(held({1: {"after": [bad]}}, "after"))


def test_the_webinar_ratio_is_taken_within_each_run() -> None:
    """Run 2 ran on a loaded machine (both cases slower): per run the ratios are 2.0, 2.0, 1.5, median
    2.0; the ratio of the medians (45 / 30 = 1.5) would mix cases measured under different loads."""

    def runs(*cpus: float) -> list[CaseRun]:
        return [CaseRun(c, 150, 0, 3) for c in cpus]

    results = {
        "after": {
            "two-party per-listener": runs(10.0, 40.0, 30.0),
            "webinar per-language": runs(20.0, 80.0, 45.0),
        }
    }
    figures = webinar_figures(results, list(results["after"]), ["after"])
    ratio = next(f for f in figures if f.name == "webinar per-language x two-party")
    assert ratio.values == {"after": 2.0}
    assert ratio.target is not None and ratio.target.limit == 2.0
    assert row(figures, "webinar per-language: bot CPU") == {"after": 45.0}


def test_added_latency_is_over_the_same_trees_pass_through() -> None:
    def engines(passthrough: list[float], translate: list[float]) -> dict[str, EngineRuns]:
        return {
            "passthrough": EngineRuns(passthrough),
            "translate": EngineRuns(translate),
            "realtime": EngineRuns([], missing=2),
        }

    runs = {
        # the before tree's room path is 100 ms slower: its pass-through shows it, the engine adds 150
        "before": engines([0.8, 0.8, 0.8], [0.95, 0.95, 0.95]),
        "after": engines([0.7, 0.7, 0.7], [0.74, 0.74, 0.74]),
    }
    figures = latency_figures(runs, ["before", "after"])
    assert row(figures, "pass-through p50") == {"before": 800.0, "after": 700.0}
    added = row(figures, "translate added p95")
    assert added["before"] == 150.0 and round(added["after"]) == 40
    assert all(math.isnan(v) for v in row(figures, "realtime added p95").values())  # nothing arrived
    assert row(figures, "realtime: sentences missing") == {"before": 2.0, "after": 2.0}


def test_the_webinar_ratio_is_taken_within_each_kind_of_room() -> None:
    """--dtx both: the plain and the DTX column each divide by their own two-party runs."""

    def runs(*cpus: float) -> list[CaseRun]:
        return [CaseRun(c, 150, 0, 3) for c in cpus]

    results = {
        "after": {"two-party per-listener": runs(10.0, 10.0), "webinar per-language": runs(30.0, 30.0)},
        "after+dtx": {"two-party per-listener": runs(10.0, 12.0), "webinar per-language": runs(15.0, 18.0)},
    }
    figures = webinar_figures(results, list(results["after"]), ["after", "after+dtx"])
    assert row(figures, "webinar per-language x two-party") == {"after": 3.0, "after+dtx": 1.5}


def test_capacity_reports_how_late_the_fake_itself_sent() -> None:
    samples = {"after": [MeetingSample(5.0, 100, 0, 30.0), MeetingSample(5.0, 100, 0, 250.0)]}
    samples["after"].append(MeetingSample(5.0, 100, 0, 40.0))
    assert row(capacity_figures(samples, ["after"]), "fake's worst late send") == {"after": 40.0}


def test_the_report_summary_keeps_one_column_per_tree_and_gives_dtx_rooms_their_own_rows() -> None:
    ratio = Figure(
        "webinar per-language x two-party",
        "",
        {"base": 3.0, "base+dtx": 2.5, "this": 1.9, "this+dtx": 1.4},
        Target(2.0),
        decimals=2,
    )
    plain, dtx = fold_variants([ratio], ["base", "this"])
    assert (plain.name, plain.values) == (ratio.name, {"base": 3.0, "this": 1.9})
    assert (dtx.name, dtx.values) == (f"{ratio.name}, DTX rooms", {"base": 2.5, "this": 1.4})
    assert dtx.target == ratio.target and dtx.decimals == 2
    cpu = Figure("bot CPU", "% of a core", {"base": 17.0, "this": 8.0})
    assert fold_variants([cpu], ["base", "this"]) == [cpu], "a bench without variants is unchanged"
    text = table(fold_variants([ratio], ["base", "this"]), ["base", "this"])
    assert "+dtx" not in text and "DTX rooms" in text
