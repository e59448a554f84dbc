"""Effective session configurations and the `session.update` merge rule.

The real service answers every `session.update` with the whole effective session: only the fields
sent change, nested objects merge field by field, and `null` clears (turn detection, transcription,
noise reduction). An object whose `type` changes (server_vad -> semantic_vad) is replaced whole.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.vad import ServerVadConfig
from translator_bot.languages import UnknownLanguageError, parse_language

DEFAULT_INSTRUCTIONS = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. Act like a human, "
    "but remember that you aren't a human and that you can't do human things in the real world."
)
_SESSION_SECONDS = 3600
_TARGET = re.compile(r"\binto ([A-Z][a-z]+(?: [A-Z][a-z]+)?)")
# semantic_vad has no silence setting; its eagerness bounds how long it waits.
_EAGERNESS_SILENCE_MS = {"low": 800, "medium": 500, "auto": 500, "high": 300}


def default_realtime_session(session_id: str, model: str) -> dict[str, Any]:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "expires_at": int(time.time()) + _SESSION_SECONDS,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": MODEL_RATE},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": MODEL_RATE}, "voice": "marin", "speed": 1.0},
        },
    }


def default_translation_session(session_id: str, model: str) -> dict[str, Any]:
    return {
        "type": "translation",
        "id": session_id,
        "model": model,
        "expires_at": int(time.time()) + _SESSION_SECONDS,
        "audio": {
            "input": {"transcription": None, "noise_reduction": None},
            "output": {"language": None},
        },
    }


def merge_session(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new effective session: `current` with `update` applied (neither is modified)."""
    merged = copy.deepcopy(current)
    for key, value in update.items():
        old = merged.get(key)
        if (
            isinstance(value, dict)
            and isinstance(old, dict)
            and value.get("type", old.get("type")) == old.get("type")
        ):
            merged[key] = merge_session(old, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def turn_detection(session: dict[str, Any]) -> dict[str, Any] | None:
    value = (((session.get("audio") or {}).get("input") or {}).get("turn_detection")) or None
    return value if isinstance(value, dict) else None


def vad_config(session: dict[str, Any]) -> ServerVadConfig | None:
    """The energy VAD settings for this session, None when turn detection is off (manual commits)."""
    detection = turn_detection(session)
    if detection is None:
        return None
    if detection.get("type") == "semantic_vad":
        silence = _EAGERNESS_SILENCE_MS.get(str(detection.get("eagerness") or "auto"), 500)
        return ServerVadConfig(silence_duration_ms=silence)
    defaults = ServerVadConfig()
    return ServerVadConfig(
        threshold=float(_or(detection.get("threshold"), defaults.threshold)),
        prefix_padding_ms=int(_or(detection.get("prefix_padding_ms"), defaults.prefix_padding_ms)),
        silence_duration_ms=int(_or(detection.get("silence_duration_ms"), defaults.silence_duration_ms)),
    )


def _or(value: Any, default: float) -> Any:
    return default if value is None else value


def flag(session: dict[str, Any], name: str) -> bool:
    """`create_response` / `interrupt_response` of the turn detection (both default to true)."""
    detection = turn_detection(session)
    if detection is None:
        return False
    value = detection.get(name)
    return True if value is None else bool(value)


def transcription_enabled(session: dict[str, Any]) -> bool:
    return bool(((session.get("audio") or {}).get("input") or {}).get("transcription"))


def target_from_instructions(instructions: str | None) -> str | None:
    """Base language named by the first `into <Language>` of the instructions, e.g. "es"."""
    for match in _TARGET.finditer(instructions or ""):
        try:
            return parse_language(match.group(1)).base
        except UnknownLanguageError:
            # "into Two Parts" is not a language; the first phrase that names one wins.
            continue
    return None


def target_from_language_tag(tag: str | None) -> str | None:
    if not tag:
        return None
    try:
        return parse_language(tag).base
    except UnknownLanguageError:
        return None
