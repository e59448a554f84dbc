"""The meeting page's HTTP server: the page itself, the vendored Janus client, the page's
configuration, and starting an interpreter for a meeting on request.

Routes:
  GET  /                                   the page (index.html, app.js, style.css, recorder.js)
  GET  /vendor/janus.js, /vendor/adapter.js  vendored by scripts/vendor-janus-js.sh
  GET  /api/config                         Janus URL for the browser, languages, ICE servers
  POST /api/meetings/{id}/interpreter      start the meeting's interpreter unless one runs
  GET  /api/meetings/{id}/interpreter      its state: none / starting / running / exited (+ why)
  GET  /healthz                            200 while serving
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from translator_bot.web.config import WebConfig
from translator_bot.web.launcher import BotLauncher, LaunchError, TooManyInterpreters, valid_meeting_id

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATIC_DIR = Path(__file__).with_name("static")
VENDOR_DIR = STATIC_DIR / "vendor"
PAGE_FILES = {
    "/": "index.html",
    "/app.js": "app.js",
    "/style.css": "style.css",
    "/recorder.js": "recorder.js",
}
VENDOR_FILES = ("janus.js", "adapter.js")
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss: http: https:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

CONFIG_KEY = web.AppKey("config", WebConfig)
LAUNCHER_KEY = web.AppKey("launcher", BotLauncher)
VENDOR_KEY = web.AppKey("vendor_dir", Path)

_MISSING_VENDOR = """<!doctype html><meta charset="utf-8"><title>janus.js is missing</title>
<h1>janus.js is not installed on this server</h1>
<p>The meeting page needs the Janus browser client, which is fetched from the npm registry at
install time. Run <code>scripts/vendor-janus-js.sh</code> (or <code>scripts/install.sh</code>) on the
server, then reload this page.</p>
"""


def create_app(config: WebConfig, launcher: BotLauncher, *, vendor_dir: Path = VENDOR_DIR) -> web.Application:
    app = web.Application(middlewares=[_security_headers])
    app[CONFIG_KEY] = config
    app[LAUNCHER_KEY] = launcher
    app[VENDOR_KEY] = vendor_dir
    for path, name in PAGE_FILES.items():
        app.router.add_get(path, _page_file(name))
    app.router.add_get("/vendor/{name}", _vendor_file)
    app.router.add_get("/api/config", _config)
    app.router.add_post("/api/meetings/{meeting}/interpreter", _start_interpreter)
    app.router.add_get("/api/meetings/{meeting}/interpreter", _interpreter_status)
    app.router.add_get("/healthz", _healthz)
    app.on_shutdown.append(_stop_interpreters)
    return app


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", _CSP)
    return response


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
            "ice_servers": list(config.ice_servers),
        },
        headers={"Cache-Control": "no-store"},
    )


def _meeting(request: web.Request) -> str:
    meeting = request.match_info["meeting"]
    if not valid_meeting_id(meeting):
        raise web.HTTPBadRequest(
            text="{\"error\": \"a meeting id is a number or letters, digits, '.', '_' and '-'\"}",
            content_type="application/json",
        )
    return meeting


def _same_origin(request: web.Request) -> bool:
    """A cross-site page must not be able to start interpreters (they cost money): browsers always
    send Origin on such a POST, and a form cannot send JSON without a CORS preflight we never grant."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        return False
    return request.content_type == "application/json"


async def _start_interpreter(request: web.Request) -> web.Response:
    meeting = _meeting(request)
    if not _same_origin(request):
        return web.json_response(
            {"error": "send this request from the meeting page (same origin, JSON body)"}, status=403
        )
    launcher = request.app[LAUNCHER_KEY]
    try:
        bot, started = await launcher.start(meeting)
    except TooManyInterpreters as exc:
        return web.json_response({"error": str(exc)}, status=429)
    except LaunchError as exc:
        return web.json_response({"error": str(exc)}, status=503)
    return web.json_response({**bot.status(), "started": started}, status=202 if started else 200)


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
        body = bot.status()
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
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
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
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
