"""Contract: every event the engine clients build validates against the SDK's strict client unions.

Each builder is exercised and its wire JSON parsed back with the strict discriminated unions that
the fake server (and the real service's schema) use. The wire-level checks against the fake and
the scripted server (their recorded violations must be empty) cover the events in their real order.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr

from translator_bot.engine.base import LaneSpec
from translator_bot.engine.feed import AudioFeed
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.protocol import encode_event, parse_client_event, parse_translation_client_event
from translator_bot.engine.realtime import RealtimeEngine, RealtimeLinkState
from translator_bot.engine.step import At
from translator_bot.engine.translate import TranslateEngine, TranslateLinkState
from translator_bot.languages import parse_language
from translator_bot.settings import Settings

SPEC = LaneSpec("a->es", "Ana", parse_language("en"), "Bruno", parse_language("es-MX"))


def roundtrip(event: BaseModel, parse: Any) -> BaseModel:
    wire = encode_event(event)
    parsed: BaseModel = parse(wire)
    assert encode_event(parsed) == wire
    return parsed


def at() -> At:
    return At(now=0.0, clock=lambda: 0.0, lane_id=SPEC.lane_id, serial=1, origin=0, feed=AudioFeed())


def test_realtime_events_validate() -> None:
    for vad in ("server_vad", "semantic_vad"):
        s = Settings(openai_api_key=SecretStr("sk-x"), vad_type=vad)
        engine = RealtimeEngine(EngineOptions.from_settings(s))
        update = roundtrip(engine.session_update(SPEC, "cfg_1"), parse_client_event)
        assert update.session.audio.input.turn_detection.type == vad  # type: ignore[attr-defined]
    roundtrip(engine.append(b"\x00\x00\x00"), parse_client_event)
    state = RealtimeLinkState()
    state.received["item_1"] = 24_000
    state.audio_done.add("item_1")
    state.items = [f"i{n}" for n in range(12)]
    quiet = AudioFeed()
    sent = engine.on_cut_short(state, "item_1", 12_000).sends
    sent += engine.bound_context(state).sends
    sent += engine.on_retire(state, quiet).sends  # no speech open: nothing
    state.speech_open = 5
    sent += engine.on_retire(state, quiet).sends
    failed = type("D", (), {"error": type("E", (), {"type": "server_error", "code": None})()})()
    sent += engine.retry_failed(state, failed, at()).sends
    kinds = [roundtrip(e, parse_client_event).type for e in sent]  # type: ignore[attr-defined]
    assert kinds == [
        "conversation.item.truncate",
        *["conversation.item.delete"] * 4,
        "input_audio_buffer.clear",
        "response.create",
    ]


def test_translate_events_validate() -> None:
    s = Settings(openai_api_key=SecretStr("sk-x"))
    engine = TranslateEngine(EngineOptions.from_settings(s))
    update = roundtrip(engine.session_update(SPEC, "cfg_1"), parse_translation_client_event)
    assert update.session.audio.output.language == "es-MX"  # type: ignore[attr-defined]
    roundtrip(engine.append(b"\x00\x00\x00"), parse_translation_client_event)
    sent = engine.on_retire(TranslateLinkState(), AudioFeed()).sends
    assert [roundtrip(e, parse_translation_client_event).type for e in sent] == ["session.close"]  # type: ignore[attr-defined]
