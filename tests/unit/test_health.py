"""Health decisions: verdicts, back-off, and how a lane's model session is reported."""

from __future__ import annotations

from translator_bot.engine.base import EngineState, Outage
from translator_bot.interpreter.health import (
    PartHealth,
    Restarts,
    assess,
    engine_health,
    lane_health,
    outage_report,
)


class Engine:
    def __init__(
        self, state: EngineState, outage: Outage | None = None, state_reason: str | None = None
    ) -> None:
        self.state, self.outage, self.state_reason = state, outage, state_reason


def test_the_verdict_is_ok_degraded_or_not_ready() -> None:
    broken = [PartHealth("feed for b", "refused", "publisher limit")]
    assert assess(in_room=True, fatal=None, parts=[]) == "ok"
    assert assess(in_room=True, fatal=None, parts=broken) == "degraded"
    assert assess(in_room=False, fatal=None, parts=[]) == "not ready"
    assert assess(in_room=True, fatal="bad key", parts=[]) == "not ready"


def test_restarts_back_off_doubling_to_a_cap_and_settle() -> None:
    restarts = Restarts()
    assert [restarts.record(float(t), "boom") for t in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert restarts.record(100.0, "boom") == 1  # a minute without a crash: forgotten
    assert restarts.describe() == "boom (failed 8 times)"


def test_a_working_or_connecting_session_is_not_a_broken_part() -> None:
    assert engine_health("lane a->es", Engine(EngineState.CONNECTED)) is None  # type: ignore[arg-type]
    assert engine_health("lane a->es", Engine(EngineState.CONNECTING)) is None  # type: ignore[arg-type]


def test_an_outage_or_a_failed_session_is_reported_with_its_reason() -> None:
    outage = Outage(since=10.0, since_wall=0.0, reason="connection refused")
    part = engine_health("lane a->es", Engine(EngineState.DEGRADED, outage))  # type: ignore[arg-type]
    assert part == PartHealth("lane a->es", "outage", "the model provider is unreachable: connection refused")
    failed = engine_health("lane a->es", Engine(EngineState.DEGRADED))  # type: ignore[arg-type]
    assert failed == PartHealth("lane a->es", "degraded", "the model session is degraded")


def test_outages_say_since_when_for_how_long_and_why() -> None:
    outage = Outage(since=10.0, since_wall=0.0, reason="connection refused")
    engines = {"a->es": Engine(EngineState.DEGRADED, outage), "b->en": Engine(EngineState.CONNECTED)}
    report = outage_report(engines, 42.25)  # type: ignore[arg-type]
    assert report == {
        "a->es": {"since": "1970-01-01T00:00:00+00:00", "seconds": 32.2, "reason": "connection refused"}
    }


def test_a_lane_is_reported_restarting_then_restarted_then_by_its_session() -> None:
    engine = Engine(EngineState.DEGRADED)
    restarts = Restarts()
    restarts.record(0.0, "RuntimeError: a bug")
    waiting = lane_health("lane a->es", engine, restarts, True, 0.5)  # type: ignore[arg-type]
    assert waiting == PartHealth("lane a->es", "restarting", "RuntimeError: a bug (failed once)")
    back = lane_health("lane a->es", engine, restarts, False, 5.0)  # type: ignore[arg-type]
    assert back is not None and back.status == "restarted"
    settled = lane_health("lane a->es", engine, restarts, False, 60.0)  # type: ignore[arg-type]
    assert settled == PartHealth("lane a->es", "degraded", "the model session is degraded")
    assert lane_health("lane a->es", Engine(EngineState.CONNECTED), None, False, 0.0) is None  # type: ignore[arg-type]
