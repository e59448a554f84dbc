"""What is broken in a meeting and what to do about it: pure decisions, the caller supplies the time.

Every part that can break on its own (a lane's task or model session, the audio pump of one
participant's stream, one of the bot's own feeds) reports itself as a `PartHealth` when it is not
well, with a reason a person can act on. `assess` turns the parts into one verdict for the readiness
probe; `Restarts` decides when a crashed part is tried again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from translator_bot.engine.base import EngineSession

Verdict = Literal["ok", "degraded", "not ready"]

# A part that crashed this recently is still reported (as restarted), so a part that crashes every
# few seconds cannot look healthy between crashes.
RECENT_S = 30.0


@dataclass(frozen=True, slots=True)
class PartHealth:
    part: str  # e.g. "lane a->es", "audio a/0", "feed for b"
    status: str  # e.g. "crashed", "restarted", "refused", "lost", "outage"
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"part": self.part, "status": self.status, "reason": self.reason}


def assess(*, in_room: bool, fatal: str | None, parts: Iterable[PartHealth]) -> Verdict:
    """`ok`: in the room and every part works; `degraded`: in the room, interpreting, but some part
    is broken; `not ready`: not in the room, or stopped by a fatal error."""
    if not in_room or fatal is not None:
        return "not ready"
    return "degraded" if any(True for _ in parts) else "ok"


@dataclass(slots=True)
class Restarts:
    """Crash history of one restartable part: exponential back-off (`base` doubling up to `cap`),
    forgotten after `settle` seconds without a crash."""

    base: float = 1.0
    cap: float = 30.0
    settle: float = 60.0
    consecutive: int = 0
    total: int = 0
    last_at: float | None = None
    reason: str = ""

    def record(self, now: float, reason: str) -> float:
        """Note a crash at `now`; returns how long to wait before the next attempt."""
        if self.last_at is not None and now - self.last_at >= self.settle:
            self.consecutive = 0
        self.consecutive += 1
        self.total += 1
        self.last_at = now
        self.reason = reason
        return min(self.cap, self.base * 2.0 ** (self.consecutive - 1))

    def recent(self, now: float, window: float = RECENT_S) -> bool:
        return self.last_at is not None and now - self.last_at < window

    def describe(self) -> str:
        times = "once" if self.total == 1 else f"{self.total} times"
        return f"{self.reason} (failed {times})"


def engine_health(part: str, engine: EngineSession) -> PartHealth | None:
    """A lane's model session that is not working, as a part (None: it works or is connecting)."""
    outage = engine.outage
    if outage is not None:
        return PartHealth(part, "outage", f"the model provider is unreachable: {outage.reason}")
    state = engine.state.value
    if state in ("connecting", "connected"):
        return None
    reason = getattr(engine, "state_reason", None) or f"the model session is {state}"
    return PartHealth(part, state, str(reason))


def lane_health(
    part: str, engine: EngineSession, restarts: Restarts | None, restarting: bool, now: float
) -> PartHealth | None:
    """A lane as a part that is not well: waiting for its restart, restarted lately, or its model
    session not working (None: it is well)."""
    if restarting and restarts is not None:
        return PartHealth(part, "restarting", restarts.describe())
    if restarts is not None and restarts.recent(now):
        return PartHealth(part, "restarted", restarts.describe())
    return engine_health(part, engine)


def outage_report(engines: Mapping[str, EngineSession], now: float) -> dict[str, dict[str, Any]]:
    """Lanes whose model provider is unreachable: since when (UTC), for how long (to the monotonic `now`),
    and why."""
    outages: dict[str, dict[str, Any]] = {}
    for lane, engine in engines.items():
        outage = engine.outage
        if outage is not None:
            outages[lane] = {
                "since": datetime.fromtimestamp(outage.since_wall, UTC).isoformat(timespec="seconds"),
                "seconds": round(max(0.0, now - outage.since), 1),
                "reason": outage.reason,
            }
    return outages
