"""The arrival-jitter estimator: lateness of deltas against their media time, and the hold it implies."""

from __future__ import annotations

import random

import pytest

from translator_bot.audio.jitter import ArrivalJitterEstimator, JitterConfig


def stream(
    estimator: ArrivalJitterEstimator,
    item: str,
    *,
    start: float,
    deltas: int,
    rtf: float,
    jitter: float = 0.0,
    rng: random.Random | None = None,
    delta_s: float = 0.1,
) -> list[float]:
    """Feed one item's deltas (ordered delivery, as on a WebSocket); returns each arrival time."""
    rng = rng or random.Random(0)
    arrivals: list[float] = []
    delivered = start
    for k in range(deltas):
        delivered = max(delivered, start + k * delta_s / rtf + rng.uniform(0, jitter))
        estimator.observe(item, delivered, delta_s)
        arrivals.append(delivered)
    return arrivals


def needed_hold(arrivals: list[float], delta_s: float = 0.1) -> float:
    """The hold after the first delta that plays this item without a gap: max_k (a_k - M_k) - a_0."""
    return max(a - k * delta_s for k, a in enumerate(arrivals)) - arrivals[0]


def test_nothing_learnt_means_no_hold() -> None:
    estimator = ArrivalJitterEstimator()
    assert estimator.hold_s() == 0.0 and estimator.peak_s() is None
    assert estimator.observe("a", 10.0, 0.1) is None  # a first delta sets the schedule
    assert estimator.hold_s() == 0.0


def test_a_stream_ahead_of_real_time_needs_no_hold() -> None:
    estimator = ArrivalJitterEstimator()
    stream(estimator, "a", start=0.0, deltas=30, rtf=3.0)
    peak = estimator.peak_s()
    assert peak == pytest.approx(-0.1 + 0.1 / 3)  # each delta 67 ms ahead of the one before
    assert estimator.hold_s() == 0.0


def test_a_smooth_real_time_stream_needs_only_the_margin() -> None:
    estimator = ArrivalJitterEstimator()
    stream(estimator, "a", start=0.0, deltas=30, rtf=1.0)
    assert estimator.peak_s() == pytest.approx(0.0, abs=1e-9)
    assert estimator.hold_s() == pytest.approx(JitterConfig().margin_s)


@pytest.mark.parametrize("jitter", [0.05, 0.15])
def test_a_jittered_real_time_stream_learns_a_hold_that_covers_later_items(jitter: float) -> None:
    rng = random.Random(11)
    estimator = ArrivalJitterEstimator()
    stream(estimator, "first", start=0.0, deltas=25, rtf=1.0, jitter=jitter, rng=rng)
    config = JitterConfig()
    assert jitter * 0.7 < estimator.hold_s() <= jitter + config.margin_s + min(jitter, config.max_headroom_s)
    for index in range(40):
        hold = estimator.hold_s()
        arrivals = stream(
            estimator, f"i{index}", start=10.0 + 5 * index, deltas=25, rtf=1.0, jitter=jitter, rng=rng
        )
        assert needed_hold(arrivals) <= hold, index


def test_a_stream_that_showed_an_episode_of_delay_is_held_for_a_worse_one() -> None:
    """Most deltas on time, one far late: the next episode may reach as far again beyond the bulk
    (the 90th percentile), so that distance is added as headroom (at most `max_headroom_s`)."""
    config = JitterConfig()
    estimator = ArrivalJitterEstimator(config)
    stream(estimator, "a", start=0.0, deltas=20, rtf=1.0, delta_s=0.2)  # 19 deltas on time
    estimator.observe("a", 4.0 + 0.024, 0.2)  # due at 4.0: 24 ms late
    assert estimator.bulk_s() == pytest.approx(0.0)
    assert estimator.hold_s() == pytest.approx(0.024 + config.margin_s + 0.024)
    # On a busy machine the next episode after a 24 ms peak came 40 ms late: inside the hold now,
    # with the margin (a frame grid's worth) to spare.
    assert estimator.hold_s() - config.margin_s >= 0.040
    estimator.observe("a", 4.2 + 0.2, 0.2)  # 200 ms late: the headroom stops at its bound
    assert estimator.hold_s() == pytest.approx(0.2 + config.margin_s + config.max_headroom_s)


