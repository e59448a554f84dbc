"""The Realtime protocol's wire events: parsing server frames, encoding client events.

The engines model only the events they send and the server events they read (`wire_realtime`,
`wire_translate`), with the same field types and the same (lax) validation as the official SDK's
models, so they accept exactly what the SDK accepts: a contract test holds them to that. The SDK
itself stays out of a running bot: importing any of its types runs its package `__init__`, which
imports its HTTP client, every API resource and every type (~20 MiB and ~0.5 s of CPU).

A known event type the engine does not read is passed on as an `Ignored` event (only its `type`
is looked at: nothing reads the rest); an unknown type raises `UnknownEventError`, and a read event
whose fields do not match raises `MalformedEventError` with the first mismatch only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError


class UnknownEventError(ValueError):
    """The event's `type` is not one this protocol defines (e.g. a newer server): log, count, skip."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class MalformedEventError(ValueError):
    """Not JSON, not an object, or a known type whose fields do not match the protocol's model."""


class ServerModel(BaseModel):
    """A server event the engine reads, or a part of one. Fields the protocol adds later are accepted, as
    the SDK accepts them, but not kept: nothing would read them."""

    model_config = ConfigDict(extra="ignore")


class ClientEvent(BaseModel):
    """A client event the engine sends; unset optional fields are left off the wire."""


class Ignored(BaseModel):
    """A server event of a known type that the engine does not read (e.g. `session.created`)."""

    type: str


class RealtimeError(ServerModel):
    message: str
    type: str
    code: str | None = None
    event_id: str | None = None
    param: str | None = None


class ErrorEvent(ServerModel):
    """`error`: on both endpoints (the event id of the client event at fault, when there was one)."""

    error: RealtimeError
    event_id: str
    type: Literal["error"]


def first_error(exc: ValidationError) -> str:
    """Where and what the first mismatch is: one precise line, not pydantic's whole report."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg')}"


def decode_frame(raw: str | bytes) -> tuple[dict[str, Any], str]:
    """One WebSocket text frame as a JSON object and its `type`, or MalformedEventError."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEventError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise MalformedEventError("not a JSON object with a string 'type'")
    return data, data["type"]


def parse_event(
    raw: str | bytes, models: Mapping[str, type[ServerModel]], ignored: frozenset[str]
) -> BaseModel:
    """Parse one WebSocket text frame into the engine's typed event, or raise Unknown/Malformed."""
    data, kind = decode_frame(raw)
    model = models.get(kind)
    if model is None:
        if kind in ignored:
            return Ignored.model_construct(type=kind)
        raise UnknownEventError(kind)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedEventError(f"{kind}: {first_error(exc)}") from None


def encode_event(event: BaseModel) -> str:
    """Serialise a client event for the wire (unset optional fields are left out, as the SDK does)."""
    return event.model_dump_json(exclude_none=True)
