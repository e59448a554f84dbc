"""`/healthz` and Prometheus `/metrics` over HTTP, for orchestrators and dashboards.

Both bodies pass through the process's redactor: health details carry error messages, and a label
value is whatever the code that set it had in hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from translator_bot.metrics import REGISTRY
from translator_bot.redact import redact

HealthProbe = Callable[[], tuple[bool, dict[str, object]]]


class OpsServer:
    def __init__(self, host: str, port: int, health: HealthProbe) -> None:
        self._host, self._port, self._health = host, port, health
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        ok, details = self._health()
        return web.json_response(
            {"status": "ok" if ok else "unhealthy", **details},
            status=200 if ok else 503,
            dumps=lambda body: redact(json.dumps(body)),
        )

    async def _metrics(self, _request: web.Request) -> web.Response:
        # Tens of KB with many lanes, rendered and redacted in a few ms: off the loop, which paces audio.
        body = await asyncio.to_thread(_metrics_text)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _metrics_text() -> bytes:
    return redact(generate_latest(REGISTRY).decode()).encode()