def test_steady_jitter_gets_little_headroom() -> None:
    """Every delta 0..50 ms late: the bulk crowds up to the peak, which is then a bound, not an outlier."""
    config = JitterConfig()
    estimator = ArrivalJitterEstimator(config)
    stream(estimator, "a", start=0.0, deltas=100, rtf=1.0, jitter=0.05, rng=random.Random(3))
    peak = estimator.peak_s()
    assert peak is not None and 0.04 < peak <= 0.05
    assert estimator.hold_s() - (peak + config.margin_s) < 0.01


def test_a_smooth_stream_pays_about_nothing_for_headroom() -> None:
    config = JitterConfig()
    estimator = ArrivalJitterEstimator(config)
    stream(estimator, "a", start=0.0, deltas=30, rtf=1.0, delta_s=0.2, jitter=0.003, rng=random.Random(5))
    peak = estimator.peak_s()
    assert peak is not None and peak <= 0.003
    assert estimator.hold_s() <= config.margin_s + 0.006


def test_a_stream_ahead_of_real_time_gets_no_headroom() -> None:
    estimator = ArrivalJitterEstimator()
    stream(estimator, "a", start=0.0, deltas=30, rtf=3.0, jitter=0.03, rng=random.Random(7))
    assert estimator.hold_s() == 0.0


def test_a_stream_slower_than_real_time_counts_its_drift() -> None:
    estimator = ArrivalJitterEstimator()
    arrivals = stream(estimator, "a", start=0.0, deltas=40, rtf=0.95)
    assert estimator.peak_s() == pytest.approx(needed_hold(arrivals))
    assert estimator.peak_s() == pytest.approx(39 * 0.1 * (1 / 0.95 - 1))


def test_the_schedule_follows_the_earliest_delta_not_the_first() -> None:
    """A first delta that came late itself must not set a schedule that later deltas look early to."""
    estimator = ArrivalJitterEstimator()
    estimator.observe("a", 0.15, 0.1)  # due at 0.0, 150 ms late
    assert estimator.observe("a", 0.16, 0.1) == pytest.approx(-0.09)  # due at 0.1, 60 ms late
    # Due at 0.2, 150 ms late: 90 ms later than the earliest schedule seen (the second delta's).
    assert estimator.observe("a", 0.35, 0.1) == pytest.approx(0.09)
    assert estimator.peak_s() == pytest.approx(0.09)


def test_items_keep_their_own_schedules() -> None:
    estimator = ArrivalJitterEstimator()
    estimator.observe("a", 0.0, 0.1)
    estimator.observe("b", 5.0, 0.1)  # another lane's item, much later: not late for a's schedule
    assert estimator.observe("a", 0.1, 0.1) == pytest.approx(0.0)
    assert estimator.observe("b", 5.1, 0.1) == pytest.approx(0.0)
    assert estimator.tracked_items == 2
    estimator.forget("a")
    estimator.forget("unknown")
    assert estimator.tracked_items == 1


def test_old_jitter_is_forgotten_after_the_window() -> None:
    estimator = ArrivalJitterEstimator(JitterConfig(window=50))
    stream(estimator, "jittery", start=0.0, deltas=30, rtf=1.0, jitter=0.15, rng=random.Random(2))
    assert estimator.hold_s() > 0.1
    stream(estimator, "fast", start=10.0, deltas=60, rtf=4.0)
    assert estimator.hold_s() == 0.0


def test_the_hold_is_capped() -> None:
    estimator = ArrivalJitterEstimator(JitterConfig(max_hold_s=0.3))
    estimator.observe("a", 0.0, 0.1)
    estimator.observe("a", 0.5, 0.1)  # 400 ms late: within the pause bound, but too much to budget
    assert estimator.hold_s() == 0.3


def test_a_pause_inside_an_item_is_not_learnt_as_jitter() -> None:
    """The translate endpoint keeps one item across a short pause of the speaker: its output pauses."""
    estimator = ArrivalJitterEstimator()
    stream(estimator, "a", start=0.0, deltas=10, rtf=1.0, delta_s=0.2)
    assert estimator.observe("a", 2.0 + 1.2, 0.2) is None  # due at 2.0: a 1.2 s pause
    # The schedule restarts after the pause: the next delta is measured against the resumed one.
    assert estimator.observe("a", 3.4 + 0.05, 0.2) == pytest.approx(0.05)
    assert estimator.hold_s() == pytest.approx(0.05 + JitterConfig().margin_s + 0.05)
