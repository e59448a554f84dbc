"""JanusSession's socket life cycle against a small scripted Janus WebSocket server: a reclaimable
session outlives its socket and is claimed back, or learns that Janus dropped it (458). The real
Janus, with a proxy cutting the socket, is in tests/integration/test_room_reconnect.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from translator_bot.room.janus import JanusConnectionLost, JanusSession, JanusSessionGone


@dataclass
class FakeJanus:
    keeps_sessions: bool = True  # reclaim_session_timeout > 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("janus-protocol",))
        await ws.prepare(request)
        self.sockets.append(ws)
        async for msg in ws:
            message = json.loads(msg.data)
            self.requests.append(message)
            kind, transaction = message["janus"], message["transaction"]
            if kind == "create":
                await ws.send_json({"janus": "success", "transaction": transaction, "data": {"id": 42}})
            elif kind == "claim" and not self.keeps_sessions:
                error = {"code": 458, "reason": "No such session 42"}
                await ws.send_json({"janus": "error", "transaction": transaction, "error": error})
            elif kind in ("claim", "destroy"):
                await ws.send_json({"janus": "success", "transaction": transaction, "session_id": 42})
            elif kind == "keepalive":
                await ws.send_json({"janus": "ack", "transaction": transaction, "session_id": 42})
        return ws

    async def drop_sockets(self) -> None:
        for ws in self.sockets:
            await ws.close()


@pytest.fixture
async def fake_janus() -> AsyncIterator[FakeJanus]:
    fake = FakeJanus()
    app = web.Application()
    app.router.add_get("/", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"ws://127.0.0.1:{port}/"
    yield fake
    await runner.cleanup()


async def test_a_reclaimable_session_outlives_its_socket_and_is_claimed_back(fake_janus: FakeJanus) -> None:
    lost: list[str] = []
    session = await JanusSession.connect(fake_janus.url, on_transport_lost=lost.append)
    try:
        await fake_janus.drop_sockets()
        async with asyncio.timeout(5):
            while not lost:  # noqa: ASYNC110 - the callback only records
                await asyncio.sleep(0.01)
        assert not session.closed and not session.linked
        # Nothing waits on a dead socket: requests fail at once, the session stays claimable.
        with pytest.raises(JanusConnectionLost):
            await session.attach("janus.plugin.videoroom")
        await session.reclaim()
        assert session.linked and len(fake_janus.sockets) == 2
        claim = fake_janus.requests[-1]
        assert claim["janus"] == "claim" and claim["session_id"] == 42
        assert len(lost) == 1
    finally:
        await session.destroy()
    assert fake_janus.requests[-1]["janus"] == "destroy"


async def test_a_session_janus_dropped_answers_458_and_closes(fake_janus: FakeJanus) -> None:
    fake_janus.keeps_sessions = False
    closed: list[str] = []
    session = await JanusSession.connect(fake_janus.url, on_transport_lost=lambda reason: None)
    session.on_close(closed.append)
    await fake_janus.drop_sockets()
    async with asyncio.timeout(5):
        while session.linked:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    with pytest.raises(JanusSessionGone):
        await session.reclaim()
    assert session.closed and closed and "no longer has the session" in closed[0]
    await session.destroy()


async def test_without_reclaim_a_lost_socket_closes_the_session(fake_janus: FakeJanus) -> None:
    session = await JanusSession.connect(fake_janus.url)
    await fake_janus.drop_sockets()
    reason = await asyncio.wait_for(session.wait_closed(), 5)
    assert "closed the connection" in reason
    await session.destroy()


async def test_reclaim_while_the_server_is_unreachable_can_be_tried_again(fake_janus: FakeJanus) -> None:
    session = await JanusSession.connect(fake_janus.url, on_transport_lost=lambda reason: None)
    url = session.url
    await fake_janus.drop_sockets()
    async with asyncio.timeout(5):
        while session.linked:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    session.url = "ws://127.0.0.1:9/"  # nothing listens there
    with pytest.raises(JanusConnectionLost, match="cannot reach"):
        await session.reclaim(timeout_s=2)
    assert not session.closed
    session.url = url
    await session.reclaim()
    assert session.linked
    await session.destroy()
