"""The meeting page's HTTP server: the page itself, the vendored Janus client, the page's
configuration, and starting an interpreter for a meeting on request.

Routes:
  GET  /                                   the page (index.html, app.js, labels.js, sdp.js, style.css,
                                           recorder.js)
  GET  /vendor/janus.js, /vendor/adapter.js  vendored by scripts/vendor-janus-js.sh
  GET  /api/config                         Janus URL for the browser, languages, ICE servers
  POST /api/meetings/{id}/interpreter      start the meeting's interpreter unless one runs
  DELETE /api/meetings/{id}/interpreter    stop it (the bot leaves the meeting; a Job is deleted)
  GET  /api/meetings/{id}/interpreter      its state: none / starting / running / exited (+ why),
                                           and while running the room participant ids it publishes as
                                           and the port of its /metrics (local processes)
  GET  /api/interpreters                   every interpreter still running: meeting, state, metrics
                                           port or Job (needs the access token when one is set)
  GET  /healthz                            200 while serving

Every route but /healthz answers only to the Host names in the access policy (421 otherwise: a
DNS-rebinding page cannot read or drive this server); starting an interpreter also needs an allowed
Origin, a JSON body, the access token when one is set, and room in the start rate limits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from translator_bot.shutdown import ShutdownSignals
from translator_bot.web.access import AccessPolicy
from translator_bot.web.config import WebConfig
from translator_bot.web.launcher import (
    Interpreter,
    Launcher,
    LaunchError,
    TooManyInterpreters,
    canonical_meeting_id,
)
from translator_bot.web.ratelimit import Refusal, StartLimiter

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATIC_DIR = Path(__file__).with_name("static")
VENDOR_DIR = STATIC_DIR / "vendor"
PAGE_FILES = {
    "/": "index.html",
    "/app.js": "app.js",
    "/style.css": "style.css",
    "/recorder.js": "recorder.js",
    "/labels.js": "labels.js",
    "/sdp.js": "sdp.js",
}
VENDOR_FILES = ("janus.js", "adapter.js")
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss: http: https:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

CONFIG_KEY = web.AppKey("config", WebConfig)
LAUNCHER_KEY = web.AppKey("launcher", Launcher)
VENDOR_KEY = web.AppKey("vendor_dir", Path)
ACCESS_KEY = web.AppKey("access", AccessPolicy)
LIMITER_KEY = web.AppKey("limiter", StartLimiter)
CLOCK_KEY: web.AppKey[Callable[[], float]] = web.AppKey("clock")
UNGUARDED = frozenset({"/healthz"})  # probes address the server by IP, whatever its public name

_MISSING_VENDOR = """<!doctype html><meta charset="utf-8"><title>janus.js is missing</title>
<h1>janus.js is not installed on this server</h1>
<p>The meeting page needs the Janus browser client, which is fetched from the npm registry at
install time. Run <code>scripts/vendor-janus-js.sh</code> (or <code>scripts/install.sh</code>) on the
server, then reload this page.</p>
"""


def create_app(
    config: WebConfig,
    launcher: Launcher,
    *,
    vendor_dir: Path = VENDOR_DIR,
    access: AccessPolicy | None = None,
    limiter: StartLimiter | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """`access` None: the loopback names on the port each request arrives on, no token (a server on
    127.0.0.1, as `translator-bot web` runs by default)."""
    app = web.Application(middlewares=[_security_headers, _known_hosts_only])
    app[CONFIG_KEY] = config
    app[LAUNCHER_KEY] = launcher
    app[VENDOR_KEY] = vendor_dir
    if access is not None:
        app[ACCESS_KEY] = access
    start_limits = limiter or StartLimiter(clock=time.monotonic)
    app[LIMITER_KEY] = start_limits
    app[CLOCK_KEY] = clock
    launcher.on_exit = lambda bot: start_limits.ended(bot.meeting_id, failed=bot.failed)
    for path, name in PAGE_FILES.items():
        app.router.add_get(path, _page_file(name))
    app.router.add_get("/vendor/{name}", _vendor_file)
    app.router.add_get("/api/config", _config)
    app.router.add_post("/api/meetings/{meeting}/interpreter", _start_interpreter)
    app.router.add_get("/api/meetings/{meeting}/interpreter", _interpreter_status)
    app.router.add_delete("/api/meetings/{meeting}/interpreter", _stop_interpreter)
    app.router.add_get("/api/interpreters", _interpreters)
    app.router.add_get("/healthz", _healthz)
    app.on_shutdown.append(_stop_interpreters)
    return app


def _access(request: web.Request) -> AccessPolicy:
    policy = request.app.get(ACCESS_KEY)
    if policy is not None:
        return policy
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    port = int(sockname[1]) if sockname else 0
    return AccessPolicy.for_server("127.0.0.1", port)


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", _CSP)
    return response


@web.middleware
async def _known_hosts_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """421 for a Host this server is not published at: the mark of DNS rebinding (or a proxy that
    does not pass the Host on)."""
    if request.path not in UNGUARDED and not _access(request).host_allowed(request.headers.get("Host")):
        return _error(
            421, "this server does not answer to that host name; open the page at its configured address"
        )
    return await handler(request)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _page_file(name: str) -> Handler:
    path = STATIC_DIR / name
    content_type = _TYPES[path.suffix]

    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})

    return handler


async def _vendor_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in VENDOR_FILES:
        raise web.HTTPNotFound()
    path = request.app[VENDOR_KEY] / name
    if not path.is_file():
        log.error("%s is missing from %s: run scripts/vendor-janus-js.sh", name, request.app[VENDOR_KEY])
        return web.Response(status=500, text=_MISSING_VENDOR, content_type="text/html")
    return web.FileResponse(path, headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"})


async def _config(request: web.Request) -> web.Response:
    config = request.app[CONFIG_KEY]
    return web.json_response(
        {
            "janus_url": config.browser_janus_url(request.host),
            "languages": [choice.to_json() for choice in config.languages],
            "default_language": config.default_language,
            "ice_servers": config.ice_servers_at(request.app[CLOCK_KEY]()),
            "start_needs_token": _access(request).token is not None,
        },
        headers={"Cache-Control": "no-store"},
    )


def _meeting(request: web.Request) -> str:
    meeting = canonical_meeting_id(request.match_info["meeting"])
    if meeting is None:
        raise web.HTTPBadRequest(
            text="{\"error\": \"a meeting id is a number or letters, digits, '.', '_' and '-'\"}",
            content_type="application/json",
        )
    return meeting


class _Refused(LaunchError):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


def _too_many(refusal: Refusal) -> web.Response:
    return _error(429, refusal.reason, {"Retry-After": str(refusal.retry_after_s)})


def _from_the_page(request: web.Request, doing: str) -> web.Response | None:
    """Why a request that starts or stops an interpreter is refused, if it is: it must come from the
    page (an allowed Origin; a JSON body, which a cross-site form cannot send without a CORS preflight
    this server never grants) and carry the access token when one is set."""
    policy = _access(request)
    if not policy.origin_allowed(request.headers.get("Origin")):
        return _error(403, "send this request from the meeting page (its origin, JSON body)")
    if request.content_type != "application/json":
        return _error(403, "send this request from the meeting page (its origin, JSON body)")
    if not policy.token_accepted(request.headers.get("Authorization")):
        return _error(
            401,
            f"{doing} an interpreter needs this server's access code",
            {"WWW-Authenticate": 'Bearer realm="translator-bot"'},
        )
    return None


async def _start_interpreter(request: web.Request) -> web.Response:
    """Interpreters cost money: the request must come from the page, carry the access token when one
    is set, and fit the start rate limits."""
    if (refused := _from_the_page(request, "starting")) is not None:
        return refused
    meeting = _meeting(request)
    limiter = request.app[LIMITER_KEY]
    refusal = limiter.request(request.remote or "unknown")
    if refusal is not None:
        return _too_many(refusal)

    def may_launch(canonical: str) -> None:
        if (refused := limiter.launch(canonical)) is not None:
            raise _Refused(refused)

    launcher = request.app[LAUNCHER_KEY]
    try:
        bot, started = await launcher.start(meeting, may_launch=may_launch)
    except _Refused as exc:
        return _too_many(exc.refusal)
    except TooManyInterpreters as exc:
        return _error(429, str(exc), {"Retry-After": "30"})
    except LaunchError as exc:
        return _error(503, str(exc))
    return web.json_response({**_status(request, bot), "started": started}, status=202 if started else 200)


async def _stop_interpreter(request: web.Request) -> web.Response:
    """The meeting's interpreter leaves (its process gets SIGTERM, or its Job is deleted)."""
    if (refused := _from_the_page(request, "stopping")) is not None:
        return refused
    meeting = _meeting(request)
    launcher = request.app[LAUNCHER_KEY]
    bot = launcher.get(meeting)
    if bot is None or bot.state == "exited":
        return _error(404, "no interpreter of this server is running in this meeting")
    try:
        await launcher.stop(bot)
    except LaunchError as exc:
        return _error(503, str(exc))
    return web.json_response(_status(request, bot), headers={"Cache-Control": "no-store"})


