"""`--online`: can this machine reach the Janus server and the model provider's host?

The Janus probe is one `info` request on the WebSocket API; the provider probe only opens a TCP (and
TLS) connection, so the API key is never sent anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr

from translator_bot.doctor.model import JOIN, Check
from translator_bot.redact import mask_url, mask_urls
from translator_bot.settings import Settings

SECTION = "Online"
TIMEOUT_S = 3.0
VIDEOROOM = "janus.plugin.videoroom"
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT_S:g} s"
    return mask_urls(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__


async def _janus_info(url: str, api_secret: str | None, token: str | None) -> dict[str, object]:
    request: dict[str, object] = {"janus": "info", "transaction": uuid.uuid4().hex}
    if api_secret:
        request["apisecret"] = api_secret
    if token:
        request["token"] = token
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            url, protocols=("janus-protocol",), timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
        ) as ws,
    ):
        await ws.send_json(request)
        reply = await ws.receive_json()
    if not isinstance(reply, dict):
        raise ValueError(f"unexpected reply {reply!r:.80}")
    return reply


async def janus_check(url: str, api_secret: str | None = None, token: str | None = None) -> Check:
    shown = mask_url(url)
    fix = "check TRANSLATOR_JANUS_URL, and that Janus's WebSocket transport listens there"
    try:
        async with asyncio.timeout(TIMEOUT_S):
            reply = await _janus_info(url, api_secret, token)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        return Check(SECTION, "janus server", "missing", f"{shown}: {_reason(exc)}", fix, JOIN)
    if reply.get("janus") == "error":
        error = reply.get("error")
        reason = error.get("reason") if isinstance(error, dict) else None
        return Check(
            SECTION,
            "janus server",
            "missing",
            f"{shown} answered but refused the info request: {reason or 'error'}",
            "check TRANSLATOR_JANUS_API_SECRET and TRANSLATOR_JANUS_TOKEN",
            JOIN,
        )
    if reply.get("janus") != "server_info":
        return Check(SECTION, "janus server", "missing", f"{shown} does not speak the Janus API", fix, JOIN)
    version = reply.get("version_string", "unknown version")
    plugins = reply.get("plugins")
    if not isinstance(plugins, dict) or VIDEOROOM not in plugins:
        return Check(
            SECTION,
            "janus server",
            "missing",
            f"{shown} is Janus {version} without the VideoRoom plugin",
            "enable janus.plugin.videoroom on that server",
            JOIN,
        )
    return Check(SECTION, "janus server", "ok", f"{shown}: Janus {version} with VideoRoom", needed_for=JOIN)


async def host_check(url: str) -> Check:
    """Connect to the URL's host (TLS for https/wss) and hang up: no request is sent."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 443)
    tls = parts.scheme in ("https", "wss")
    where = f"{host}:{port}" + (" (TLS)" if tls else "")
    try:
        async with asyncio.timeout(TIMEOUT_S):
            _, writer = await asyncio.open_connection(
                host, port, ssl=ssl.create_default_context() if tls else None
            )
    except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
        return Check(
            SECTION,
            "model host",
            "missing",
            f"{where}: {_reason(exc)}",
            "check the network, a proxy or firewall, and OPENAI_BASE_URL / AZURE_OPENAI_ENDPOINT",
            JOIN,
        )
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Check(SECTION, "model host", "ok", f"{where} reachable", needed_for=JOIN)


async def online_checks(settings: Settings) -> list[Check]:
    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    janus = janus_check(settings.janus_url, secret(settings.janus_api_secret), secret(settings.janus_token))
    if settings.effective_engine == "passthrough":
        return [await janus, Check(SECTION, "model host", "ok", "not needed: engine passthrough", None, JOIN)]
    model_url = settings.azure_openai_endpoint if settings.provider == "azure" else settings.openai_base_url
    return list(await asyncio.gather(janus, host_check(model_url or "")))
