"""Contract: the engines' own wire models (engine/wire*.py) accept exactly what the official SDK's models
accept, and what the engines send is what the SDK's client models accept.

The reference is `engine.protocol` (the SDK's models re-wrapped as discriminated unions, which the fake
server validates with). For every server event type an engine reads, hand-written samples with every
documented optional field, and every frame the fake server emits in a session of each engine, are
parsed by both; then each sample is mutated field by field (removed, replaced by a value of every
JSON type, an unknown field added) and both must again agree: accepted by both with the same values,
or rejected by both. Types the engines do not read must be known to both, unknown ones to neither.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any, get_args

import aiohttp
import pytest
from pydantic import BaseModel, SecretStr

from translator_bot.engine import protocol, wire_realtime, wire_translate
from translator_bot.engine.base import LaneSpec
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import RealtimeEngine
from translator_bot.engine.translate import TranslateEngine
from translator_bot.engine.wire import Ignored, MalformedEventError, UnknownEventError, encode_event
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.languages import parse_language
from translator_bot.settings import Settings, VadType

Parse = Callable[[str], BaseModel]
B64 = base64.b64encode(b"\x01\x00\x02\x00").decode()


def delta_part(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": "event_1",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        **fields,
    }


ITEMS: list[dict[str, Any]] = [
    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be brief."}]},
    {
        "id": "item_u",
        "object": "realtime.item",
        "status": "completed",
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_audio", "audio": B64, "transcript": None},
            {"type": "input_text", "text": "hola"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA==", "detail": "low"},
        ],
    },
    {
        "id": "item_a",
        "object": "realtime.item",
        "status": "in_progress",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": "Hola."}, {"type": "output_text", "text": "x"}],
    },
    {"id": "fc_1", "type": "function_call", "name": "f", "arguments": "{}", "call_id": "call_1"},
    {"type": "function_call_output", "call_id": "call_1", "output": "42", "status": "completed"},
    {"id": "mr_1", "type": "mcp_approval_response", "approval_request_id": "ar_1", "approve": True},
    {
        "id": "ml_1",
        "type": "mcp_list_tools",
        "server_label": "s",
        "tools": [{"name": "t", "input_schema": {"type": "object"}, "annotations": None, "description": "d"}],
    },
    {
        "id": "mc_1",
        "type": "mcp_call",
        "name": "t",
        "arguments": "{}",
        "server_label": "s",
        "output": None,
        "error": {"type": "protocol_error", "code": 1, "message": "m"},
    },
    {
        "id": "mc_2",
        "type": "mcp_call",
        "name": "t",
        "arguments": "{}",
        "server_label": "s",
        "error": {"type": "tool_execution_error", "message": "m"},
    },
    {
        "id": "mc_3",
        "type": "mcp_call",
        "name": "t",
        "arguments": "{}",
        "server_label": "s",
        "error": {"type": "http_error", "code": 500, "message": "m"},
    },
    {"id": "mq_1", "type": "mcp_approval_request", "name": "t", "arguments": "{}", "server_label": "s"},
]

USAGE = {
    "total_tokens": 120,
    "input_tokens": 100,
    "output_tokens": 20,
    "input_token_details": {
        "text_tokens": 10,
        "audio_tokens": 90,
        "image_tokens": 0,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 64, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 5, "audio_tokens": 15},
}


def response(**fields: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "realtime.response",
        "status": "in_progress",
        "status_details": None,
        "output": [],
        "conversation_id": "conv_1",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
        "usage": None,
        "metadata": {"k": "v"},
        **fields,
    }


REALTIME_SAMPLES: list[dict[str, Any]] = [
    delta_part("response.output_audio.delta", delta=B64),
    delta_part("response.output_audio.done"),
    delta_part("response.output_audio_transcript.delta", delta="Ho"),
    delta_part("response.output_audio_transcript.done", transcript="Hola."),
    {"type": "input_audio_buffer.speech_started", "event_id": "e", "audio_start_ms": 300, "item_id": "i"},
    {"type": "input_audio_buffer.speech_stopped", "event_id": "e", "audio_end_ms": 2900, "item_id": "i"},
    {"type": "input_audio_buffer.committed", "event_id": "e", "item_id": "i", "previous_item_id": None},
    {"type": "input_audio_buffer.committed", "event_id": "e", "item_id": "i", "previous_item_id": "h"},
    *[
        {"type": kind, "event_id": "e", "previous_item_id": "root", "item": item}
        for kind in ("conversation.item.added", "conversation.item.created")
        for item in ITEMS
    ],
    {"type": "conversation.item.deleted", "event_id": "e", "item_id": "i"},
    {"type": "conversation.item.input_audio_transcription.delta", "event_id": "e", "item_id": "i"},
    {
        "type": "conversation.item.input_audio_transcription.delta",
        "event_id": "e",
        "item_id": "i",
        "content_index": 0,
        "delta": "Excuse",
        "logprobs": [{"token": "Ex", "bytes": [69, 120], "logprob": -0.1}],
    },
    {
        "type": "conversation.item.input_audio_transcription.completed",
        "event_id": "e",
        "item_id": "i",
        "content_index": 0,
        "transcript": "Excuse me.",
        "usage": {
            "type": "tokens",
            "input_tokens": 10,
            "output_tokens": 3,
            "total_tokens": 13,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 10},
        },
        "languages": [{"code": "en"}],
        "logprobs": None,
    },
    {
        "type": "conversation.item.input_audio_transcription.completed",
        "event_id": "e",
        "item_id": "i",
        "content_index": 0,
        "transcript": "Excuse me.",
        "usage": {"type": "duration", "seconds": 2.5},
    },
    {
        "type": "conversation.item.input_audio_transcription.failed",
        "event_id": "e",
        "item_id": "i",
        "content_index": 0,
        "error": {"type": "server_error", "code": "c", "message": "m", "param": None},
    },
    {"type": "response.created", "event_id": "e", "response": response()},
    {"type": "response.created", "event_id": "e", "response": {}},
    {
        "type": "response.done",
        "event_id": "e",
        "response": response(status="completed", output=[ITEMS[2]], usage=USAGE),
    },
    {
        "type": "response.done",
        "event_id": "e",
        "response": response(
            status="failed",
            status_details={"type": "failed", "error": {"type": "server_error", "code": "c", "message": "m"}},
        ),
    },
    {
        "type": "response.done",
        "event_id": "e",
        "response": response(
            status="cancelled",
            max_output_tokens=4096,
            status_details={"type": "cancelled", "reason": "client_cancelled"},
            audio={"output": {"format": {"type": "audio/pcmu"}, "voice": "custom"}},
            output=ITEMS,
        ),
    },
    {
        "type": "error",
        "event_id": "e",
        "error": {
            "type": "invalid_request_error",
            "code": "c",
            "message": "m",
            "param": "p",
            "event_id": "cfg_1",
        },
    },
    {"type": "error", "event_id": "e", "error": {"type": "server_error", "message": "m"}},
]

TRANSLATION_SAMPLES: list[dict[str, Any]] = [
    {
        "type": "session.output_audio.delta",
        "event_id": "e",
        "delta": B64,
        "channels": 1,
        "elapsed_ms": 200,
        "format": "pcm16",
        "sample_rate": 24000,
    },
    {"type": "session.output_audio.delta", "event_id": "e", "delta": B64},
    {"type": "session.output_transcript.delta", "event_id": "e", "delta": "Hola", "elapsed_ms": 400},
    {"type": "session.output_transcript.delta", "event_id": "e", "delta": "Hola"},
    {"type": "session.input_transcript.delta", "event_id": "e", "delta": "Hello", "elapsed_ms": 400},
    {"type": "session.input_transcript.delta", "event_id": "e", "delta": "Hello"},
    {"type": "session.closed", "event_id": "e"},
    {"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "message": "m"}},
]

ENDPOINTS = {
    "realtime": (wire_realtime.parse_server_event, protocol.parse_server_event, REALTIME_SAMPLES),
    "translate": (
        wire_translate.parse_server_event,
        protocol.parse_translation_server_event,
        TRANSLATION_SAMPLES,
    ),
}

# A value of every JSON type (and the lax-mode edge cases: numeric strings, whole floats, 0/1 as bools).
REPLACEMENTS: list[Any] = [None, 0, 1, -1, 2.5, 3.0, "x", "7", "", True, False, [], {}, ["x"], {"type": "x"}]


def verdict(parse: Parse, raw: str) -> tuple[str, BaseModel | None]:
    try:
        return "ok", parse(raw)
    except UnknownEventError:
        return "unknown", None
    except MalformedEventError:
        return "malformed", None


def values(value: Any) -> Any:
    """The fields a model was given, recursively, without the unknown ones (the SDK keeps those)."""
    if isinstance(value, BaseModel):
        declared = type(value).model_fields
        return {
            name: values(getattr(value, name)) for name in sorted(value.model_fields_set & declared.keys())
        }
    if isinstance(value, list):
        return [values(inner) for inner in value]
    if isinstance(value, dict):
        return {key: values(inner) for key, inner in value.items()}
    return value


def assert_same(raw: str, ours: Parse, sdk: Parse) -> str:
    """Both parsers agree on `raw` (and on the values they read from it); returns the verdict."""
    mine, theirs = verdict(ours, raw), verdict(sdk, raw)
    assert mine[0] == theirs[0], f"ours {mine[0]}, SDK {theirs[0]}: {raw[:400]}"
    if mine[1] is not None and theirs[1] is not None:
        assert values(mine[1]) == values(theirs[1]), raw[:400]
    return mine[0]


def paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and list index inside `value` (the top-level `type` excluded: that picks the model)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if at or key != "type":
                yield (*at, key)
                yield from paths(inner, (*at, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*at, index)
            yield from paths(inner, (*at, index))


def mutations(sample: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field removed, replaced by each of REPLACEMENTS, and an unknown field added to each object."""
    for path in paths(sample):
        *parent_path, last = path
        for replacement in ["<removed>", *REPLACEMENTS]:
            variant = copy.deepcopy(sample)
            parent: Any = variant
            for key in parent_path:
                parent = parent[key]
            if replacement == "<removed>":
                del parent[last]
            else:
                parent[last] = replacement
            yield f"{path} = {replacement!r}", variant
        inner: Any = sample
        for key in path:
            inner = inner[key]
        if isinstance(inner, dict):
            variant = copy.deepcopy(sample)
            target: Any = variant
            for key in path:
                target = target[key]
            target["a_field_from_the_future"] = {"x": 1}
            yield f"{path} + unknown field", variant


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_the_event_types_are_the_sdks(endpoint: str) -> None:
    module = wire_realtime if endpoint == "realtime" else wire_translate
    sdk_types = (
        protocol.SERVER_EVENT_TYPES if endpoint == "realtime" else protocol.TRANSLATION_SERVER_EVENT_TYPES
    )
    assert set(module.READ) | module.IGNORED == sdk_types
    assert not set(module.READ) & module.IGNORED


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_every_read_type_has_samples_and_they_are_valid(endpoint: str) -> None:
    ours, sdk, samples = ENDPOINTS[endpoint]
    module = wire_realtime if endpoint == "realtime" else wire_translate
    assert {s["type"] for s in samples} == set(module.READ)
    for sample in samples:
        assert assert_same(json.dumps(sample), ours, sdk) == "ok", sample


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_mutated_events_are_accepted_or_rejected_as_the_sdk_does(endpoint: str) -> None:
    ours, sdk, samples = ENDPOINTS[endpoint]
    outcomes: dict[str, int] = {"ok": 0, "malformed": 0}
    for sample in samples:
        for what, variant in mutations(sample):
            try:
                outcomes[assert_same(json.dumps(variant), ours, sdk)] += 1
            except AssertionError as exc:
                raise AssertionError(f"{sample['type']}: {what}: {exc}") from None
    # Both kinds occur in numbers: the mutations reach required fields, optional ones and coercions.
    assert outcomes["ok"] > 50 and outcomes["malformed"] > 50, outcomes


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_unknown_and_broken_frames_are_classified_alike(endpoint: str) -> None:
    ours, sdk, _ = ENDPOINTS[endpoint]
    for raw in (
        json.dumps({"type": "response.future_feature.delta", "event_id": "e"}),
        json.dumps({"type": "session.future", "event_id": "e"}),
    ):
        assert assert_same(raw, ours, sdk) == "unknown"
    for raw in ("", "{", '"x"', "[]", "null", '{"event_id": "e"}', '{"type": 5}', '{"type": null}'):
        assert assert_same(raw, ours, sdk) == "malformed", raw


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_types_the_engines_do_not_read_are_known_and_passed_on_as_ignored(endpoint: str) -> None:
    ours, sdk, _ = ENDPOINTS[endpoint]
    module = wire_realtime if endpoint == "realtime" else wire_translate
    for kind in module.IGNORED:
        raw = json.dumps({"type": kind, "event_id": "e"})
        event = ours(raw)
        assert isinstance(event, Ignored) and event.type == kind
        assert verdict(sdk, raw)[0] != "unknown", kind


