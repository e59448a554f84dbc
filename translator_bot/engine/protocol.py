"""Wire events of the Realtime protocol, validated with the official `openai` SDK's pydantic models: the
fake server's side (it must be the faithful other end) and the tests' reference. A running bot does not
import this module: its engines speak through their own models (`engine.wire`, held to these by
tests/unit/test_wire_contract.py).

The SDK's unions carry their discriminator in `PropertyInfo`, which pydantic ignores (smart-union
mode, 80+ errors for one bad event, and unknown types silently coerced). We re-wrap the same member
classes as real discriminated unions: a bad event is rejected with one precise error, and an unknown
`type` is reported as unknown rather than guessed.

Each union's validator is built on first use and kept: the four cost ~32 ms of CPU and ~1 MiB
together (the realtime server union ~18 ms of it); the fake server needs the client ones.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Union, cast, get_args

from openai.types.realtime import (
    RealtimeClientEvent,
    RealtimeServerEvent,
    RealtimeTranslationClientEvent,
    RealtimeTranslationServerEvent,
)
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from translator_bot.engine.wire import (
    MalformedEventError,
    UnknownEventError,
    decode_frame,
    encode_event,
    first_error,
)

__all__ = [
    "CLIENT_EVENT_TYPES",
    "SERVER_EVENT_TYPES",
    "TRANSLATION_CLIENT_EVENT_TYPES",
    "TRANSLATION_SERVER_EVENT_TYPES",
    "MalformedEventError",
    "UnknownEventError",
    "client_events",
    "encode_event",
    "parse_client_event",
    "parse_event",
    "parse_server_event",
    "parse_translation_client_event",
    "parse_translation_server_event",
    "server_events",
    "translation_client_events",
    "translation_server_events",
]


def _strict(sdk_union: Any) -> TypeAdapter[Any]:
    members = get_args(get_args(sdk_union)[0])
    union: Any = Annotated[Union[members], Field(discriminator="type")]  # noqa: UP007
    return TypeAdapter(cast(Any, union))


def _types_of(sdk_union: Any) -> frozenset[str]:
    names: set[str] = set()
    for member in get_args(get_args(sdk_union)[0]):
        names.update(get_args(member.model_fields["type"].annotation))
    return frozenset(names)


@cache
def server_events() -> TypeAdapter[Any]:
    """What `/v1/realtime` sends: the realtime engine's validator."""
    return _strict(RealtimeServerEvent)


@cache
def client_events() -> TypeAdapter[Any]:
    """What a `/v1/realtime` client sends: the fake server's validator."""
    return _strict(RealtimeClientEvent)


@cache
def translation_server_events() -> TypeAdapter[Any]:
    """What the translation endpoint sends: the translate engine's validator."""
    return _strict(RealtimeTranslationServerEvent)


@cache
def translation_client_events() -> TypeAdapter[Any]:
    """What a translation client sends: the fake server's validator."""
    return _strict(RealtimeTranslationClientEvent)


SERVER_EVENT_TYPES = _types_of(RealtimeServerEvent)
CLIENT_EVENT_TYPES = _types_of(RealtimeClientEvent)
TRANSLATION_SERVER_EVENT_TYPES = _types_of(RealtimeTranslationServerEvent)
TRANSLATION_CLIENT_EVENT_TYPES = _types_of(RealtimeTranslationClientEvent)


def parse_event(raw: str | bytes, adapter: TypeAdapter[Any], known_types: frozenset[str]) -> BaseModel:
    """Parse one WebSocket text frame into the SDK's typed event, or raise Unknown/Malformed."""
    data, kind = decode_frame(raw)
    if kind not in known_types:
        raise UnknownEventError(kind)
    try:
        event: BaseModel = adapter.validate_python(data)
    except ValidationError as exc:
        raise MalformedEventError(f"{kind}: {first_error(exc)}") from None
    return event


def parse_server_event(raw: str | bytes) -> BaseModel:
    return parse_event(raw, server_events(), SERVER_EVENT_TYPES)


def parse_client_event(raw: str | bytes) -> BaseModel:
    return parse_event(raw, client_events(), CLIENT_EVENT_TYPES)


def parse_translation_server_event(raw: str | bytes) -> BaseModel:
    return parse_event(raw, translation_server_events(), TRANSLATION_SERVER_EVENT_TYPES)


def parse_translation_client_event(raw: str | bytes) -> BaseModel:
    return parse_event(raw, translation_client_events(), TRANSLATION_CLIENT_EVENT_TYPES)
