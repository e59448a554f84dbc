"""Engine `realtime` as a protocol: server events in, lane events and client events out.

No socket and no event loop: each test feeds the engine parsed server events (validated by the SDK's
models, as on the wire) and compares what it says should follow.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel

from translator_bot.engine.base import (
    LaneSpec,
    SourceTranscript,
    SpeechStarted,
    SpeechStopped,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
    Usage,
)
from translator_bot.engine.feed import AudioFeed
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import RealtimeEngine, RealtimeLinkState
from translator_bot.engine.step import At, Step
from translator_bot.engine.wire import encode_event
from translator_bot.engine.wire_realtime import parse_server_event
from translator_bot.languages import parse_language

SPEC = LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es"))
ORIGIN = 24_000  # the socket's audio time 0 is one second into the lane's input


def at(serial: int = 3) -> At:
    return At(
        now=100.0, clock=lambda: 7.5, lane_id=SPEC.lane_id, serial=serial, origin=ORIGIN, feed=AudioFeed()
    )


def ev(data: dict[str, Any]) -> BaseModel:
    """A server event as it arrives on the wire: with an event id, validated by the SDK's models."""
    return parse_server_event(json.dumps({"event_id": "srv_1", **data}))


def feed(engine: RealtimeEngine, state: RealtimeLinkState, *events: dict[str, Any]) -> Step:
    step = Step()
    for data in events:
        step += engine.on_server_event(state, ev(data), at())
    return step


def sent(step: Step) -> list[dict[str, Any]]:
    return [json.loads(encode_event(e)) for e in step.sends]


def common(n: int) -> dict[str, Any]:
    return {"response_id": f"r{n}", "item_id": f"a{n}", "output_index": 0, "content_index": 0}


def audio(n: int, samples: int) -> dict[str, Any]:
    pcm = b"\x01\x00" * samples
    return {"type": "response.output_audio.delta", "delta": base64.b64encode(pcm).decode(), **common(n)}


def turn_start(n: int, start_ms: int = 0, end_ms: int = 900) -> list[dict[str, Any]]:
    user = f"u{n}"
    return [
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": start_ms, "item_id": user},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end_ms, "item_id": user},
        {"type": "input_audio_buffer.committed", "item_id": user},
        {
            "type": "conversation.item.added",
            "item": {"id": user, "type": "message", "role": "user", "content": []},
        },
        {"type": "response.created", "response": {"id": f"r{n}", "status": "in_progress"}},
        {
            "type": "conversation.item.added",
            "item": {"id": f"a{n}", "type": "message", "role": "assistant", "content": []},
        },
    ]


def response_done(n: int, status: str = "completed", **extra: Any) -> dict[str, Any]:
    output = [{"id": f"a{n}", "type": "message", "role": "assistant", "content": []}]
    return {"type": "response.done", "response": {"id": f"r{n}", "status": status, "output": output, **extra}}


def test_one_turn_becomes_lane_events_in_order() -> None:
    engine, state = RealtimeEngine(EngineOptions()), RealtimeLinkState()
    usage = {
        "input_tokens": 100,
        "output_tokens": 20,
        "total_tokens": 120,
        "input_token_details": {"cached_tokens": 5},
    }
    step = feed(
        engine,
        state,
        *turn_start(1),
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "u1",
            "content_index": 0,
            "delta": "Hi",
        },
        {"type": "response.output_audio_transcript.delta", "delta": "Hola", **common(1)},
        audio(1, 4800),
        {"type": "response.output_audio.done", **common(1)},
        {"type": "response.output_audio_transcript.done", "transcript": "Hola", **common(1)},
        response_done(1, usage=usage),
    )
    assert step.events == [
        SpeechStarted(7.5),
        SpeechStopped(7.5),
        SourceTranscript("u1", "Hi", final=False),
        TranslationTranscript("a1", "Hola", final=False),
        TranslatedAudio("a1", b"\x01\x00" * 4800),
        TranslationDone("a1"),
        TranslationTranscript("a1", "Hola", final=True),
        Usage(100, 20, 5),
    ]
    assert step.sends == [] and not step.expired and step.fatal is None
    # Positions are absolute on the lane's input: the socket's origin plus the server's audio ms.
    assert state.speech_starts == [] and state.answered_upto == ORIGIN + 900 * 24


