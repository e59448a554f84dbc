"""The wire under the Janus core API: the WebSocket it runs on, its replies and its errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from translator_bot.redact import mask_url, mask_urls

SUBPROTOCOL = "janus-protocol"

JsonObject = dict[str, Any]
EventListener = Callable[[JsonObject], None]


class JanusError(Exception):
    """Janus answered a request with an error (core or plugin)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{reason} (Janus error {code})")
        self.code = code
        self.reason = reason


ERR_SESSION_NOT_FOUND = 458


class JanusConnectionLost(JanusError):
    """The WebSocket to Janus closed or stopped answering (or could not be opened)."""

    def __init__(self, reason: str) -> None:
        super().__init__(0, reason)


class JanusSessionGone(JanusError):
    """Janus no longer knows the session (458): its handles, feeds and subscriptions went with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(ERR_SESSION_NOT_FOUND, reason)


@dataclass(frozen=True)
class PluginReply:
    data: JsonObject
    jsep: JsonObject | None


async def open_socket(
    http: aiohttp.ClientSession, url: str, timeout_s: float
) -> aiohttp.ClientWebSocketResponse:
    try:
        async with asyncio.timeout(timeout_s):
            return await http.ws_connect(
                url,
                protocols=(SUBPROTOCOL,),
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                heartbeat=None,
                max_msg_size=16 * 1024 * 1024,
            )
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise JanusConnectionLost(
            f"cannot reach the room server at {mask_url(url)}: {describe_error(exc)}"
        ) from None


def describe_error(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = mask_urls(str(exc).strip())  # aiohttp's errors quote the URL, user info and all
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
