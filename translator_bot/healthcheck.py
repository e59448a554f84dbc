"""`translator-bot healthcheck`: ask the running bot's /readyz, for a container's HEALTHCHECK.

It reads the port and address the bot serves its health endpoints on from the same settings the
bot reads (TRANSLATOR_METRICS_PORT / TRANSLATOR_METRICS_HOST, .env), so the image's HEALTHCHECK
follows a changed port instead of probing a hard-coded one. Exit 0: healthy; 1: anything else
(Docker reserves 2, and every failure here means the same to it: unhealthy).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import urllib.error
import urllib.request
from typing import TextIO

from translator_bot.errors import TranslatorBotError
from translator_bot.redact import redact

HEALTHY, UNHEALTHY = 0, 1
DESCRIPTION = """\
Ask the bot running on this machine (or in this container) whether it is ready: GET /readyz on the
port of its health endpoints (TRANSLATOR_METRICS_PORT, default 9464). Exit 0 when it answers 200,
1 otherwise (not listening, 503 not ready or degraded, health endpoints turned off). The image's
HEALTHCHECK runs this.
"""
# Wildcard listen addresses are reached through the loopback address of the same family.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, help="health port (default: TRANSLATOR_METRICS_PORT, as the bot reads it)"
    )
    parser.add_argument("--path", default="/readyz", help="endpoint to ask (default /readyz; /livez: alive)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")


def health_url(listen_host: str, port: int, path: str) -> str:
    host = _WILDCARDS.get(listen_host, listen_host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/{path.lstrip('/')}"


def check(url: str, timeout: float, out: TextIO) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(2000).decode("utf-8", "replace")
            status = response.status
    except urllib.error.HTTPError as exc:  # 503 and friends: the bot answered "not healthy"
        body = exc.read(2000).decode("utf-8", "replace")
        print(f"unhealthy: {url} answered {exc.code}: {redact(body.strip())[:1000]}", file=out)
        return UNHEALTHY
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"unhealthy: {url}: {redact(str(reason))}", file=out)
        return UNHEALTHY
    print(f"healthy: {url} answered {status}: {redact(body.strip())[:300]}", file=out)
    return HEALTHY


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    port: int | None = args.port
    host = "127.0.0.1"
    if port is None:
        from translator_bot.settings import load_settings

        try:
            settings = load_settings()
        except TranslatorBotError as exc:
            print(f"unhealthy: cannot read the settings: {redact(str(exc))}", file=out)
            return UNHEALTHY
        port, host = settings.metrics_port, settings.metrics_host
        if port == 0:
            print("unhealthy: the health endpoints are off (TRANSLATOR_METRICS_PORT=0)", file=out)
            return UNHEALTHY
    return check(health_url(host, port, args.path), args.timeout, out)
