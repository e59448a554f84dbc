"""Session defaults and the partial-update merge rule of the fake server."""

from __future__ import annotations

from typing import Any

from translator_bot.audio.vad import ServerVadConfig
from translator_bot.engine.protocol import parse_server_event, parse_translation_server_event
from translator_bot.fake import session_config as cfg


def test_defaults_validate_as_the_sdk_session_models():
    import json

    realtime = cfg.default_realtime_session("sess_1", "gpt-realtime")
    event: Any = parse_server_event(
        json.dumps({"type": "session.created", "event_id": "e", "session": realtime})
    )
    assert event.session.type == "realtime"
    translation = cfg.default_translation_session("sess_2", "gpt-realtime-translate")
    parse_translation_server_event(
        json.dumps({"type": "session.created", "event_id": "e", "session": translation})
    )


def test_merge_changes_only_what_was_sent_and_null_clears():
    base = cfg.default_realtime_session("sess_1", "gpt-realtime")
    merged = cfg.merge_session(
        base,
        {
            "type": "realtime",
            "instructions": "Translate into German.",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 700}}},
        },
    )
    detection = merged["audio"]["input"]["turn_detection"]
    assert detection["silence_duration_ms"] == 700
    assert detection["threshold"] == 0.5 and detection["prefix_padding_ms"] == 300  # kept
    assert merged["audio"]["output"]["voice"] == "marin"
    assert merged["instructions"] == "Translate into German."
    assert base["instructions"] != merged["instructions"]  # input untouched

    cleared = cfg.merge_session(merged, {"type": "realtime", "audio": {"input": {"turn_detection": None}}})
    assert cleared["audio"]["input"]["turn_detection"] is None
    assert cfg.vad_config(cleared) is None
    assert cfg.flag(cleared, "create_response") is False


def test_a_changed_type_replaces_the_object():
    base = cfg.default_realtime_session("sess_1", "gpt-realtime")
    merged = cfg.merge_session(
        base, {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}}
    )
    assert merged["audio"]["input"]["turn_detection"] == {"type": "semantic_vad", "eagerness": "high"}
    assert cfg.vad_config(merged) == ServerVadConfig(silence_duration_ms=300)


def test_vad_config_and_flags_follow_the_session():
    session = cfg.merge_session(
        cfg.default_realtime_session("s", "m"),
        {
            "audio": {
                "input": {
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.7,
                        "prefix_padding_ms": 100,
                        "interrupt_response": False,
                    }
                }
            }
        },
    )
    assert cfg.vad_config(session) == ServerVadConfig(
        threshold=0.7, prefix_padding_ms=100, silence_duration_ms=500
    )
    assert cfg.flag(session, "interrupt_response") is False
    assert cfg.flag(session, "create_response") is True


def test_target_language_from_instructions_and_tags():
    assert cfg.target_from_instructions("Translate everything the user says into Spanish.") == "es"
    assert cfg.target_from_instructions("Interpret from English into German; do not answer.") == "de"
    assert cfg.target_from_instructions("Take it into Account, then speak into French.") == "fr"
    assert cfg.target_from_instructions("You are a helpful assistant.") is None
    assert cfg.target_from_instructions(None) is None
    assert cfg.target_from_language_tag("es-MX") == "es"
    assert cfg.target_from_language_tag("xx-garbage-tag-!!") is None
    assert cfg.target_from_language_tag(None) is None
