"""The transcription model each engine asks for: its own default, or TRANSLATOR_TRANSCRIPTION_MODEL.

For the translate endpoint the default is what OpenAI's translation examples configure
(`gpt-realtime-whisper`); the realtime engine keeps `gpt-4o-transcribe`, which works with the server's
turn detection that engine relies on.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from tests.unit.scripted_ws import ScriptedConn, ScriptedServer
from translator_bot.engine.base import LaneSpec
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime_config import session_config
from translator_bot.engine.translate import TranslateSession
from translator_bot.languages import parse_language
from translator_bot.settings import Settings

KEY = "sk-test-options-0123456789"
SPEC = LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es"))


async def translate_transcription_sent(settings: Settings) -> str:
    """The transcription model in the session.update the translate engine sends on the wire."""
    configured = asyncio.Event()

    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        configured.set()
        await conn.closed.wait()

    server = ScriptedServer([script])
    await server.start()
    settings = settings.model_copy(update={"openai_base_url": server.base_url})
    session = TranslateSession(
        endpoint_for(settings, "translate"), SPEC, EngineOptions.from_settings(settings), give_up_after_s=3
    )
    try:
        await session.start()
        conn = await server.wait_conns(1)
        await asyncio.wait_for(configured.wait(), 5)
        update = conn.sent_of("session.update")[0]
    finally:
        await session.aclose()
        await server.stop()
    model: str = update.session.audio.input.transcription.model
    return model


async def test_the_translate_engine_asks_for_gpt_realtime_whisper_by_default() -> None:
    settings = Settings(openai_api_key=SecretStr(KEY))
    assert settings.effective_engine == "translate"
    assert await translate_transcription_sent(settings) == "gpt-realtime-whisper"


async def test_a_configured_transcription_model_wins_on_the_translate_engine() -> None:
    settings = Settings(openai_api_key=SecretStr(KEY), transcription_model="gpt-4o-mini-transcribe")
    assert await translate_transcription_sent(settings) == "gpt-4o-mini-transcribe"


@pytest.mark.parametrize(("configured", "sent"), [(None, "gpt-4o-transcribe"), ("whisper-1", "whisper-1")])
def test_the_realtime_engine_keeps_gpt_4o_transcribe_unless_configured(
    configured: str | None, sent: str
) -> None:
    settings = Settings(openai_api_key=SecretStr(KEY), engine="realtime", transcription_model=configured)
    config = session_config(EngineOptions.from_settings(settings), SPEC)
    assert config.audio is not None and config.audio.input is not None
    assert config.audio.input.transcription is not None
    assert config.audio.input.transcription.model == sent


def test_an_empty_transcription_model_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSLATOR_TRANSCRIPTION_MODEL", "")
    settings = Settings(openai_api_key=SecretStr(KEY))
    assert settings.transcription_model is None
    assert EngineOptions.from_settings(settings).transcription_for("translate") == "gpt-realtime-whisper"
