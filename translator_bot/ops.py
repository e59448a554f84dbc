"""The bot's HTTP endpoints for orchestrators and dashboards.

- `/livez`: the process and its event loop are alive (answering at all proves the loop runs; the
  body adds how late the loop's last tick was). Restart the bot only when this fails.
- `/readyz` and `/healthz` (the same answer): 200 while the bot is in the room and interpreting with
  every part working; 503 otherwise, with `status` `degraded` (some part broken, listed in `degraded`
  with a reason: the bot still serves everyone else) or `not ready` (not in the room, or stopped).
- `/metrics`: Prometheus text.

Every body passes through the process's redactor: health details carry error messages, and a label
value is whatever the code that set it had in hand.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from translator_bot.metrics import REGISTRY
from translator_bot.redact import redact
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)

HealthProbe = Callable[[], tuple[bool, dict[str, object]]]

TICK_S = 1.0


class OpsServer:
    def __init__(self, host: str, port: int, health: HealthProbe) -> None:
        self._host, self._port, self._health = host, port, health
        self._runner: web.AppRunner | None = None
        self._tasks: TaskSet | None = None
        self._last_tick = time.monotonic()
        self._worst_lag_s = 0.0
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/healthz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        self._tasks = TaskSet("ops server", logger=log)
        self._tasks.spawn(self._tick(), name="ops loop ticker")

    async def stop(self) -> None:
        if self._tasks is not None:
            await self._tasks.close()
            self._tasks = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _tick(self) -> None:
        """Notes how late the loop runs a 1 s timer: a loop blocked by something shows as lag here."""
        while True:
            self._last_tick = time.monotonic()
            await asyncio.sleep(TICK_S)
            lag = time.monotonic() - self._last_tick - TICK_S
            self._worst_lag_s = max(self._worst_lag_s, lag)

    async def _livez(self, _request: web.Request) -> web.Response:
        since_tick = time.monotonic() - self._last_tick
        return web.json_response(
            {
                "status": "alive",
                "since_last_tick_s": round(since_tick, 3),
                "worst_loop_lag_s": round(self._worst_lag_s, 3),
            }
        )

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready, details = self._health()
        status = details.get("status") or ("ok" if ready else "not ready")
        return web.json_response(
            {**details, "status": status},
            status=200 if ready else 503,
            dumps=lambda body: redact(json.dumps(body)),
        )

    async def _metrics(self, _request: web.Request) -> web.Response:
        # Tens of KB with many lanes, rendered and redacted in a few ms: off the loop, which paces audio.
        body = await asyncio.to_thread(_metrics_text)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _metrics_text() -> bytes:
    return redact(generate_latest(REGISTRY).decode()).encode()
