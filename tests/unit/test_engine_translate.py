"""Engine `translate` against a scripted server: configuration, chunking, heartbeats, items."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from pydantic import SecretStr

from tests.unit.scripted_ws import ScriptedConn, ScriptedServer, pcm_tone, silence
from translator_bot.engine.base import (
    EngineEvent,
    LaneSpec,
    SourceTranscript,
    SpeechStarted,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
)
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.translate import TranslateSession
from translator_bot.languages import parse_language
from translator_bot.settings import Settings

KEY = "sk-test-translate-0123456789"


def make(server: ScriptedServer) -> TranslateSession:
    s = Settings(openai_api_key=SecretStr(KEY), openai_base_url=server.base_url)
    assert s.effective_engine == "translate"  # the default for OpenAI
    spec = LaneSpec("ana->es", "Ana", None, "Bruno", parse_language("es-MX"))
    options = EngineOptions.from_settings(s)
    return TranslateSession(endpoint_for(s, "translate"), spec, options, give_up_after_s=3)


def audio(pcm: bytes) -> dict[str, Any]:
    return {
        "type": "session.output_audio.delta",
        "delta": base64.b64encode(pcm).decode(),
        "sample_rate": 24000,
    }


async def test_streams_100ms_chunks_groups_items_and_drops_heartbeats() -> None:
    voice1, voice2, voice3 = pcm_tone(200), pcm_tone(200, freq=300), pcm_tone(200, freq=400)

    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.wait_audio_ms(1000)
        await conn.send(audio(silence(200)))  # heartbeat before anything
        await conn.send({"type": "session.input_transcript.delta", "delta": "Good morning"})
        await conn.send(audio(voice1))
        await conn.send({"type": "session.output_transcript.delta", "delta": "Buenos "})
        await conn.send(audio(voice2))
        await conn.send({"type": "session.output_transcript.delta", "delta": "días"})
        await conn.send(audio(silence(200)))  # heartbeat: the item ends
        await conn.send(audio(silence(200)))
        await conn.send(audio(voice3))  # a new item, ended by the idle timer
        await conn.closed.wait()

    server = ScriptedServer([script])
    await server.start()
    session = make(server)
    out: list[EngineEvent] = []
    try:
        await session.start()
        session.send_audio(silence(300) + pcm_tone(500) + silence(700) + b"\x00")  # odd byte: kept for later
        async with asyncio.timeout(10):
            async for ev in session.events():
                out.append(ev)
                if sum(isinstance(e, TranslationDone) for e in out) == 2:
                    break
    finally:
        await session.aclose()
        await server.stop()
    assert server.script_errors == []
    conn = server.conns[0]
    assert conn.path == "/v1/realtime/translations" and conn.query == {"model": "gpt-realtime-translate"}
    assert conn.sent_of("session.update")[0].session.audio.output.language == "es-MX"
    appends = conn.sent_of("session.input_audio_buffer.append")
    assert appends and all(len(base64.b64decode(a.audio)) == 1920 for a in appends)  # 40 ms each
    assert conn.violations == []
    assert isinstance(out[0], SpeechStarted)
    audio_events = [e for e in out if isinstance(e, TranslatedAudio)]
    assert [e.pcm for e in audio_events] == [voice1, voice2, voice3]  # no heartbeat passed on
    first, second = audio_events[0].item_id, audio_events[2].item_id
    assert audio_events[1].item_id == first != second
    assert SourceTranscript(first, "Good morning", final=False) in out
    assert TranslationTranscript(first, "Buenos días", final=True) in out
    assert [e.item_id for e in out if isinstance(e, TranslationDone)] == [first, second]
    session.report_cut_short(first, 10)  # nothing to truncate on this endpoint, and no error


async def test_audio_in_another_format_is_skipped() -> None:
    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.send({**audio(pcm_tone(100)), "sample_rate": 16000})
        await conn.send(audio(pcm_tone(100)))
        await conn.closed.wait()

    server = ScriptedServer([script])
    await server.start()
    session = make(server)
    try:
        await session.start()
        first = await asyncio.wait_for(anext(aiter(session.events())), 5)
    finally:
        await session.aclose()
        await server.stop()
    assert isinstance(first, TranslatedAudio) and first.pcm == pcm_tone(100)


def said(delta: str, elapsed_ms: int | None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "session.input_transcript.delta", "delta": delta}
    if elapsed_ms is not None:
        event["elapsed_ms"] = elapsed_ms
    return event


def translated(delta: str, elapsed_ms: int) -> dict[str, Any]:
    return {"type": "session.output_transcript.delta", "delta": delta, "elapsed_ms": elapsed_ms}


async def run_script(script: Any, items: int) -> list[EngineEvent]:
    server = ScriptedServer([script])
    await server.start()
    session = make(server)
    out: list[EngineEvent] = []
    try:
        await session.start()
        session.send_audio(pcm_tone(500) + silence(500))
        async with asyncio.timeout(10):
            async for ev in session.events():
                out.append(ev)
                if sum(isinstance(e, TranslationDone) for e in out) == items:
                    break
    finally:
        await session.aclose()
        await server.stop()
    assert server.script_errors == []
    return out


def finals(out: list[EngineEvent]) -> list[tuple[str, str]]:
    """(original, translation) of each item, in the order the items ended."""
    source = {e.item_id: e.text for e in out if isinstance(e, SourceTranscript) and e.final}
    target = {e.item_id: e.text for e in out if isinstance(e, TranslationTranscript) and e.final}
    done = [e.item_id for e in out if isinstance(e, TranslationDone)]
    return [(source.get(i, "").strip(), target.get(i, "").strip()) for i in done]


async def test_next_sentences_original_heard_while_a_translation_streams_waits_for_its_own() -> None:
    # The endpoint interprets while the speaker goes on: the transcript of her second sentence
    # arrives (heard 2.6 s after the first one ended) while the first one's translation still plays.
    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.send(said("Buenos días,", 1800))
        await conn.send(audio(pcm_tone(200)))
        await conn.send(translated("Good morning,", 2000))
        await conn.send(said(" gracias.", 2200))  # the same sentence still: it stays with its translation
        await conn.send(audio(pcm_tone(200)))
        await conn.send(said(" Perdone, ¿dónde", 4800))
        await conn.send(said(" está la estación?", 4800))
        await conn.send(translated(" thank you.", 4800))  # still the first sentence's translation
        await conn.send(audio(pcm_tone(200)))
        await conn.send(audio(silence(200)))  # heartbeat: the first translation is over
        await conn.send(audio(pcm_tone(200, freq=300)))
        await conn.send(translated(" Excuse me, where is the station?", 5400))
        await conn.send(audio(silence(200)))
        await conn.closed.wait()

    out = await run_script(script, items=2)
    assert finals(out) == [
        ("Buenos días, gracias.", "Good morning, thank you."),
        ("Perdone, ¿dónde está la estación?", "Excuse me, where is the station?"),
    ]
    voices = [e for e in out if isinstance(e, TranslatedAudio)]
    first, second = voices[0].item_id, voices[-1].item_id
    assert {e.item_id for e in voices[:3]} == {first} and first != second
    # Shown live beside its own translation, not the one playing when it arrived.
    assert SourceTranscript(second, " Perdone, ¿dónde", final=False) in out


async def test_two_originals_waiting_for_a_late_interpreter_pair_in_order() -> None:
    # The interpreter lags a whole sentence: both originals are in before the first translation.
    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.send(said("Buenos días.", 2200))
        await conn.send(said(" Perdone, ¿dónde está la estación?", 4800))
        await conn.send(audio(pcm_tone(200)))
        await conn.send(translated("Good morning.", 5000))
        await conn.send(audio(silence(200)))
        await conn.send(audio(pcm_tone(200, freq=300)))
        await conn.send(translated(" Excuse me, where is the station?", 5600))
        await conn.send(audio(silence(200)))
        await conn.closed.wait()

    out = await run_script(script, items=2)
    assert finals(out) == [
        ("Buenos días.", "Good morning."),
        ("Perdone, ¿dónde está la estación?", "Excuse me, where is the station?"),
    ]


async def test_without_elapsed_ms_the_time_the_original_arrived_separates_sentences() -> None:
    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.send(said("Buenos días.", None))
        await conn.send(audio(pcm_tone(200)))
        await conn.send(translated("Good", 2000))
        await asyncio.sleep(1.0)
        await conn.send(said(" Perdone.", None))
        await conn.send(audio(pcm_tone(200)))
        await conn.send(translated(" morning.", 2200))
        await conn.send(audio(silence(200)))
        await conn.send(audio(pcm_tone(200, freq=300)))
        await conn.send(translated(" Excuse me.", 3000))
        await conn.send(audio(silence(200)))
        await conn.closed.wait()

    out = await run_script(script, items=2)
    assert finals(out) == [("Buenos días.", "Good morning."), ("Perdone.", "Excuse me.")]


async def test_translations_streamed_back_to_back_split_at_the_sentence_with_a_waiting_original() -> None:
    # No heartbeat between the two translations: the endpoint went straight on to the next sentence.
    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.send(said("Perdone, ¿dónde está la estación?", 2200))
        await conn.send(translated("Excuse me, where", 2400))
        await conn.send(audio(pcm_tone(200)))
        await conn.send(said(" La reunión empieza hoy.", 4600))
        await conn.send(translated(" is the station?", 4600))
        await conn.send(audio(pcm_tone(200)))
        await conn.send(translated(" The meeting", 5000))
        await conn.send(audio(pcm_tone(200, freq=300)))
        await conn.send(translated(" starts today.", 5200))
        await conn.send(audio(silence(200)))
        await conn.closed.wait()

    out = await run_script(script, items=2)
    assert finals(out) == [
        ("Perdone, ¿dónde está la estación?", "Excuse me, where is the station?"),
        ("La reunión empieza hoy.", "The meeting starts today."),
    ]
    voices = [e for e in out if isinstance(e, TranslatedAudio)]
    assert voices[1].item_id == voices[0].item_id != voices[2].item_id
