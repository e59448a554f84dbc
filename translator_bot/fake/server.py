"""A local fake of the OpenAI Realtime API: `/v1/realtime` and `/v1/realtime/translations`.

Point a client at it with `OPENAI_BASE_URL=http://127.0.0.1:<port>/v1` (or the SDK's
`websocket_base_url="ws://127.0.0.1:<port>/v1"`) and any API key. Azure-style clients connect to
`/openai/v1/realtime?model=<deployment>` with an `api-key` header or an Entra ID bearer token.
Credentials and the OpenAI-Organization / OpenAI-Project headers are judged in fake/handshake.py.

Tests steer it with `FakeRealtimeServer.control(...)` or `POST /_fake/control` and read what
happened from `.state` or `GET /_fake/state`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from argparse import Namespace
from pathlib import Path
from typing import Any

from aiohttp import web

from translator_bot.engine.protocol import parse_server_event, parse_translation_server_event
from translator_bot.errors import ExitCode
from translator_bot.fake.base_session import BaseSession, SessionContext
from translator_bot.fake.catalog import load_catalog
from translator_bot.fake.conversation_session import ConversationSession
from translator_bot.fake.events import MALFORMED_EVENTS, EventSink, new_id
from translator_bot.fake.handshake import auth_refusal, caller, openai_error
from translator_bot.fake.pacing import StreamPace
from translator_bot.fake.state import (
    DropFault,
    EndpointName,
    FakeOptions,
    FakeState,
    FaultConfig,
    SessionRecord,
)
from translator_bot.fake.translation_session import TranslationSession
from translator_bot.fixtures import FixtureError
from translator_bot.shutdown import ShutdownSignals

log = logging.getLogger(__name__)

_ROUTES: dict[str, EndpointName] = {
    "/v1/realtime": "realtime",
    "/v1/realtime/translations": "translations",
    "/openai/v1/realtime": "realtime",  # Azure OpenAI's GA path
}
_MAX_MESSAGE = 16 * 1024 * 1024  # one append may carry 15 MiB of audio, base64 inside JSON


class ControlError(ValueError):
    """A control command the fake does not understand."""


class FakeRealtimeServer:
    def __init__(
        self,
        fixtures_dir: Path | None = None,
        *,
        options: FakeOptions | None = None,
        session_max_seconds: float = 3600.0,
        first_audio_delay_ms: int = 0,
    ) -> None:
        self.state = FakeState()
        self.faults = FaultConfig(
            session_max_seconds=session_max_seconds, first_audio_delay_ms=first_audio_delay_ms
        )
        self.options = options or FakeOptions()
        self._fixtures_dir = fixtures_dir
        self._sessions: dict[str, BaseSession] = {}
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        catalog = await asyncio.to_thread(load_catalog, self._fixtures_dir)
        self._ctx = SessionContext(self.state, self.faults, self.options, catalog)
        app = web.Application()
        for path in _ROUTES:
            app.router.add_get(path, self._handle_ws)
        app.router.add_post("/_fake/control", self._handle_control)
        app.router.add_get("/_fake/state", self._handle_state)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._host = host
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self._port = sockets[0].getsockname()[1]
        log.info("fake realtime server listening on %s", self.base_url)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the fake server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    @property
    def websocket_base_url(self) -> str:
        return f"ws://{self._host}:{self.port}/v1"

    async def stop(self) -> None:
        for session in list(self._sessions.values()):
            session.record.close_reason = session.record.close_reason or "server_stopped"
            with contextlib.suppress(Exception):
                await session.ws.close(code=1001, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeRealtimeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- control --------------------------------------------------------------------------------

    async def control(self, command: dict[str, Any]) -> dict[str, Any]:
        """Apply one control command (the same JSON as `POST /_fake/control`)."""
        action = command.get("action")
        live = list(self._sessions.values())
        if action == "drop":
            after = command.get("after_audio_ms")
            output = command.get("after_output_ms")
            scope = command.get("scope", "all")
            if scope not in ("all", "next"):
                raise ControlError("scope must be 'all' or 'next'")
            fault = DropFault(
                scope=scope,
                after_audio_ms=None if after is None else int(after),
                after_output_ms=None if output is None else int(output),
            )
            if scope == "next":
                self.faults.pending_drop_next = fault
            else:
                for session in live:
                    session.arm_drop(fault)
            return {"ok": True, "sessions": len(live)}
        if action == "reject_auth":
            self.faults.reject_auth = bool(command.get("enabled", True))
        elif action == "key_scope":
            # `{"action": "key_scope", "organization": "org-a", "project": "proj_b"}`: the key belongs
            # to these; a handshake naming others is refused. A missing name accepts any.
            organization, project = command.get("organization"), command.get("project")
            self.faults.key_organization = None if organization is None else str(organization)
            self.faults.key_project = None if project is None else str(project)
        elif action == "quota_exceeded":
            self.faults.quota_exceeded = bool(command.get("enabled", True))
            if self.faults.quota_exceeded:
                for session in live:
                    await session.send_quota_error()
        elif action == "malformed":
            kind = str(command.get("kind", "bad_fields"))
            if kind not in MALFORMED_EVENTS:
                raise ControlError(f"kind must be one of {sorted(MALFORMED_EVENTS)}")
            if live:
                for session in live:
                    await session.send_malformed(kind)
            else:
                self.faults.pending_malformed += 1
        elif action == "first_audio_delay_ms":
            self.faults.first_audio_delay_ms = int(command["value"])
        elif action == "stream_pace":
            self._set_stream_pace(command)
        elif action == "transcript_suffix":
            self.faults.transcript_suffix = str(command.get("value", ""))
        elif action == "session_max_seconds":
            self.faults.session_max_seconds = float(command["value"])
            for session in live:
                session.cap_changed()
        else:
            raise ControlError(f"unknown action {action!r}")
        return {"ok": True, "sessions": len(live)}

    def _set_stream_pace(self, command: dict[str, Any]) -> None:
        """`{"action": "stream_pace", "real_time_factor": 1.0, "jitter_ms": 150, "seed": 7}` makes every
        realtime response (from the next one on) stream at that pace with that jitter before each
        delta; `"enabled": false` restores the fast default."""
        if not command.get("enabled", True):
            self.faults.stream_pace = None
            return
        seed = command.get("seed")
        pace = StreamPace(
            real_time_factor=float(command.get("real_time_factor", 1.0)),
            jitter_ms=float(command.get("jitter_ms", 0)),
            seed=None if seed is None else int(seed),
        )
        self.faults.stream_pace = pace
        self.faults.pace_rng = random.Random(pace.seed)

    async def _handle_control(self, request: web.Request) -> web.Response:
        try:
            command = await request.json()
            if not isinstance(command, dict):
                raise ControlError("expected a JSON object")
            result = await self.control(command)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response(result)

    async def _handle_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.snapshot())

    # --- WebSocket sessions ---------------------------------------------------------------------

    def _refuse(self, request: web.Request, endpoint: EndpointName) -> web.Response | None:
        """The HTTP answer the real service gives instead of upgrading, or None to accept."""
        refusal = auth_refusal(request.path.startswith("/openai/"), request.headers, self.faults)
        if refusal is not None:
            return refusal
        if request.headers.get("OpenAI-Beta", "").lower().startswith("realtime"):
            return openai_error(
                400,
                "This server implements the GA Realtime protocol only (no OpenAI-Beta header).",
                "invalid_request_error",
                "beta_not_supported",
            )
        if not request.query.get("model"):
            return openai_error(
                400,
                "Missing required parameter: 'model'.",
                "invalid_request_error",
                "missing_required_parameter",
                "model",
            )
        if self.faults.quota_exceeded:
            return openai_error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                "insufficient_quota",
            )
        return None

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        endpoint = _ROUTES[request.path]
        refusal = self._refuse(request, endpoint)
        if refusal is not None:
            return refusal
        ws = web.WebSocketResponse(max_msg_size=_MAX_MESSAGE, compress=False, autoping=True)
        if not ws.can_prepare(request).ok:
            return openai_error(400, "Expected a WebSocket upgrade.", "invalid_request_error", None)
        await ws.prepare(request)
        who = caller(request.headers)
        record = SessionRecord(
            id=new_id("sess"),
            endpoint=endpoint,
            model=request.query["model"],
            path=request.path,
            auth=who.auth,
            organization=who.organization,
            project=who.project,
        )
        self.state.sessions.append(record)
        parse = parse_server_event if endpoint == "realtime" else parse_translation_server_event
        sink = EventSink(ws, parse, record, self.state)
        cls = ConversationSession if endpoint == "realtime" else TranslationSession
        session: BaseSession = cls(ws, request, record, self._ctx, sink)
        self._sessions[record.id] = session
        log.info("session %s opened on %s (model %s)", record.id, request.path, record.model)
        try:
            await session.run()
        finally:
            self._sessions.pop(record.id, None)
            log.info("session %s closed (%s)", record.id, record.close_reason)
        return ws


def run_fake_server_cli(args: Namespace) -> int:
    """`translator-bot fake-realtime`: serve until SIGINT/SIGTERM."""
    try:
        return asyncio.run(_serve(args))
    except (FileNotFoundError, FixtureError) as exc:
        log.error("cannot load the speech fixtures: %s", exc)
        return int(ExitCode.USAGE)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return int(ExitCode.FAILURE)


async def _serve(args: Namespace) -> int:
    server = FakeRealtimeServer(
        getattr(args, "fixtures", None),
        session_max_seconds=float(getattr(args, "session_max_seconds", 3600.0)),
        first_audio_delay_ms=int(getattr(args, "first_audio_delay_ms", 0) or 0),
    )
    await server.start(args.host, args.port)
    with ShutdownSignals() as stop:
        print(f"fake realtime server ready: OPENAI_BASE_URL={server.base_url}", flush=True)
        try:
            await stop.wait()
        finally:
            await server.stop()
    stop.raise_if_interrupted()  # Ctrl-C: exit 130 (cli); SIGTERM: a clean stop
    return int(ExitCode.OK)
