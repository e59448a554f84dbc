"""The `/v1/realtime/translations` wire events the `translate` engine sends and reads.

Modelled with the SDK's field types, so a frame is accepted exactly when the SDK would accept it, and
what the engine sends validates as the SDK's client events (tests/unit/test_wire_contract.py). See
`engine.wire` for why the SDK is not used here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from translator_bot.engine.wire import ClientEvent, ErrorEvent, ServerModel, parse_event

# --- client events -------------------------------------------------------------------------------


class InputTranscription(BaseModel):
    model: str


class AudioInput(BaseModel):
    transcription: InputTranscription | None = None


class AudioOutput(BaseModel):
    language: str | None = None  # the target language; the source is detected


class Audio(BaseModel):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class SessionConfig(BaseModel):
    audio: Audio | None = None


class SessionUpdate(ClientEvent):
    session: SessionConfig
    type: Literal["session.update"] = "session.update"
    event_id: str | None = None


class InputAudioAppend(ClientEvent):
    audio: str  # base64 pcm16
    type: Literal["session.input_audio_buffer.append"] = "session.input_audio_buffer.append"
    event_id: str | None = None


class SessionClose(ClientEvent):
    type: Literal["session.close"] = "session.close"
    event_id: str | None = None


# --- server events the engine reads ----------------------------------------------------------------


class OutputAudioDelta(ServerModel):
    delta: str  # base64 pcm16
    event_id: str
    type: Literal["session.output_audio.delta"]
    channels: int | None = None
    elapsed_ms: int | None = None
    format: Literal["pcm16"] | None = None
    sample_rate: int | None = None


class OutputTranscriptDelta(ServerModel):
    delta: str
    event_id: str
    type: Literal["session.output_transcript.delta"]
    elapsed_ms: int | None = None


class InputTranscriptDelta(ServerModel):
    delta: str
    event_id: str
    type: Literal["session.input_transcript.delta"]
    elapsed_ms: int | None = None  # where on the input's audio clock the text was heard


class SessionClosed(ServerModel):
    event_id: str
    type: Literal["session.closed"]


READ: dict[str, type[ServerModel]] = {
    "session.output_audio.delta": OutputAudioDelta,
    "session.output_transcript.delta": OutputTranscriptDelta,
    "session.input_transcript.delta": InputTranscriptDelta,
    "session.closed": SessionClosed,
    "error": ErrorEvent,
}

# The rest of the endpoint's server events (the SDK's `RealtimeTranslationServerEvent`, checked by a test).
IGNORED = frozenset({"session.created", "session.updated"})


def parse_server_event(raw: str | bytes) -> BaseModel:
    """One frame from the translation endpoint (raises UnknownEventError / MalformedEventError)."""
    return parse_event(raw, READ, IGNORED)
