"""The `/v1/realtime` session configuration for a lane: an interpreter's instructions, 24 kHz pcm16 both
ways, and server VAD that answers every turn without ever cutting the previous answer short.

Server VAD decides the turns and creates one response per turn (`create_response`); it must never
cancel the translation of the previous sentence because the speaker went on talking
(`interrupt_response: false`).
"""

from __future__ import annotations

from translator_bot.engine.base import LaneSpec
from translator_bot.engine.instructions import build_instructions
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.wire_realtime import (
    AudioConfig,
    AudioInputConfig,
    AudioOutputConfig,
    PcmFormat,
    SemanticVad,
    ServerVad,
    SessionConfig,
    Transcription,
)

_PCM = PcmFormat(type="audio/pcm", rate=24000)  # audio.formats.MODEL_RATE; the protocol admits only this


def turn_detection(options: EngineOptions) -> ServerVad | SemanticVad:
    if options.vad_type == "semantic_vad":
        return SemanticVad(type="semantic_vad", create_response=True, interrupt_response=False)
    return ServerVad(
        type="server_vad",
        threshold=options.vad_threshold,
        prefix_padding_ms=options.vad_prefix_padding_ms,
        silence_duration_ms=options.vad_silence_duration_ms,
        create_response=True,
        interrupt_response=False,
    )


def session_config(options: EngineOptions, spec: LaneSpec) -> SessionConfig:
    transcription = Transcription(
        model=options.transcription_for("realtime"),
        language=spec.source.base if spec.source is not None else None,
    )
    return SessionConfig(
        type="realtime",
        instructions=build_instructions(spec, options.glossary),
        output_modalities=["audio"],
        audio=AudioConfig(
            input=AudioInputConfig(
                format=_PCM, transcription=transcription, turn_detection=turn_detection(options)
            ),
            output=AudioOutputConfig(format=_PCM, voice=options.voice),
        ),
    )
