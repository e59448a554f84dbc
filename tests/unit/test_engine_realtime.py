"""Engine `realtime` against a scripted server: configuration, events, truncation, faults, lifetime."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.unit.scripted_ws import ScriptedConn, ScriptedServer, pcm_tone, silence
from translator_bot.engine.base import (
    EngineEvent,
    EngineState,
    LaneSpec,
    SpeechStarted,
    SpeechStopped,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
    Usage,
)
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import RealtimeSession
from translator_bot.errors import ExitCode, ProviderFatalError
from translator_bot.languages import parse_language
from translator_bot.metrics import ENGINE_UNKNOWN_EVENTS, counter_value
from translator_bot.settings import Settings

KEY = "sk-test-0123456789abcdef"
INTO = re.compile(r"\binto ([A-Z][a-z]+(?: [A-Z][a-z]+)?)")


def spec(target: str = "es") -> LaneSpec:
    return LaneSpec("alice->es", "Alice", parse_language("en"), "Bea", parse_language(target))


def settings_for(server: ScriptedServer, **extra: Any) -> Settings:
    return Settings(
        openai_api_key=SecretStr(KEY), openai_base_url=server.base_url, engine="realtime", **extra
    )


def make(server: ScriptedServer, **kwargs: Any) -> RealtimeSession:
    s = settings_for(server, **kwargs.pop("settings", {}))
    options = EngineOptions.from_settings(s)
    return RealtimeSession(endpoint_for(s, "realtime"), kwargs.pop("lane", spec()), options, **kwargs)


async def collect(session: RealtimeSession, until: type, out: list[EngineEvent]) -> None:
    async for ev in session.events():
        out.append(ev)
        if isinstance(ev, until):
            return


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


async def one_turn(
    conn: ScriptedConn, n: int, pcm: bytes, *, input_tokens: int = 100, done: bool = True
) -> None:
    """The server's event sequence for one VAD turn and its response."""
    user, item, resp = f"u{n}", f"a{n}", f"r{n}"
    await conn.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": user})
    await conn.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": user})
    await conn.send({"type": "input_audio_buffer.committed", "item_id": user})
    await conn.send(
        {
            "type": "conversation.item.added",
            "item": {"id": user, "type": "message", "role": "user", "content": []},
        }
    )
    await conn.send({"type": "response.created", "response": {"id": resp, "status": "in_progress"}})
    await conn.send(
        {
            "type": "conversation.item.added",
            "item": {"id": item, "type": "message", "role": "assistant", "content": []},
        }
    )
    common = {"response_id": resp, "item_id": item, "output_index": 0, "content_index": 0}
    await conn.send({"type": "response.output_audio_transcript.delta", "delta": "Hola", **common})
    for start in range(0, len(pcm), 4800):
        await conn.send(
            {"type": "response.output_audio.delta", "delta": b64(pcm[start : start + 4800]), **common}
        )
    if not done:
        return
    await conn.send({"type": "response.output_audio.done", **common})
    await conn.send({"type": "response.output_audio_transcript.done", "transcript": "Hola", **common})
    usage = {"input_tokens": input_tokens, "output_tokens": 20, "total_tokens": input_tokens + 20}
    usage["input_token_details"] = {"cached_tokens": 5}  # type: ignore[assignment]
    await conn.send(
        {
            "type": "response.done",
            "response": {
                "id": resp,
                "status": "completed",
                "output": [{"id": item, "type": "message", "role": "assistant", "content": []}],
                "usage": usage,
            },
        }
    )


