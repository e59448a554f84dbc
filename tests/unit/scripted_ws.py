"""A tiny scripted Realtime WebSocket server for engine unit tests.

Each test supplies a script (a coroutine given the connection); the server validates every client
frame with the strict SDK unions and records anything that fails, so a test can assert that the
clients only ever send valid events. Server events the script sends are validated too (except the
deliberately malformed ones sent with `send_raw`).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel

from translator_bot.engine.protocol import (
    MalformedEventError,
    UnknownEventError,
    parse_client_event,
    parse_server_event,
    parse_translation_client_event,
    parse_translation_server_event,
)

Script = Callable[["ScriptedConn"], Awaitable[None]]


class ScriptedConn:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.path = request.path
        self.query = dict(request.query)
        self.headers = dict(request.headers)
        self.translation = request.path.endswith("/translations")
        self.events: list[BaseModel] = []  # every valid client event, in order
        self.violations: list[str] = []
        self.audio = bytearray()  # all appended audio, decoded
        self.inbox: asyncio.Queue[BaseModel] = asyncio.Queue()  # non-audio client events
        self.audio_grew = asyncio.Event()
        self.closed = asyncio.Event()
        self._n = 0

    @property
    def audio_ms(self) -> int:
        return len(self.audio) // 48

    def _accept(self, raw: str) -> None:
        parse = parse_translation_client_event if self.translation else parse_client_event
        try:
            event = parse(raw)
        except (UnknownEventError, MalformedEventError) as exc:
            self.violations.append(str(exc))
            return
        self.events.append(event)
        kind = getattr(event, "type", "")
        if kind in ("input_audio_buffer.append", "session.input_audio_buffer.append"):
            self.audio += base64.b64decode(event.audio)  # type: ignore[attr-defined]
            self.audio_grew.set()
        else:
            self.inbox.put_nowait(event)

    async def next_event(self, kind: str | None = None, wait_s: float = 5.0) -> BaseModel:
        async with asyncio.timeout(wait_s):
            while True:
                event = await self.inbox.get()
                if kind is None or getattr(event, "type", "") == kind:
                    return event

    async def wait_audio_ms(self, ms: int, wait_s: float = 5.0) -> None:
        async with asyncio.timeout(wait_s):
            while self.audio_ms < ms:
                self.audio_grew.clear()
                await self.audio_grew.wait()

    def sent_of(self, kind: str) -> list[Any]:
        return [e for e in self.events if getattr(e, "type", "") == kind]

    async def send(self, event: dict[str, Any]) -> None:
        self._n += 1
        event.setdefault("event_id", f"srv_{self._n}")
        raw = json.dumps(event)
        (parse_translation_server_event if self.translation else parse_server_event)(raw)
        await self.ws.send_str(raw)

    async def send_raw(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            await self.ws.send_bytes(raw)
        else:
            await self.ws.send_str(raw)

    async def session_updated(self) -> None:
        """Answer the client's session.update the way the server does."""
        await self.next_event("session.update")
        if self.translation:
            session = {
                "id": "sess_t",
                "type": "translation",
                "model": "gpt-realtime-translate",
                "expires_at": 0,
                "audio": {},
            }
            await self.send({"type": "session.updated", "session": session})
        else:
            await self.send({"type": "session.updated", "session": {"type": "realtime"}})


async def _accept_session_forever(conn: ScriptedConn) -> None:
    await conn.session_updated()
    await conn.closed.wait()


class ScriptedServer:
    def __init__(self, scripts: list[Script] | None = None, *, reject_status: int | None = None) -> None:
        """`scripts[i]` runs on the i-th connection; the last one repeats."""
        self.scripts = scripts or [_accept_session_forever]
        self.reject_status = reject_status
        self.conns: list[ScriptedConn] = []
        self.script_errors: list[str] = []
        self._new_conn = asyncio.Event()  # a script that failed (e.g. sent an invalid event)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, port: int = 0) -> None:
        """Listen on `port` (0: any free one); a stopped server can start again on its old port."""
        app = web.Application()
        app.router.add_get("/v1/realtime", self._handle)
        app.router.add_get("/v1/realtime/translations", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        for conn in self.conns:
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_conns(self, count: int, wait_s: float = 10.0) -> ScriptedConn:
        async with asyncio.timeout(wait_s):
            while len(self.conns) < count:
                self._new_conn.clear()
                await self._new_conn.wait()
        return self.conns[count - 1]

    def _script_done(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.script_errors.append(repr(task.exception()))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.reject_status is not None:
            return web.json_response(
                {"error": {"message": "Incorrect API key provided"}}, status=self.reject_status
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = ScriptedConn(ws, request)
        script = self.scripts[min(len(self.conns), len(self.scripts) - 1)]
        self.conns.append(conn)
        self._new_conn.set()
        task: asyncio.Future[None] = asyncio.ensure_future(script(conn))
        task.add_done_callback(self._script_done)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    conn._accept(msg.data)
        finally:
            conn.closed.set()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return ws


def pcm_tone(ms: int, amplitude: int = 8000, freq: float = 220.0) -> bytes:
    """A loud tone the input gate counts as speech."""
    import numpy as np

    n = ms * 24
    t = np.arange(n) / 24000.0
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return bytes(ms * 48)
