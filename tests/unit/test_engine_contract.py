"""Contract: every event the engine clients build validates against the SDK's strict client unions.

Each builder is exercised and its wire JSON parsed back with the strict discriminated unions that
the fake server (and the real service's schema) use. The wire-level checks against the fake and
the scripted server (their recorded violations must be empty) cover the events in their real order.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr

from translator_bot.engine.base import LaneSpec
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.protocol import encode_event, parse_client_event, parse_translation_client_event
from translator_bot.engine.realtime import RealtimeLinkState, RealtimeSession
from translator_bot.engine.session import Link
from translator_bot.engine.translate import TranslateLinkState, TranslateSession
from translator_bot.languages import parse_language
from translator_bot.settings import Settings

SPEC = LaneSpec("a->es", "Ana", parse_language("en"), "Bruno", parse_language("es-MX"))


def roundtrip(event: BaseModel, parse: Any) -> BaseModel:
    wire = encode_event(event)
    parsed: BaseModel = parse(wire)
    assert encode_event(parsed) == wire
    return parsed


class _Conn:
    """Stands in for a socket: the link's outbox is what would be sent."""


def test_realtime_events_validate() -> None:
    for vad in ("server_vad", "semantic_vad"):
        s = Settings(openai_api_key=SecretStr("sk-x"), vad_type=vad)
        session = RealtimeSession(endpoint_for(s, "realtime"), SPEC, s)
        update = roundtrip(session._session_update("cfg_1"), parse_client_event)
        assert update.session.audio.input.turn_detection.type == vad  # type: ignore[attr-defined]
    roundtrip(session._audio_event("AAAA"), parse_client_event)
    link: Link[RealtimeLinkState] = Link(_Conn(), 1, RealtimeLinkState(), 0.0)  # type: ignore[arg-type]
    link.state.received["item_1"] = 24_000
    link.state.audio_done.add("item_1")
    link.state.items = [f"i{n}" for n in range(12)]
    session._links.add(link)
    session.report_interrupted("item_1", 12_000)
    session._bound_context(link)
    session._on_retire(link)  # no speech open: nothing
    link.state.speech_open = 5
    session._on_retire(link)
    session._maybe_retry(
        link, type("D", (), {"error": type("E", (), {"type": "server_error", "code": None})()})()
    )
    kinds = [roundtrip(e, parse_client_event).type for e in link.outbox]  # type: ignore[attr-defined]
    assert kinds == [
        "conversation.item.truncate",
        *["conversation.item.delete"] * 4,
        "input_audio_buffer.clear",
        "response.create",
    ]


def test_translate_events_validate() -> None:
    s = Settings(openai_api_key=SecretStr("sk-x"))
    session = TranslateSession(endpoint_for(s, "translate"), SPEC, s)
    update = roundtrip(session._session_update("cfg_1"), parse_translation_client_event)
    assert update.session.audio.output.language == "es-MX"  # type: ignore[attr-defined]
    roundtrip(session._audio_event("AAAA"), parse_translation_client_event)
    link: Link[TranslateLinkState] = Link(_Conn(), 1, TranslateLinkState(), 0.0)  # type: ignore[arg-type]
    session._on_retire(link)
    assert [roundtrip(e, parse_translation_client_event).type for e in link.outbox] == ["session.close"]  # type: ignore[attr-defined]
