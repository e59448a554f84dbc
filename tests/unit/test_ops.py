"""The bot's HTTP endpoints: liveness apart from readiness, and readiness that tells the truth."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from translator_bot.api.interpreter import meeting_health
from translator_bot.api.rooms import janus_room_state
from translator_bot.interpreter.health import PartHealth, Restarts, assess
from translator_bot.interpreter.meeting import Meeting
from translator_bot.ops import OpsServer

State = dict[str, Any]


def _health(room: Any, meeting: Meeting | None) -> tuple[bool, dict[str, Any]]:
    """What the bot's /healthz serves for this room and meeting."""
    health = meeting_health(janus_room_state(room), meeting)
    return health.ready, health.details


@pytest.fixture
async def ops() -> AsyncIterator[tuple[OpsServer, State]]:
    state: State = {"ready": True, "details": {"status": "ok", "room": "joined"}}
    server = OpsServer("127.0.0.1", 0, lambda: (state["ready"], state["details"]))
    await server.start()
    try:
        yield server, state
    finally:
        await server.stop()


async def get(server: OpsServer, path: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}{path}") as reply:
        return reply.status, await reply.json()


async def test_liveness_stays_up_while_readiness_says_degraded(ops):
    server, state = ops
    assert (await get(server, "/readyz"))[0] == 200
    broken = PartHealth("feed for Bea (b)", "refused", "Maximum number of publishers (2) reached")
    state["ready"] = False
    state["details"] = {"status": "degraded", "degraded": [broken.as_json()]}
    for path in ("/readyz", "/healthz"):
        status, body = await get(server, path)
        assert status == 503 and body["status"] == "degraded"
        assert body["degraded"] == [
            {
                "part": "feed for Bea (b)",
                "status": "refused",
                "reason": "Maximum number of publishers (2) reached",
            }
        ]
    status, body = await get(server, "/livez")
    assert status == 200 and body["status"] == "alive" and body["since_last_tick_s"] < 5


def room(
    *, joined: bool = True, closed: bool = False, control_lost: str | None = None, online: bool = True
) -> Any:
    return types.SimpleNamespace(
        room_id=1234 if joined else None,
        closed=closed,
        control_lost=control_lost,
        online=online,
        reconnects=0,
    )


def test_health_is_not_ready_before_the_meeting_and_after_the_room_is_gone():
    ready, details = _health(room(joined=False), None)
    assert not ready and details["status"] == "not ready"
    ready, details = _health(room(closed=True), None)
    assert not ready and details["room"] == "not joined"


class HealthyMeeting:
    """A meeting whose every part works: what is degraded comes from the room alone."""

    def health(self) -> tuple[bool, dict[str, Any]]:
        return True, {"lanes": {}, "degraded": []}

    def degraded_parts(self) -> list[PartHealth]:
        return []


def test_a_room_connection_being_recovered_is_a_degraded_part():
    ready, details = _health(room(online=False), HealthyMeeting())  # type: ignore[arg-type]
    assert not ready and details["status"] == "degraded" and details["room"] == "reconnecting"
    assert [part["status"] for part in details["degraded"]] == ["reconnecting"]


def test_a_dropped_room_handle_is_a_degraded_part():
    ready, details = _health(room(), HealthyMeeting())  # type: ignore[arg-type]
    assert ready and details["status"] == "ok"
    lost = room(control_lost="the room server dropped the bot's room handle (detached)")
    ready, details = _health(lost, HealthyMeeting())  # type: ignore[arg-type]
    assert not ready and details["status"] == "degraded"
    assert details["degraded"] == [
        {
            "part": "room",
            "status": "lost",
            "reason": "the room server dropped the bot's room handle (detached)",
        }
    ]


def test_assess_and_restart_back_off():
    part = PartHealth("lane a->es", "restarting", "crashed")
    assert assess(in_room=True, fatal=None, parts=[]) == "ok"
    assert assess(in_room=True, fatal=None, parts=[part]) == "degraded"
    assert assess(in_room=False, fatal=None, parts=[]) == "not ready"
    assert assess(in_room=True, fatal="invalid key", parts=[]) == "not ready"
    restarts = Restarts()
    assert [restarts.record(t, "boom") for t in (0, 1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 16, 30, 30]
    assert restarts.recent(10) and not restarts.recent(100)
    assert restarts.record(200, "boom") == 1  # a minute without a crash starts the back-off over
    assert restarts.describe() == "boom (failed 8 times)"