@pytest.fixture
async def server_factory() -> AsyncIterator[Any]:
    servers: list[ScriptedServer] = []

    async def factory(*args: Any, **kwargs: Any) -> ScriptedServer:
        server = ScriptedServer(*args, **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()
    assert all(s.script_errors == [] for s in servers)


async def test_configures_an_interpreter_session(server_factory: Any) -> None:
    server = await server_factory()
    session = make(server)
    await session.start()
    conn = await server.wait_conns(1)
    try:
        assert conn.path == "/v1/realtime" and conn.query == {"model": "gpt-realtime"}
        assert conn.headers["Authorization"] == f"Bearer {KEY}"
        assert "OpenAI-Beta" not in conn.headers  # GA protocol
        update = conn.sent_of("session.update")[0]
        cfg = update.session
        match = INTO.search(cfg.instructions)
        assert match is not None and match.group(1) == "Spanish"
        vad = cfg.audio.input.turn_detection
        assert vad.type == "server_vad" and vad.interrupt_response is False and vad.create_response is True
        assert cfg.audio.input.transcription.model == "gpt-4o-transcribe"
        assert cfg.audio.output.format.rate == 24000 and cfg.audio.input.format.rate == 24000
        connected = session.state
    finally:
        await session.aclose()
    assert connected is EngineState.CONNECTED
    assert session.state is EngineState.CLOSED
    assert conn.violations == []


async def test_spec_changes_before_and_after_connect(server_factory: Any) -> None:
    server = await server_factory()
    session = make(server)
    session.set_target_language(parse_language("de"))  # before the socket exists
    await session.start()
    conn = await server.wait_conns(1)
    try:
        first = conn.sent_of("session.update")[0].session.instructions
        assert INTO.search(first).group(1) == "German"  # type: ignore[union-attr]
        session.set_target_language(parse_language("fr"))
        later = await conn.next_event("session.update")
        assert INTO.search(later.session.instructions).group(1) == "French"  # type: ignore[union-attr]
    finally:
        await session.aclose()
    assert conn.violations == []


async def test_turn_events_become_lane_events_without_response_create(server_factory: Any) -> None:
    pcm = pcm_tone(300)

    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.wait_audio_ms(500)
        await one_turn(conn, 1, pcm)
        await conn.closed.wait()

    server = await server_factory([script])
    session = make(server)
    await session.start()
    out: list[EngineEvent] = []
    try:
        session.send_audio(pcm_tone(600))
        await asyncio.wait_for(collect(session, Usage, out), 5)
    finally:
        await session.aclose()
    kinds = [type(e) for e in out]
    assert kinds[:2] == [SpeechStarted, SpeechStopped]
    audio = b"".join(e.pcm for e in out if isinstance(e, TranslatedAudio))
    assert audio == pcm
    assert TranslationDone("a1") in out
    assert TranslationTranscript("a1", "Hola", final=True) in out
    assert out[-1] == Usage(100, 20, 5) and session.usage_total == Usage(100, 20, 5)
    conn = server.conns[0]
    assert conn.sent_of("response.create") == []
    assert conn.violations == []


async def test_truncate_never_overshoots(server_factory: Any) -> None:
    """The peers' bug: audio_end_ms from wall clock, or from a counter not reset per item, exceeds the
    item's audio and the server answers with an error. Here it is clamped to what the item received
    and what was played, per item id, whatever the caller reports."""
    first, second = pcm_tone(500), pcm_tone(100)
    truncates: list[Any] = []

    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.wait_audio_ms(100)
        await one_turn(conn, 1, first + b"\x00\x00")  # 12001 samples: 500.04 ms
        await one_turn(conn, 2, second)
        await one_turn(conn, 3, pcm_tone(400), done=False)  # still streaming when playout is cut
        while True:
            ev = await conn.next_event("conversation.item.truncate", wait_s=30)
            truncates.append(ev)
            have = {"a1": 12001, "a2": 2400, "a3": 14400}[ev.item_id]  # type: ignore[attr-defined]
            if ev.audio_end_ms * 24 > have:  # type: ignore[attr-defined]
                await conn.send(
                    {"type": "error", "error": {"type": "invalid_request_error", "message": "too long"}}
                )
            if ev.item_id == "a3":  # type: ignore[attr-defined]
                return

    server = await server_factory([script])
    session = make(server)
    await session.start()
    out: list[EngineEvent] = []
    try:
        session.send_audio(pcm_tone(200))
        await asyncio.wait_for(collect(session, Usage, out), 5)
        await asyncio.wait_for(collect(session, Usage, out), 5)
        # a1: everything played or a bogus larger count: nothing unheard, nothing to truncate
        session.report_cut_short("a1", 10**7)
        # a1 cut after 250 ms
        session.report_cut_short("a1", 6000)
        # a2: a count carried over from a1 (not reset per item) must not leak into a2
        session.report_cut_short("a2", 2399)
        session.report_cut_short("unknown-item", 100)
        session.report_cut_short("a1", -5)
        # a3 is still streaming: the truncate waits for its audio to be complete
        conn = server.conns[0]
        while sum(len(e.pcm) for e in out if isinstance(e, TranslatedAudio) and e.item_id == "a3") < 19200:
            out.append(await asyncio.wait_for(anext(aiter(session.events())), 5))
        session.report_cut_short("a3", 7200)  # cut after 300 ms, before its audio was complete
        common = {"response_id": "r3", "item_id": "a3", "output_index": 0, "content_index": 0}
        await conn.send({"type": "response.output_audio.delta", "delta": b64(pcm_tone(200)), **common})
        await conn.send({"type": "response.output_audio.done", **common})
        async with asyncio.timeout(5):
            while len(truncates) < 4:  # noqa: ASYNC110 (the script fills the list)
                await asyncio.sleep(0.01)
    finally:
        await session.aclose()
    got = [(t.item_id, t.audio_end_ms) for t in truncates]
    assert got == [("a1", 250), ("a2", 99), ("a1", 0), ("a3", 300)]
    assert all(t.content_index == 0 for t in truncates)
    assert server.conns[0].violations == []


async def test_401_is_a_typed_fatal_error_without_the_key(server_factory: Any) -> None:
    server = await server_factory(reject_status=401)
    session = make(server)
    with pytest.raises(ProviderFatalError) as info:
        await session.start()
    assert info.value.exit_code == ExitCode.PROVIDER
    assert "401" in str(info.value) and KEY not in str(info.value)
    assert session.state is EngineState.CLOSED


async def test_quota_error_mid_session_ends_events_with_fatal_error(server_factory: Any) -> None:
    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.wait_audio_ms(100)
        await conn.send(
            {
                "type": "error",
                "error": {
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                    "message": "sk-test-0123...",
                },
            }
        )
        await conn.closed.wait()

    server = await server_factory([script])
    session = make(server)
    await session.start()
    session.send_audio(silence(200))
    with pytest.raises(ProviderFatalError) as info:
        async with asyncio.timeout(5):
            async for _ in session.events():
                pass
    assert "quota" in str(info.value) and "sk-test" not in str(info.value)
    await session.aclose()
    assert server.conns[0].closed.is_set() or server.conns[0].ws.closed


async def test_malformed_and_unknown_events_do_not_end_the_session(server_factory: Any) -> None:
    pcm = pcm_tone(100)

    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.wait_audio_ms(100)
        await conn.send_raw("{not json")
        await conn.send_raw('["a list"]')
        await conn.send_raw('{"type": "response.brand_new_event", "x": 1}')
        await conn.send_raw('{"type": "response.output_audio.delta", "delta": 5}')
        await conn.send_raw(b"\x00\x01binary")
        await conn.send_raw(
            '{"type":"response.output_audio.delta","event_id":"e","response_id":"r","item_id":"a",'
            '"output_index":0,"content_index":0,"delta":"!!not base64!!"}'
        )
        await one_turn(conn, 1, pcm)
        await conn.closed.wait()

    before = counter_value(ENGINE_UNKNOWN_EVENTS, engine="realtime", reason="malformed")
    unknown_before = counter_value(ENGINE_UNKNOWN_EVENTS, engine="realtime", reason="unknown")
    server = await server_factory([script])
    session = make(server)
    await session.start()
    out: list[EngineEvent] = []
    try:
        session.send_audio(silence(200))
        await asyncio.wait_for(collect(session, Usage, out), 5)
    finally:
        await session.aclose()
    assert b"".join(e.pcm for e in out if isinstance(e, TranslatedAudio)) == pcm
    assert counter_value(ENGINE_UNKNOWN_EVENTS, engine="realtime", reason="malformed") - before == 4
    assert counter_value(ENGINE_UNKNOWN_EVENTS, engine="realtime", reason="unknown") - unknown_before == 1
    assert session.reconnects == 0


async def test_reconnect_mid_utterance_replays_the_utterance_and_keeps_the_spec(server_factory: Any) -> None:
    lead, speech = silence(1000), pcm_tone(1500)

    async def dropping(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.wait_audio_ms(1200)
        # VAD heard speech start at 1000 ms (prefix padding 300 ms included), then the socket dies.
        await conn.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 700, "item_id": "u1"})
        await asyncio.sleep(0.05)
        await conn.ws.close()

    server = await server_factory([dropping, lambda c: c.session_updated()])
    session = make(server)
    session.update_spec(spec("de"))
    await session.start()
    try:
        session.send_audio(lead + speech[: len(speech) // 3])
        second = await server.wait_conns(2)
        session.send_audio(speech[len(speech) // 3 :] + silence(600))
        await second.wait_audio_ms(1000)
        await asyncio.sleep(0.3)
    finally:
        await session.aclose()
    assert session.reconnects == 1
    cfg = second.sent_of("session.update")[0].session
    assert INTO.findall(cfg.instructions)[0] == "German"
    sent = bytes(lead + speech + silence(600))
    replay = bytes(second.audio)
    # The new session hears the whole utterance, from at most the prefix padding before it.
    assert sent.endswith(replay)
    start = len(sent) - len(replay)
    assert start == 700 * 48  # where the server's VAD put the speech start (prefix padding included)
    assert server.conns[0].violations == [] and second.violations == []


async def test_recycle_before_the_cap_loses_no_audio(server_factory: Any) -> None:
    async def serve(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.closed.wait()

    server = await server_factory([serve])
    # Every sample counts here, so the lane must not rest through this silence.
    session = make(server, settings={"session_max_seconds": 0.6, "silence_gate": False})
    await session.start()
    sent = bytearray()
    try:
        for _ in range(60):
            chunk = silence(40)
            sent += chunk
            session.send_audio(chunk)
            await asyncio.sleep(0.02)
        await server.wait_conns(2)
        await asyncio.wait_for(server.conns[0].closed.wait(), 5)
    finally:
        await session.aclose()
    assert session.recycles >= 1 and session.reconnects == 0
    received = b"".join(bytes(c.audio) for c in server.conns)
    # Every sample went to exactly one session, in order, nothing dropped or doubled at the switch.
    assert sent.startswith(received) and len(sent) - len(received) < 100 * 48
    assert all(c.violations == [] for c in server.conns)


async def test_context_is_bounded_by_deleting_old_items(server_factory: Any) -> None:
    turns = 10

    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.wait_audio_ms(100)
        for n in range(1, turns + 1):
            await one_turn(conn, n, pcm_tone(100))
        await conn.closed.wait()

    server = await server_factory([script])
    session = make(server, context_items=4)
    await session.start()
    out: list[EngineEvent] = []
    try:
        session.send_audio(silence(200))
        for _ in range(turns):
            await asyncio.wait_for(collect(session, Usage, out), 5)
        await asyncio.sleep(0.2)
    finally:
        await session.aclose()
    deleted = [e.item_id for e in server.conns[0].sent_of("conversation.item.delete")]
    expected = [x for n in range(1, turns - 1) for x in (f"u{n}", f"a{n}")]
    assert deleted == expected  # the last two turns (4 items) are kept
    assert server.conns[0].violations == []


async def test_the_realtime_session_sends_the_glossary_to_the_server(
    server_factory: Any, tmp_path: Path
) -> None:
    path = tmp_path / "glossary.toml"
    path.write_text('keep = ["Kubernetes"]\n[translate.es]\n"invoice" = "factura"\n', encoding="utf-8")
    server = await server_factory()
    session = make(server, settings={"glossary": path})
    await session.start()
    conn = await server.wait_conns(1)
    try:
        instructions = conn.sent_of("session.update")[0].session.instructions
        assert '"invoice" -> "factura"' in instructions and '"Kubernetes"' in instructions
    finally:
        await session.aclose()
    assert conn.violations == []
