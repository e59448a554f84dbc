"""The bot's HTTP endpoints for orchestrators and dashboards.

- `/livez`: the process and its event loop are alive (answering at all proves the loop runs; the
  body adds how late the loop's last tick was). Restart the bot only when this fails.
- `/readyz` and `/healthz` (the same answer): 200 while the bot is in the room and interpreting with
  every part working; 503 otherwise, with `status` `degraded` (some part broken, listed in `degraded`
  with a reason: the bot still serves everyone else) or `not ready` (not in the room, or stopped).
- `/metrics`: the registry of `translator_bot.metrics` through prometheus_client's aiohttp exporter:
  Prometheus text, or OpenMetrics when the scraper asks for it (`Accept`), `?name[]=` to pick
  series, gzip when accepted.

Every body passes through the process's redactor: health details carry error messages, and a label
value is whatever the code that set it had in hand (metrics are redacted label by label, before
the exposition format escapes them).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, RestrictedRegistry

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
        app.router.add_get("/metrics", _metrics)
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


class RedactedRegistry(Collector):
    """A registry's metrics with every label value passed through the redactor."""

    def __init__(self, registry: CollectorRegistry | RestrictedRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        seen: dict[str, str] = {}  # a scrape repeats the same lane and reason values many times

        def clean(value: str) -> str:
            if value not in seen:
                seen[value] = redact(value)
            return seen[value]

        for metric in self._registry.collect():
            redacted = copy.copy(metric)  # the collector's own object keeps its samples
            redacted.samples = [
                sample._replace(labels={k: clean(v) for k, v in sample.labels.items()})
                for sample in metric.samples
            ]
            yield redacted

    def restricted_registry(self, names: Iterable[str]) -> RedactedRegistry:
        """What the exporter calls for `?name[]=...`: only those series, redacted the same way."""
        if not isinstance(self._registry, CollectorRegistry):
            raise TypeError("already restricted")
        return RedactedRegistry(self._registry.restricted_registry(names))


_EXPORT = make_aiohttp_handler(RedactedRegistry(REGISTRY))


async def _metrics(request: web.Request) -> web.StreamResponse:
    # The exporter renders synchronously (tens of KB with many lanes, ~2 ms, plus /proc reads for the
    # process collector): on a loop of its own in a worker thread, not on the loop that paces audio.
    return await asyncio.to_thread(_export_in_thread, request)


def _export_in_thread(request: web.Request) -> web.StreamResponse:
    # The exporter only reads the request's query and headers, which any thread may do.
    return asyncio.run(_render(request))


async def _render(request: web.Request) -> web.StreamResponse:
    return await _EXPORT(request)
