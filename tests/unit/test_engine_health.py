"""A lane's provider health, the backoff and outage bookkeeping, on times the test gives."""

from __future__ import annotations

import pytest

from translator_bot.engine.health import LaneHealth
from translator_bot.errors import ProviderUnavailableError


def health() -> LaneHealth:
    return LaneHealth("api.example.org/v1/realtime", give_up_after_s=60.0, healthy_after_s=30.0)


def test_failed_attempts_make_one_outage_that_ends_the_lane_when_too_long() -> None:
    h = health()
    first = h.attempt_failed(100.0, "cannot connect", 1000.0, covered=False, after_serving=False)
    second = h.attempt_failed(101.0, "refused", 1001.0, covered=False, after_serving=False)
    assert 0.375 <= first <= 0.625 and 0.75 <= second <= 1.25  # one backoff, doubling
    assert h.outage is not None and (h.outage.since, h.outage.since_wall) == (100.0, 1000.0)
    assert (h.outage.reason, h.outage.attempts) == ("refused", 2)
    assert h.time_left(130.0) == 30.0
    with pytest.raises(ProviderUnavailableError, match="60 s allowed"):
        h.attempt_failed(160.0, "still down", 1060.0, covered=False, after_serving=False)


def test_a_link_that_still_serves_covers_failed_attempts() -> None:
    h = health()
    h.attempt_failed(100.0, "cannot connect", 1000.0, covered=True, after_serving=True)
    assert h.outage is None and not h.recovering


def test_a_drop_of_an_unproven_link_continues_the_outage_a_healthy_one_does_not() -> None:
    h = health()
    h.lost(50.0, healthy=False, reason="session #1 ended after 0.1 s", wall=500.0)
    assert h.outage is not None and h.outage.since == 50.0 and h.recovering
    h.lost(52.0, healthy=False, reason="session #2 ended after 0.1 s", wall=502.0)
    assert h.outage.since == 50.0 and h.outage.attempts == 2
    ended = h.recovered()
    assert ended is not None and h.outage is None and not h.recovering
    h.lost(90.0, healthy=True, reason="session #3 ended after 40 s", wall=540.0)
    assert h.outage is None and h.lost_since == 90.0
    assert h.proven_by_time(activated_at=60.0, now=90.0) and not h.proven_by_time(activated_at=61.0, now=90.0)
