"""The `/v1/realtime` (GA) wire events the `realtime` engine sends and reads.

Server events the engine reads are modelled whole, nested objects included, with the SDK's field types
(a conversation item is any of the protocol's nine item shapes, tried in turn, as the SDK does), so a
frame is accepted exactly when the SDK would accept it (tests/unit/test_wire_contract.py). Client
events carry only the fields the engine sets, in the SDK's order (the JSON is the SDK's, byte for
byte); the same tests validate what the engine sends against the SDK's client events. See
`engine.wire` for why the SDK is not used here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from translator_bot.engine.wire import ClientEvent, ErrorEvent, ServerModel, parse_event

# --- client events -------------------------------------------------------------------------------


class PcmFormat(BaseModel):
    rate: Literal[24000] = 24000  # audio.formats.MODEL_RATE: the only rate the protocol admits
    type: Literal["audio/pcm"] = "audio/pcm"


class Transcription(BaseModel):
    language: str | None = None
    model: str | None = None


class ServerVad(BaseModel):
    type: Literal["server_vad"] = "server_vad"
    create_response: bool | None = None
    interrupt_response: bool | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    threshold: float | None = None


class SemanticVad(BaseModel):
    type: Literal["semantic_vad"] = "semantic_vad"
    create_response: bool | None = None
    interrupt_response: bool | None = None


class AudioInputConfig(BaseModel):
    format: PcmFormat | None = None
    transcription: Transcription | None = None
    turn_detection: ServerVad | SemanticVad | None = None


class AudioOutputConfig(BaseModel):
    format: PcmFormat | None = None
    voice: str | None = None


class AudioConfig(BaseModel):
    input: AudioInputConfig | None = None
    output: AudioOutputConfig | None = None


class SessionConfig(BaseModel):
    type: Literal["realtime"] = "realtime"
    audio: AudioConfig | None = None
    instructions: str | None = None
    output_modalities: list[Literal["text", "audio"]] | None = None


class SessionUpdate(ClientEvent):
    session: SessionConfig
    type: Literal["session.update"] = "session.update"
    event_id: str | None = None


class InputAudioAppend(ClientEvent):
    audio: str  # base64 pcm16
    type: Literal["input_audio_buffer.append"] = "input_audio_buffer.append"
    event_id: str | None = None


class InputAudioClear(ClientEvent):
    type: Literal["input_audio_buffer.clear"] = "input_audio_buffer.clear"
    event_id: str | None = None


class ItemTruncate(ClientEvent):
    audio_end_ms: int
    content_index: int
    item_id: str
    type: Literal["conversation.item.truncate"] = "conversation.item.truncate"
    event_id: str | None = None


class ItemDelete(ClientEvent):
    item_id: str
    type: Literal["conversation.item.delete"] = "conversation.item.delete"
    event_id: str | None = None


class ResponseCreate(ClientEvent):
    type: Literal["response.create"] = "response.create"
    event_id: str | None = None


# --- conversation items (in item events and in responses) -----------------------------------------

ItemStatus = Literal["completed", "incomplete", "in_progress"]


class _Item(ServerModel):
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: ItemStatus | None = None


class SystemContent(ServerModel):
    text: str | None = None
    type: Literal["input_text"] | None = None


class SystemMessage(_Item):
    content: list[SystemContent]
    role: Literal["system"]
    type: Literal["message"]


class UserContent(ServerModel):
    audio: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    image_url: str | None = None
    text: str | None = None
    transcript: str | None = None
    type: Literal["input_text", "input_audio", "input_image"] | None = None


class UserMessage(_Item):
    content: list[UserContent]
    role: Literal["user"]
    type: Literal["message"]


class AssistantContent(ServerModel):
    audio: str | None = None
    text: str | None = None
    transcript: str | None = None
    type: Literal["output_text", "output_audio"] | None = None


class AssistantMessage(_Item):
    content: list[AssistantContent]
    role: Literal["assistant"]
    type: Literal["message"]


class FunctionCall(_Item):
    arguments: str
    name: str
    type: Literal["function_call"]
    call_id: str | None = None


class FunctionCallOutput(_Item):
    call_id: str
    output: str
    type: Literal["function_call_output"]


class McpApprovalResponse(ServerModel):
    id: str
    approval_request_id: str
    approve: bool
    type: Literal["mcp_approval_response"]
    reason: str | None = None


class McpTool(ServerModel):
    input_schema: object
    name: str
    annotations: object | None = None
    description: str | None = None


class McpListTools(ServerModel):
    server_label: str
    tools: list[McpTool]
    type: Literal["mcp_list_tools"]
    id: str | None = None


class McpProtocolError(ServerModel):
    code: int
    message: str
    type: Literal["protocol_error"]


class McpToolExecutionError(ServerModel):
    message: str
    type: Literal["tool_execution_error"]


class McpHttpError(ServerModel):
    code: int
    message: str
    type: Literal["http_error"]


class McpCall(ServerModel):
    id: str
    arguments: str
    name: str
    server_label: str
    type: Literal["mcp_call"]
    approval_request_id: str | None = None
    error: McpProtocolError | McpToolExecutionError | McpHttpError | None = None
    output: str | None = None


class McpApprovalRequest(ServerModel):
    id: str
    arguments: str
    name: str
    server_label: str
    type: Literal["mcp_approval_request"]


# The SDK's order: a value is tried against each shape (pydantic's smart union), not picked by `type`.
ConversationItem = (
    SystemMessage
    | UserMessage
    | AssistantMessage
    | FunctionCall
    | FunctionCallOutput
    | McpApprovalResponse
    | McpListTools
    | McpCall
    | McpApprovalRequest
)


# --- responses ------------------------------------------------------------------------------------


class _PcmOut(ServerModel):
    rate: Literal[24000] | None = None
    type: Literal["audio/pcm"] | None = None


class _PcmuOut(ServerModel):
    type: Literal["audio/pcmu"] | None = None


class _PcmaOut(ServerModel):
    type: Literal["audio/pcma"] | None = None


class ResponseAudioOutput(ServerModel):
    format: _PcmOut | _PcmuOut | _PcmaOut | None = None
    voice: str | None = None


class ResponseAudio(ServerModel):
    output: ResponseAudioOutput | None = None


class StatusError(ServerModel):
    code: str | None = None
    message: str | None = None
    type: str | None = None


class ResponseStatus(ServerModel):
    error: StatusError | None = None
    reason: Literal["turn_detected", "client_cancelled", "max_output_tokens", "content_filter"] | None = None
    type: Literal["completed", "cancelled", "incomplete", "failed"] | None = None


class CachedTokens(ServerModel):
    audio_tokens: int | None = None
    image_tokens: int | None = None
    text_tokens: int | None = None


class InputTokens(ServerModel):
    audio_tokens: int | None = None
    cached_tokens: int | None = None
    cached_tokens_details: CachedTokens | None = None
    image_tokens: int | None = None
    text_tokens: int | None = None


class OutputTokens(ServerModel):
    audio_tokens: int | None = None
    text_tokens: int | None = None


class ResponseUsage(ServerModel):
    input_token_details: InputTokens | None = None
    input_tokens: int | None = None
    output_token_details: OutputTokens | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None


class Response(ServerModel):
    id: str | None = None
    audio: ResponseAudio | None = None
    conversation_id: str | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    metadata: dict[str, str] | None = None
    object: Literal["realtime.response"] | None = None
    output: list[ConversationItem] | None = None
    output_modalities: list[Literal["text", "audio"]] | None = None
    status: Literal["completed", "cancelled", "failed", "incomplete", "in_progress"] | None = None
    status_details: ResponseStatus | None = None
    usage: ResponseUsage | None = None


# --- server events the engine reads ----------------------------------------------------------------


class _OutputPart(ServerModel):
    content_index: int
    event_id: str
    item_id: str
    output_index: int
    response_id: str


class OutputAudioDelta(_OutputPart):
    delta: str  # base64 pcm16
    type: Literal["response.output_audio.delta"]


class OutputAudioDone(_OutputPart):
    type: Literal["response.output_audio.done"]


class OutputTranscriptDelta(_OutputPart):
    delta: str
    type: Literal["response.output_audio_transcript.delta"]


class OutputTranscriptDone(_OutputPart):
    transcript: str
    type: Literal["response.output_audio_transcript.done"]


class SpeechStarted(ServerModel):
    audio_start_ms: int
    event_id: str
    item_id: str
    type: Literal["input_audio_buffer.speech_started"]


class SpeechStopped(ServerModel):
    audio_end_ms: int
    event_id: str
    item_id: str
    type: Literal["input_audio_buffer.speech_stopped"]


class InputCommitted(ServerModel):
    event_id: str
    item_id: str
    type: Literal["input_audio_buffer.committed"]
    previous_item_id: str | None = None


class ItemAdded(ServerModel):
    event_id: str
    item: ConversationItem
    type: Literal["conversation.item.added"]
    previous_item_id: str | None = None


class ItemCreated(ServerModel):
    event_id: str
    item: ConversationItem
    type: Literal["conversation.item.created"]
    previous_item_id: str | None = None


class ItemDeleted(ServerModel):
    event_id: str
    item_id: str
    type: Literal["conversation.item.deleted"]


class LogProb(ServerModel):
    token: str
    bytes: list[int]
    logprob: float


class InputTranscriptDelta(ServerModel):
    event_id: str
    item_id: str
    type: Literal["conversation.item.input_audio_transcription.delta"]
    content_index: int | None = None
    delta: str | None = None
    logprobs: list[LogProb] | None = None


class TranscriptTokenDetails(ServerModel):
    audio_tokens: int | None = None
    text_tokens: int | None = None


class TranscriptTokens(ServerModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    type: Literal["tokens"]
    input_token_details: TranscriptTokenDetails | None = None


class TranscriptDuration(ServerModel):
    seconds: float
    type: Literal["duration"]


class Language(ServerModel):
    code: str


class InputTranscriptCompleted(ServerModel):
    content_index: int
    event_id: str
    item_id: str
    transcript: str
    type: Literal["conversation.item.input_audio_transcription.completed"]
    usage: TranscriptTokens | TranscriptDuration
    languages: list[Language] | None = None
    logprobs: list[LogProb] | None = None


class TranscriptionError(ServerModel):
    code: str | None = None
    message: str | None = None
    param: str | None = None
    type: str | None = None


class InputTranscriptFailed(ServerModel):
    content_index: int
    error: TranscriptionError
    event_id: str
    item_id: str
    type: Literal["conversation.item.input_audio_transcription.failed"]


class ResponseCreated(ServerModel):
    event_id: str
    response: Response
    type: Literal["response.created"]


class ResponseDone(ServerModel):
    event_id: str
    response: Response
    type: Literal["response.done"]


READ: dict[str, type[ServerModel]] = {
    "response.output_audio.delta": OutputAudioDelta,
    "response.output_audio.done": OutputAudioDone,
    "response.output_audio_transcript.delta": OutputTranscriptDelta,
    "response.output_audio_transcript.done": OutputTranscriptDone,
    "input_audio_buffer.speech_started": SpeechStarted,
    "input_audio_buffer.speech_stopped": SpeechStopped,
    "input_audio_buffer.committed": InputCommitted,
    "conversation.item.added": ItemAdded,
    "conversation.item.created": ItemCreated,
    "conversation.item.deleted": ItemDeleted,
    "conversation.item.input_audio_transcription.delta": InputTranscriptDelta,
    "conversation.item.input_audio_transcription.completed": InputTranscriptCompleted,
    "conversation.item.input_audio_transcription.failed": InputTranscriptFailed,
    "response.created": ResponseCreated,
    "response.done": ResponseDone,
    "error": ErrorEvent,
}

# The rest of the protocol's server events (the SDK's `RealtimeServerEvent`, checked by a test).
IGNORED = frozenset(
    {
        "conversation.created",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.segment",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "input_audio_buffer.cleared",
        "input_audio_buffer.dtmf_event_received",
        "input_audio_buffer.timeout_triggered",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "mcp_list_tools.in_progress",
        "output_audio_buffer.cleared",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "rate_limits.updated",
        "response.content_part.added",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.output_text.done",
        "session.created",
        "session.updated",
    }
)


def parse_server_event(raw: str | bytes) -> BaseModel:
    """One frame from `/v1/realtime` (raises UnknownEventError / MalformedEventError)."""
    return parse_event(raw, READ, IGNORED)
