"""What the model engines read of the settings, taken once when a lane's engine is built.

An engine sees these few values, not the whole `Settings`: what it depends on is stated here, and a
test builds one without an environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from translator_bot.glossary import Glossary, load_glossary
from translator_bot.settings import Settings, VadType


@dataclass(frozen=True)
class EngineOptions:
    transcription_model: str = "gpt-4o-transcribe"
    voice: str = "marin"
    vad_type: VadType = "server_vad"
    vad_threshold: float = 0.5
    vad_prefix_padding_ms: int = 300
    vad_silence_duration_ms: int = 500
    session_max_seconds: float = 55 * 60  # the provider ends a session at 60 min: recycle before
    provider_outage_seconds: float = 600  # the longest outage a lane survives
    glossary: Glossary | None = None  # read once here, not per session

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
            glossary=load_glossary(settings.glossary) if settings.glossary else None,
        )