def test_a_malformed_event_gets_one_precise_error() -> None:
    raw = json.dumps({"type": "response.output_audio.delta", "event_id": "e"})  # the fake's "bad_fields"
    with pytest.raises(MalformedEventError) as caught:
        wire_realtime.parse_server_event(raw)
    assert str(caught.value) == "response.output_audio.delta: content_index: Field required"
    bad = {**TRANSLATION_SAMPLES[0], "sample_rate": "fast"}
    with pytest.raises(MalformedEventError) as caught:
        wire_translate.parse_server_event(json.dumps(bad))
    assert str(caught.value) == (
        "session.output_audio.delta: sample_rate: Input should be a valid integer, unable to parse string "
        "as an integer"
    )


# --- what the fake server emits, in a session of each engine --------------------------------------------


async def frames_of_a_session(url: str, steps: list[tuple[list[str], str]], wait_s: float = 20) -> list[str]:
    """Every text frame the server sends; each step sends its client events, then reads frames until one
    of the step's type."""
    frames: list[str] = []
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url, headers={"Authorization": "Bearer sk-test"}, max_msg_size=0)
        try:
            for sends, until in steps:
                for raw in sends:
                    await ws.send_str(raw)
                try:
                    async with asyncio.timeout(wait_s):
                        async for message in ws:
                            assert message.type == aiohttp.WSMsgType.TEXT, message
                            frames.append(message.data)
                            if json.loads(message.data).get("type") == until:
                                break
                except TimeoutError:
                    got = [json.loads(f)["type"] for f in frames[-8:]]
                    raise AssertionError(f"no {until} after {sends[0][:80]}: {got}") from None
        finally:
            await ws.close()
    return frames


