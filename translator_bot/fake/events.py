"""Sending server events: every event is validated against the SDK's models before it leaves.

An event of ours that fails validation is a bug in the fake. It is recorded in the shared state
and raised, so that the session ends and the tests that drove it fail loudly.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from translator_bot.audio.formats import MODEL_BYTES_PER_MS
from translator_bot.fake.state import ErrorRecord, FakeState, SessionRecord

log = logging.getLogger(__name__)

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_id(prefix: str) -> str:
    """Ids shaped like the real service's (`event_…`, `item_…`, `resp_…`, `sess_…`)."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(21))


def transcript_pieces(text: str) -> list[str]:
    """Append-only transcript deltas: each word with the space before it (clients add none).

    The pieces join back to exactly `text`, a leading space included (a sentence that continues a
    running transcript), and none is empty."""
    parts = text.split(" ")
    pieces = [parts[0]] + [" " + word for word in parts[1:]] if text else []
    return [piece for piece in pieces if piece]


def spread(pieces: list[str], slots: int) -> list[str]:
    """Spread transcript pieces evenly over `slots` audio chunks (text leads its audio slightly)."""
    slots = max(1, slots)
    bounds = [-(-i * len(pieces) // slots) for i in range(slots + 1)]
    return ["".join(pieces[bounds[i] : bounds[i + 1]]) for i in range(slots)]


_OUTPUT_AUDIO = frozenset({"response.output_audio.delta", "session.output_audio.delta"})


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class FakeProtocolBug(AssertionError):
    """The fake was about to send an event that does not match the protocol."""


class EventSink:
    """Serialises sends on one socket (several tasks emit) and checks each event first."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        parse: Callable[[str], BaseModel],
        record: SessionRecord,
        state: FakeState,
    ) -> None:
        self._ws = ws
        self._parse = parse
        self._record = record
        self._state = state
        self._lock = asyncio.Lock()
        self.output_audio_ms = 0  # translated audio sent (heartbeats excluded)
        self.on_output_audio: Callable[[], None] | None = None  # after each such delta is sent

    @property
    def closed(self) -> bool:
        return self._ws.closed

    async def send(self, event: dict[str, Any]) -> bool:
        """Validate and send; False if the socket is already gone (the caller just stops)."""
        event.setdefault("event_id", new_id("event"))
        raw = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        if not raw.isascii() and _has_surrogate(raw):
            # Lone surrogates travel escaped (as the real service's JSON carries them), never raw.
            raw = json.dumps(event, separators=(",", ":"))
        try:
            parsed = self._parse(raw)
        except ValueError as exc:
            message = f"fake server built an invalid {event.get('type')!r} event: {exc}"
            self._state.internal_errors.append(message)
            raise FakeProtocolBug(message) from exc
        if getattr(parsed, "type", None) != event["type"]:
            message = f"event {event['type']!r} parsed as {getattr(parsed, 'type', None)!r}"
            self._state.internal_errors.append(message)
            raise FakeProtocolBug(message)
        sent = await self.send_raw(raw)
        if sent and event["type"] in _OUTPUT_AUDIO:
            self._count_output(event.get("delta"))
        return sent

    def _count_output(self, delta: object) -> None:
        try:
            pcm = base64.b64decode(str(delta), validate=True)
        except (binascii.Error, ValueError):
            return
        if pcm.count(0) == len(pcm):
            return  # a heartbeat of the translation endpoint, not a translation
        self.output_audio_ms += len(pcm) // MODEL_BYTES_PER_MS
        if self.on_output_audio is not None:
            self.on_output_audio()

    async def send_raw(self, raw: str) -> bool:
        """Send without validation: only for fault injection."""
        async with self._lock:
            if self._ws.closed:
                return False
            try:
                await self._ws.send_str(raw)
            except ConnectionError:
                return False
        return True

    async def error(
        self,
        type_: str,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
        event_id: str | None = None,
    ) -> bool:
        body: dict[str, Any] = {"type": type_, "message": message}
        if code is not None:
            body["code"] = code
        if param is not None:
            body["param"] = param
        if event_id is not None:
            body["event_id"] = event_id
        self._record.errors_sent.append(ErrorRecord(type_, code, message, event_id))
        log.info("session %s: error %s: %s", self._record.id, code, message)
        return await self.send({"type": "error", "error": body})


MALFORMED_EVENTS: dict[str, Callable[[], str]] = {
    # A known type whose required fields are missing: the most likely real-world breakage.
    "bad_fields": lambda: json.dumps({"type": "response.output_audio.delta", "event_id": new_id("event")}),
    "not_json": lambda: '{"type": "response.output_audio.delta", "delta": ',
    "unknown_type": lambda: json.dumps(
        {"type": "response.future_feature.delta", "event_id": new_id("event")}
    ),
}
