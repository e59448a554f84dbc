"""A minimal validating WebSocket client for tests of the fake server (and of anything speaking the
protocol): every event it sends or receives must pass the strict SDK unions, or it raises.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.engine.protocol import (
    parse_client_event,
    parse_server_event,
    parse_translation_client_event,
    parse_translation_server_event,
)


class ProbeClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        translation: bool,
        validate_sent: bool = True,
    ) -> None:
        self.http = http
        self.ws = ws
        self.received: list[Any] = []
        self._parse_in: Callable[[str], BaseModel] = (
            parse_translation_server_event if translation else parse_server_event
        )
        self._parse_out: Callable[[str], BaseModel] = (
            parse_translation_client_event if translation else parse_client_event
        )
        self._validate_sent = validate_sent

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        validate_sent: bool = True,
    ) -> ProbeClient:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(
                url, headers=dict(headers or {"Authorization": "Bearer sk-test"}), max_msg_size=0
            )
        except BaseException:
            await http.close()
            raise
        return cls(http, ws, translation="/translations" in url, validate_sent=validate_sent)

    async def close(self) -> None:
        try:
            await self.ws.close()
        finally:
            await self.http.close()

    async def __aenter__(self) -> ProbeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send(self, event: dict[str, Any]) -> None:
        raw = json.dumps(event)
        if self._validate_sent:
            self._parse_out(raw)
        await self.ws.send_str(raw)

    async def send_raw(self, raw: str) -> None:
        await self.ws.send_str(raw)

    async def append(self, pcm: npt.NDArray[np.int16], *, chunk_ms: int = 100) -> None:
        """Send 24 kHz pcm16 audio as appends of `chunk_ms` (as fast as the socket takes it)."""
        kind = (
            "session.input_audio_buffer.append" if self._parse_in is parse_translation_server_event else None
        )
        kind = kind or "input_audio_buffer.append"
        step = MODEL_RATE * chunk_ms // 1000
        for start in range(0, len(pcm), step):
            audio = base64.b64encode(pcm[start : start + step].astype("<i2").tobytes()).decode("ascii")
            await self.send({"type": kind, "audio": audio})

    async def recv(self, wait: float = 10.0) -> Any:
        """The next server event (an SDK model), validated; raises on close or on anything invalid."""
        message = await self.ws.receive(timeout=wait)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket ended: {message.type!r} {message.data!r} {message.extra!r}")
        event = self._parse_in(message.data)
        self.received.append(event)
        return event

    async def until(self, event_type: str, wait: float = 10.0) -> list[Any]:
        """Events up to and including the first of `event_type`."""
        seen: list[Any] = []
        async with asyncio.timeout(wait):
            while True:
                event = await self.recv(wait=wait)
                seen.append(event)
                if getattr(event, "type", None) == event_type:
                    return seen

    async def close_code(self, wait: float = 10.0) -> int | None:
        """Read until the server closes; the close code (1006 if the connection was just lost)."""
        async with asyncio.timeout(wait):
            while True:
                message = await self.ws.receive()
                if message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    return self.ws.close_code
                if message.type == aiohttp.WSMsgType.TEXT:
                    self.received.append(self._parse_in(message.data))


def types(events: list[Any]) -> list[str]:
    return [str(getattr(e, "type", "?")) for e in events]