def test_cut_short_while_streaming_truncates_once_the_audio_is_complete() -> None:
    engine, state = RealtimeEngine(EngineOptions()), RealtimeLinkState()
    feed(engine, state, *turn_start(1), audio(1, 24_000))
    assert engine.owns_item(state, "a1") and not engine.owns_item(state, "elsewhere")
    assert engine.on_cut_short(state, "a1", 7200) == Step()  # more audio may still come
    step = feed(engine, state, audio(1, 24_000), {"type": "response.output_audio.done", **common(1)})
    assert step.events[-1] == TranslationDone("a1")
    assert sent(step) == [
        {"type": "conversation.item.truncate", "item_id": "a1", "content_index": 0, "audio_end_ms": 300}
    ]
    # Everything heard, or a later report of more than was truncated: nothing more to send.
    assert engine.on_cut_short(state, "a1", 48_000) == Step()
    assert engine.on_cut_short(state, "a1", 12_000) == Step()
    assert sent(engine.on_cut_short(state, "a1", 2400)) == [
        {"type": "conversation.item.truncate", "item_id": "a1", "content_index": 0, "audio_end_ms": 100}
    ]


def test_a_sentence_ended_during_the_previous_answer_is_asked_for_when_it_finishes() -> None:
    engine, state = RealtimeEngine(EngineOptions()), RealtimeLinkState()
    feed(engine, state, *turn_start(1), audio(1, 2400))
    # The speaker went on: a second commit while r1 is active gets no response from the server.
    step = feed(
        engine,
        state,
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1500, "item_id": "u2"},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 2500, "item_id": "u2"},
        {"type": "input_audio_buffer.committed", "item_id": "u2"},
        response_done(1),
    )
    assert sent(step) == [{"type": "response.create", "event_id": "retry_turn_3_1"}]


def test_a_failed_response_is_retried_and_errors_are_classified() -> None:
    engine, state = RealtimeEngine(EngineOptions()), RealtimeLinkState()
    details = {"type": "failed", "error": {"type": "server_error", "code": "oops"}}
    step = feed(engine, state, *turn_start(1), response_done(1, status="failed", status_details=details))
    assert sent(step) == [{"type": "response.create", "event_id": "retry_3_1"}]
    refused = {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "x"},
    }
    assert feed(engine, state, refused).fatal == ("invalid_request_error", "invalid_api_key")
    cap = {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "session_expired", "message": "60 min"},
    }
    assert feed(engine, state, cap) == Step(expired=True)
    raced = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "conversation_already_has_active_response",
            "message": "busy",
            "event_id": "retry_3_1",
        },
    }
    assert feed(engine, state, raced) == Step()


def test_context_is_bounded_by_deleting_the_oldest_finished_items() -> None:
    engine, state = RealtimeEngine(EngineOptions(), context_items=4), RealtimeLinkState()
    step = Step()
    for n in (1, 2, 3):
        step += feed(engine, state, *turn_start(n), audio(n, 2400), response_done(n))
    deleted = [e["item_id"] for e in sent(step) if e["type"] == "conversation.item.delete"]
    assert deleted == ["u1", "a1"]
    assert state.items == ["u2", "a2", "u3", "a3"]


def test_resume_point_skips_speech_already_heard_in_translation() -> None:
    engine, state = RealtimeEngine(EngineOptions()), RealtimeLinkState()
    quiet = AudioFeed()
    feed(engine, state, *turn_start(1, start_ms=200, end_ms=900))
    assert engine.resume_point(state, quiet) == ORIGIN + 200 * 24  # no translation had begun: again
    feed(engine, state, audio(1, 2400))
    assert engine.resume_point(state, quiet) is None  # its translation was being heard
    feed(
        engine, state, {"type": "input_audio_buffer.speech_started", "audio_start_ms": 2000, "item_id": "u2"}
    )
    assert engine.resume_point(state, quiet) == ORIGIN + 2000 * 24
    assert not engine.clean_point(state, quiet) and engine.switch_point(state, quiet) == ORIGIN + 2000 * 24
    assert sent(engine.on_retire(state, quiet)) == [{"type": "input_audio_buffer.clear"}]
    assert state.speech_open is None and engine.clean_point(state, quiet)


def test_items_cut_off_with_their_socket_are_ended_with_what_was_said() -> None:
    engine, state = RealtimeEngine(EngineOptions()), RealtimeLinkState()
    feed(
        engine,
        state,
        *turn_start(1),
        {"type": "response.output_audio_transcript.delta", "delta": "Buenos", **common(1)},
        audio(1, 2400),
    )
    assert engine.has_pending_output(state)
    assert engine.end_items(state, at()).events == [
        TranslationTranscript("a1", "Buenos", final=True),
        TranslationDone("a1"),
    ]
    assert engine.end_items(state, at()) == Step()  # ended once