def _status(request: web.Request, bot: Interpreter) -> dict[str, object]:
    body = bot.status()
    if "participants" in body:
        body["display_name"] = request.app[CONFIG_KEY].display_name
    return body


async def _interpreter_status(request: web.Request) -> web.Response:
    meeting = _meeting(request)
    bot = request.app[LAUNCHER_KEY].get(meeting)
    if bot is None:
        body: dict[str, object] = {
            "meeting": meeting,
            "state": "none",
            "message": "no interpreter was started for this meeting from this server",
        }
    else:
        body = _status(request, bot)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def _interpreters(request: web.Request) -> web.Response:
    """The interpreters running now, for an operator or a scrape configuration: each one's metrics
    port (process launcher) or Job. It names every meeting in progress, so it takes the access token
    when one is set."""
    if not _access(request).token_accepted(request.headers.get("Authorization")):
        return _error(
            401,
            "listing interpreters needs this server's access code",
            {"WWW-Authenticate": 'Bearer realm="translator-bot"'},
        )
    launcher = request.app[LAUNCHER_KEY]
    body = {"launcher": launcher.kind, "interpreters": [bot.status() for bot in launcher.running]}
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def _healthz(request: web.Request) -> web.Response:
    vendored = all((request.app[VENDOR_KEY] / name).is_file() for name in VENDOR_FILES)
    return web.json_response(
        {
            "status": "ok",
            "interpreters": len(request.app[LAUNCHER_KEY].running),
            "janus_js": "vendored" if vendored else "missing: run scripts/vendor-janus-js.sh",
        }
    )


async def _stop_interpreters(app: web.Application) -> None:
    await app[LAUNCHER_KEY].aclose()


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT, then stop every interpreter this server started."""
    with ShutdownSignals() as stop:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            shown = f"[{host}]" if ":" in host else host
            log.info("meeting page on http://%s:%d/", shown, port)
            await stop.wait()
            log.info("stopping the meeting page and its interpreters")
        finally:
            await runner.cleanup()
    stop.raise_if_interrupted()  # Ctrl-C: exit 130 (cli); SIGTERM: a clean stop
