"""What the model engines read of the settings, taken once when a lane's engine is built.

An engine sees these few values, not the whole `Settings`: what it depends on is stated here, and a
test builds one without an environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from translator_bot.glossary import Glossary, load_glossary
from translator_bot.settings import EngineName, Settings, VadType

# The model that transcribes the speaker (captions, the transcript), per engine, when
# TRANSLATOR_TRANSCRIPTION_MODEL is unset:
# - translate: OpenAI's own translation examples configure `gpt-realtime-whisper` (the cookbook
#   "Build Live Translation Apps with gpt-realtime-translate": "If you want source-language
#   transcripts alongside translated audio, configure input transcription with
#   gpt-realtime-whisper", and its browser, Twilio and LiveKit demos all send it);
# - realtime: `gpt-4o-transcribe`, which transcribes each committed turn; `gpt-realtime-whisper`
#   needs `turn_detection: null` in a conversation session (the SDK's docstring), and this engine
#   relies on the server's turn detection.
DEFAULT_TRANSCRIPTION_MODEL: dict[EngineName, str] = {
    "translate": "gpt-realtime-whisper",
    "realtime": "gpt-4o-transcribe",
    "passthrough": "gpt-4o-transcribe",  # asks no model anything; listed so every engine has one
}


@dataclass(frozen=True)
class EngineOptions:
    transcription_model: str | None = None  # None: the engine's default, see transcription_for
    voice: str = "marin"
    vad_type: VadType = "server_vad"
    vad_threshold: float = 0.5
    vad_prefix_padding_ms: int = 300
    vad_silence_duration_ms: int = 500
    session_max_seconds: float = 55 * 60  # the provider ends a session at 60 min: recycle before
    provider_outage_seconds: float = 600  # the longest outage a lane survives
    silence_gate: bool = True  # stop sending silence the model gains nothing from (engine.silence_gate)
    glossary: Glossary | None = None  # read once here, not per session

    def transcription_for(self, engine: EngineName) -> str:
        return self.transcription_model or DEFAULT_TRANSCRIPTION_MODEL[engine]

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        return cls(
            transcription_model=settings.transcription_model,
            voice=settings.voice,
            vad_type=settings.vad_type,
            vad_threshold=settings.vad_threshold,
            vad_prefix_padding_ms=settings.vad_prefix_padding_ms,
            vad_silence_duration_ms=settings.vad_silence_duration_ms,
            session_max_seconds=settings.session_max_seconds,
            provider_outage_seconds=settings.provider_outage_seconds,
            silence_gate=settings.silence_gate,
            glossary=load_glossary(settings.glossary) if settings.glossary else None,
        )