def event(**fields: Any) -> str:
    return json.dumps(fields)


def speech() -> str:
    pcm = bytes(24 * 2 * 300) + read_pcm(utterance("u2-en")).astype("<i2").tobytes() + bytes(24 * 2 * 1500)
    return base64.b64encode(pcm).decode()


SPEC = LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es"))
OPTIONS = EngineOptions.from_settings(Settings(openai_api_key=SecretStr("sk-x")))


async def test_everything_the_fake_emits_is_parsed_as_the_sdk_parses_it() -> None:
    fake = FakeRealtimeServer(
        options=FakeOptions(realtime_speed=50.0, transcript_delay_ms=0, heartbeat_ms=50)
    )
    await fake.start()
    try:
        realtime = RealtimeEngine(OPTIONS)
        conversation = [
            ([encode_event(realtime.session_update(SPEC, "cfg_1"))], "session.updated"),
            ([event(type="input_audio_buffer.append", audio=speech())], "response.done"),
            ([event(type="conversation.item.create", item=ITEMS[1])], "conversation.item.done"),
            ([event(type="conversation.item.retrieve", item_id="nope")], "error"),
            ([event(type="no.such.event")], "error"),
            ([event(type="response.create"), event(type="response.cancel")], "response.done"),
            (
                [event(type="input_audio_buffer.append", audio=speech()[:40_000])],
                "input_audio_buffer.speech_started",
            ),
            ([event(type="input_audio_buffer.clear")], "input_audio_buffer.cleared"),
        ]
        frames = await frames_of_a_session(
            f"{fake.websocket_base_url}/realtime?model=gpt-realtime", conversation
        )
        translate = TranslateEngine(OPTIONS)
        translation = [
            ([encode_event(translate.session_update(SPEC, "cfg_1"))], "session.updated"),
            ([event(type="session.input_audio_buffer.append", audio=speech())], "session.output_audio.delta"),
            ([event(type="session.close")], "session.closed"),
        ]
        translated = await frames_of_a_session(
            f"{fake.websocket_base_url}/realtime/translations?model=gpt-realtime-translate", translation
        )
    finally:
        await fake.stop()
    seen: dict[str, set[str]] = {"realtime": set(), "translate": set()}
    for endpoint, raws in (("realtime", frames), ("translate", translated)):
        ours, sdk, _ = ENDPOINTS[endpoint]
        module = wire_realtime if endpoint == "realtime" else wire_translate
        for raw in raws:
            kind = json.loads(raw)["type"]
            if kind in module.READ:
                assert assert_same(raw, ours, sdk) == "ok"
            else:
                assert isinstance(ours(raw), Ignored) and verdict(sdk, raw)[0] == "ok", raw[:300]
            seen[endpoint].add(kind)
    # The sessions went through every kind of event an engine reads that the fake can produce.
    assert {
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.done",
        "error",
    } <= seen["realtime"], seen["realtime"]
    assert set(wire_translate.READ) - {"error"} <= seen["translate"], seen["translate"]


# --- what the engines send ---------------------------------------------------------------------------


@pytest.mark.parametrize("vad", get_args(VadType))
@pytest.mark.parametrize("source", [None, "en", "pt-BR"])
@pytest.mark.parametrize("voice", ["marin", "cedar", "voice_custom123"])
@pytest.mark.parametrize("transcription", [None, "whisper-1", "gpt-realtime-whisper"])
def test_the_session_configuration_is_the_sdks_byte_for_byte(
    vad: VadType, source: str | None, voice: str, transcription: str | None
) -> None:
    settings = Settings(
        openai_api_key=SecretStr("sk-x"),
        vad_type=vad,
        voice=voice,
        transcription_model=transcription,
        vad_threshold=0.7,
        vad_silence_duration_ms=350,
    )
    options = EngineOptions.from_settings(settings)
    spec = LaneSpec(
        "ana->es", "Ana", parse_language(source) if source else None, "Bruno", parse_language("es")
    )
    for engine, parse in (
        (RealtimeEngine(options), protocol.parse_client_event),
        (TranslateEngine(options), protocol.parse_translation_client_event),
    ):
        sent = encode_event(engine.session_update(spec, "cfg_1"))
        assert encode_event(parse(sent)) == sent
