"""One WebSocket to the model provider: authenticated handshake, typed events out, typed events in.

Outgoing events are wire models (`engine.wire`) serialised with `encode_event`; incoming frames are parsed
into them by the engine's parser. A frame that is unknown or malformed is logged, counted and skipped:
a newer server or a glitch must never end the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel

from translator_bot.engine.endpoint import Endpoint
from translator_bot.engine.lifetime import RetryableError, error_for_status, fatal_message, is_fatal
from translator_bot.engine.wire import MalformedEventError, UnknownEventError, encode_event
from translator_bot.errors import ProviderFatalError
from translator_bot.metrics import ENGINE_UNKNOWN_EVENTS
from translator_bot.redact import mask_urls

log = logging.getLogger(__name__)

Parser = Callable[[str | bytes], BaseModel]

CONNECT_TIMEOUT_S = 10.0
_MAX_FRAME = 16 * 1024 * 1024  # the provider accepts 15 MiB appends; our frames are far smaller
_LOUD_SKIPS = 5  # first skipped frames per socket at WARNING, the rest at DEBUG


class ConnectionClosed(Exception):
    """The socket is gone (closed by either side, or broken)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"socket closed (code {code}): {reason}")
        self.code = code


def describe(endpoint: Endpoint) -> str:
    """Host and path of the endpoint for messages; never user info, the query or a header."""
    parts = urlsplit(endpoint.url)
    return f"{parts.netloc.rpartition('@')[2]}{parts.path}"


_refusal: contextvars.ContextVar[list[bytes] | None] = contextvars.ContextVar("refusal", default=None)
_MAX_REFUSAL_BODY = 64 * 1024


async def keep_refusal_body(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Client middleware: keep the JSON body of a refused handshake, which says *why* (e.g. no quota).

    aiohttp's ws_connect raises on a non-101 status without reading the body, so it is read here.
    """
    response = await handler(request)
    sink = _refusal.get()
    if sink is not None and response.status >= 400:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            sink.append(await response.content.read(_MAX_REFUSAL_BODY))
    return response


def _refusal_reason(body: bytes) -> tuple[str | None, str | None]:
    try:
        error = json.loads(body).get("error") or {}
        return (error.get("type"), error.get("code")) if isinstance(error, dict) else (None, None)
    except (ValueError, AttributeError):
        return None, None


# Refusals caused by a setting other than the key: the message names that setting.
_SCOPE_REFUSALS = {
    "mismatched_organization": "OPENAI_ORG_ID does not name an organization of this API key",
    "mismatched_project": "OPENAI_PROJECT_ID does not name a project of this API key",
}


def _refusal_error(
    endpoint: Endpoint, where: str, status: int, error_type: str | None, code: str | None
) -> Exception:
    """The error for a refused handshake: fatal (retrying cannot help) or retryable."""
    scope = _SCOPE_REFUSALS.get(code or "")
    if scope is not None:
        return ProviderFatalError(f"the model provider at {where} refused the session ({code}): {scope}")
    if endpoint.credential == "AZURE_OPENAI_AD_TOKEN" and status == 401:
        # Entra ID access tokens expire (after about an hour) and are read once, at start.
        return ProviderFatalError(
            f"the model provider at {where} rejected the Microsoft Entra ID token in "
            "AZURE_OPENAI_AD_TOKEN (HTTP 401): it may have expired, or be for another audience "
            "than https://cognitiveservices.azure.com"
        )
    if is_fatal(error_type, code):
        return ProviderFatalError(fatal_message(error_type, code, where))
    return error_for_status(status, where)


async def open_socket(
    http: aiohttp.ClientSession, endpoint: Endpoint, *, limit_s: float = CONNECT_TIMEOUT_S
) -> aiohttp.ClientWebSocketResponse:
    """Handshake; raises ProviderFatalError (bad key, unknown model) or RetryableError."""
    where = describe(endpoint)
    parts = urlsplit(endpoint.url)
    if (parts.username or parts.password) and endpoint.auth_header == "Authorization":
        # aiohttp sends a URL's user info as HTTP Basic authorization, in the header the bearer
        # credential needs (it raises rather than choose); no retry can fix a setting.
        raise ProviderFatalError(
            f"the URL of {where} carries a user name and password, sent as HTTP Basic authorization, "
            f"but {endpoint.credential} needs that same Authorization header: remove them from the URL"
        )
    body: list[bytes] = []
    token = _refusal.set(body)
    try:
        async with asyncio.timeout(limit_s):
            return await http.ws_connect(
                endpoint.url,
                headers=endpoint.headers(),
                heartbeat=20.0,
                max_msg_size=_MAX_FRAME,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
    except aiohttp.WSServerHandshakeError as exc:
        error_type, code = _refusal_reason(body[0]) if body else (None, None)
        raise _refusal_error(endpoint, where, exc.status, error_type, code) from None
    except TimeoutError:
        raise RetryableError(f"no answer from {where} within {limit_s:.0f} s") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise RetryableError(
            f"cannot connect to {where}: {type(exc).__name__}: {mask_urls(str(exc))}"
        ) from None
    finally:
        _refusal.reset(token)


class Connection:
    """A configured socket plus its parser; one reader and one writer use it at a time."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, parse: Parser, engine: str) -> None:
        self._ws = ws
        self._parse = parse
        self._engine = engine
        self._skipped = 0

    async def send(self, event: BaseModel) -> None:
        """Raises ConnectionClosed when the socket is gone."""
        if self._ws.closed:
            raise ConnectionClosed(self._ws.close_code, "already closed")
        try:
            await self._ws.send_str(encode_event(event))
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
            raise ConnectionClosed(self._ws.close_code, f"send failed: {type(exc).__name__}") from None

    async def receive(self, wait_s: float | None = None) -> BaseModel | None:
        """Next well-formed event; None when `wait_s` passes first; ConnectionClosed at the end."""
        while True:
            try:
                msg = await self._ws.receive(timeout=wait_s)
            except TimeoutError:
                return None
            if msg.type == aiohttp.WSMsgType.TEXT:
                event = self._parse_or_skip(msg.data)
                if event is not None:
                    return event
                continue
            if msg.type == aiohttp.WSMsgType.BINARY:
                self._skip("malformed", "binary frame (the protocol only uses JSON text frames)")
                continue
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                raise ConnectionClosed(self._ws.close_code, str(msg.extra or "closed"))
            if msg.type == aiohttp.WSMsgType.ERROR:
                raise ConnectionClosed(self._ws.close_code, f"transport error: {type(msg.data).__name__}")

    def _parse_or_skip(self, data: str) -> BaseModel | None:
        try:
            return self._parse(data)
        except UnknownEventError as exc:
            self._skip("unknown", str(exc))
        except MalformedEventError as exc:
            self._skip("malformed", str(exc))
        return None

    def _skip(self, reason: str, detail: str) -> None:
        ENGINE_UNKNOWN_EVENTS.labels(engine=self._engine, reason=reason).inc()
        self._skipped += 1
        level = logging.WARNING if self._skipped <= _LOUD_SKIPS else logging.DEBUG
        log.log(level, "skipped a %s server event: %s", reason, detail[:300])

    async def close(self) -> None:
        if self._ws.closed:
            return
        try:
            async with asyncio.timeout(3.0):
                await self._ws.close()
        except (TimeoutError, aiohttp.ClientError, OSError, RuntimeError):
            log.debug("socket close did not complete cleanly", exc_info=True)
