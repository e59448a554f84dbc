"""The arithmetic behind the before/after benchmarks' tables: run order, medians, meetings per core,
paired ratios and differences, targets, the table and its JSON form."""

from __future__ import annotations

import math

import pytest

from tests.bench.figures import (
    WARMUP,
    Figure,
    Target,
    change_text,
    cpu_percent,
    figures_from_json,
    figures_to_json,
    format_value,
    median,
    meetings_per_core,
    paired_differences,
    paired_ratios,
    percentile,
    run_name,
    run_order,
    table,
)


def test_runs_alternate_the_order_of_the_trees() -> None:
    assert run_order(["before", "after"], 4) == [
        (0, "before"),
        (0, "after"),
        (1, "after"),
        (1, "before"),
        (2, "before"),
        (2, "after"),
        (3, "after"),
        (3, "before"),
    ]


def test_every_tree_is_measured_in_every_run_and_equally_often_first() -> None:
    order = run_order(["before", "after"], 6)
    firsts = [tree for run, tree in order if (run, tree) == next(o for o in order if o[0] == run)]
    assert firsts.count("before") == firsts.count("after") == 3
    for run in range(6):
        assert sorted(tree for r, tree in order if r == run) == ["after", "before"]


def test_a_warm_up_pass_over_every_tree_comes_first_and_is_marked() -> None:
    order = run_order(["before", "after"], 2, warmup=True)
    assert order == [
        (WARMUP, "after"),
        (WARMUP, "before"),
        (0, "before"),
        (0, "after"),
        (1, "after"),
        (1, "before"),
    ]
    assert [run_name(run) for run, _ in order] == ["warm-up", "warm-up", "1", "1", "2", "2"]
    counted = [(run, tree) for run, tree in order if run != WARMUP]
    assert counted == run_order(["before", "after"], 2)  # the warm-up changes nothing that is counted


def test_one_tree_is_simply_repeated() -> None:
    assert run_order(["after"], 3) == [(0, "after"), (1, "after"), (2, "after")]


def test_no_runs_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_order(["a"], 0)


def test_the_median_resists_one_noisy_run_and_skips_missing_values() -> None:
    assert median([10.0, 11.0, 95.0]) == 11.0
    assert median([10.0, math.nan, 12.0]) == 11.0
    assert math.isnan(median([]))
    assert math.isnan(median([math.nan]))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(values, 50) == 5.0  # index round(4.5) = 4, the 5th value
    assert percentile(values, 95) == 10.0
    assert percentile(values, 0) == 1.0
    assert math.isnan(percentile([], 50))


def test_cpu_percent_is_of_one_core() -> None:
    assert cpu_percent(3.0, 30.0) == pytest.approx(10.0)
    assert cpu_percent(60.0, 30.0) == pytest.approx(200.0)  # two cores busy
    with pytest.raises(ValueError):
        cpu_percent(1.0, 0.0)


def test_meetings_per_core_is_one_core_over_one_meeting_rounded_down() -> None:
    assert meetings_per_core(8.0, underruns=0) == 12  # 12.5 meetings do not fit: 12 do
    assert meetings_per_core(8.4, underruns=0) == 11
    assert meetings_per_core(8.33, underruns=0) == 12
    assert meetings_per_core(15.0, underruns=0) == 6
    assert meetings_per_core(100.0, underruns=0) == 1
    assert meetings_per_core(150.0, underruns=0) == 0  # one meeting needs more than a core


def test_meetings_per_core_needs_a_measurement_without_underruns() -> None:
    assert meetings_per_core(8.0, underruns=1) is None
    assert meetings_per_core(math.nan, underruns=0) is None
    assert meetings_per_core(0.0, underruns=0) is None


def test_ratios_and_differences_are_taken_within_each_run() -> None:
    # run 2 was on a loaded machine: both cases doubled, the ratio did not move
    assert paired_ratios([20.0, 40.0], [10.0, 20.0]) == [2.0, 2.0]
    assert median(paired_ratios([20.0, 40.0, 33.0], [10.0, 20.0, 10.0])) == 2.0
    assert paired_differences([200.0, 260.0], [150.0, 200.0]) == [50.0, 60.0]
    assert math.isnan(paired_ratios([1.0], [0.0])[0])
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        paired_differences([1.0, 2.0], [1.0])


def test_targets_read_in_the_right_direction() -> None:
    cpu = Target(8.0)
    assert cpu.met(7.9) is True and cpu.met(8.0) is True and cpu.met(8.1) is False
    assert str(cpu) == "<= 8"
    meetings = Target(12, higher_is_better=True)
    assert meetings.met(12) is True and meetings.met(11) is False
    assert str(meetings) == ">= 12"
    assert cpu.met(math.nan) is None


def test_change_is_relative_to_before() -> None:
    assert change_text(16.0, 8.0) == "-50 %"
    assert change_text(100.0, 110.0) == "+10 %"
    assert change_text(147.0, 146.6) == "0 %"  # not "-0 %"
    assert change_text(0.0, 5.0) == ""
    assert change_text(math.nan, 5.0) == ""


def test_values_show_no_negative_zero() -> None:
    assert format_value(-0.4, 0, signed=True) == "+0"
    assert format_value(-0.04, 1) == "0.0"
    assert format_value(-3.0, 0, signed=True) == "-3"
    assert format_value(math.nan) == "n/a"
    assert change_text(10.0, 9.7, absolute_decimals=0) == "+0"


def test_the_change_of_a_difference_is_in_its_own_unit() -> None:
    """+161 ms added -> +41 ms added is 120 ms less, and -80 -> -24 is no "+69 %"."""
    assert change_text(161.0, 41.0, absolute_decimals=0) == "-120"
    assert change_text(-80.0, -24.0, absolute_decimals=0) == "+56"
    assert change_text(0.0, 5.0, absolute_decimals=1) == "+5.0"


def test_the_table_puts_trees_side_by_side_with_the_target_judged_on_the_last() -> None:
    figures = [
        Figure("CPU per meeting", "% of a core", {"before": 16.0, "after": 7.5}, Target(8.0)),
        Figure("meetings per core", "", {"before": 6, "after": math.nan}, Target(12, True), decimals=0),
        Figure("translate +p95", "ms", {"before": 161.0, "after": 41.0}, Target(40), 0, signed=True),
    ]
    text = table(figures, ["before", "after"])
    lines = text.splitlines()
    assert lines[0].split() == ["figure", "before", "after", "change", "target", "met"]
    assert lines[1].split()[-7:] == ["16.0", "7.5", "-53", "%", "<=", "8", "yes"]
    assert "n/a" in lines[2] and not lines[2].endswith(("yes", "NO"))
    assert lines[3].split()[-6:] == ["+161", "+41", "-120", "<=", "40", "NO"]


def test_a_table_of_one_tree_has_no_change_column() -> None:
    text = table([Figure("x", "", {"after": 1.0})], ["after"])
    assert text.splitlines()[0].split() == ["figure", "after", "target", "met"]


def test_figures_survive_json_with_missing_values() -> None:
    figures = [
        Figure("a", "ms", {"before": 1.5, "after": math.nan}, Target(40), decimals=0, signed=True),
        Figure("b", "", {"after": 3.0}),
    ]
    back, trees = figures_from_json(figures_to_json(figures, ["before", "after"]))
    assert trees == ["before", "after"]
    assert back[0].values["before"] == 1.5 and math.isnan(back[0].values["after"])
    assert back[0].target == Target(40) and back[0].decimals == 0 and back[0].signed
    assert back[1] == figures[1]
