"""Model provider outages, as a lane lives through them: a server that accepts and then closes at
once, a server that is gone and comes back on the same port, and one that stays gone too long."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.unit.scripted_ws import ScriptedConn, ScriptedServer, pcm_tone, silence
from tests.unit.test_engine_realtime import collect, make, one_turn
from translator_bot.engine.base import EngineEvent, EngineState, TranslatedAudio, Usage
from translator_bot.engine.intake import MAX_REPLAY_MS
from translator_bot.errors import ExitCode, ProviderUnavailableError
from translator_bot.interpreter.lane import Lane, spec_for
from translator_bot.interpreter.plan import LaneKey, LanePlan, Member
from translator_bot.interpreter.transcript import Transcript
from translator_bot.languages import parse_language
from translator_bot.metrics import ENGINE_AUDIO_DROPPED_SECONDS, ENGINE_TOKENS, counter_value


@pytest.fixture
async def servers() -> AsyncIterator[list[ScriptedServer]]:
    started: list[ScriptedServer] = []
    yield started
    for server in started:
        await server.stop()
    assert all(s.script_errors == [] for s in started)


async def serving(servers: list[ScriptedServer], *scripts: Any, port: int = 0) -> ScriptedServer:
    server = ScriptedServer(list(scripts) or None)
    await server.start(port)
    servers.append(server)
    return server


async def test_a_server_that_accepts_then_closes_is_retried_ever_more_slowly(
    servers: list[ScriptedServer],
) -> None:
    """Each drop used to start a fresh backoff: a reconnect (configuration and audio replay, paid for)
    every half second. One backoff per lane, kept across drops, spaces them 0.5, 1, 2, 4 s apart."""

    async def accept_then_close(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.ws.close()

    server = await serving(servers, accept_then_close)
    session = make(server)
    await session.start()
    started = time.monotonic()
    try:
        session.send_audio(silence(200))
        await asyncio.sleep(6.0)
        connections = len(server.conns)
    finally:
        await session.aclose()
    print(f"\n{connections} connections in 6 s to a server that accepts then closes")
    assert connections <= 5, connections
    outage = session.outage
    # The outage began with the first drop and was not restarted by each short-lived session.
    assert outage is not None and outage.since - started < 1.0 and outage.attempts >= 2
    assert "ended after" in outage.reason


async def test_provider_gone_and_back_on_the_same_port(servers: list[ScriptedServer]) -> None:
    """The lane stays, says it is degraded and why, and interprets again once the server is back."""
    server = await serving(servers)
    port = server.port
    session = make(server, settings={"provider_outage_seconds": 60})
    await session.start()
    out: list[EngineEvent] = []
    try:
        await server.stop()
        await asyncio.sleep(3.0)  # several failed attempts
        assert session.state is EngineState.DEGRADED
        assert session.outage is not None and "cannot connect" in session.outage.reason
        assert session.outage.attempts >= 2

        async def translate_one(conn: ScriptedConn) -> None:
            await conn.session_updated()
            await conn.wait_audio_ms(300)
            await one_turn(conn, 1, pcm_tone(300))
            await conn.closed.wait()

        back = await serving(servers, translate_one, port=port)
        session.send_audio(pcm_tone(300) + silence(300))
        await asyncio.wait_for(collect(session, Usage, out), 12)
        state: EngineState = session.state
        outage = session.outage
    finally:
        await session.aclose()
    assert len(back.conns) == 1
    assert any(isinstance(e, TranslatedAudio) for e in out)
    assert state is EngineState.CONNECTED and outage is None  # a translation proved it is back


async def test_an_outage_longer_than_the_limit_ends_with_exit_5(servers: list[ScriptedServer]) -> None:
    server = await serving(servers)
    session = make(server, settings={"provider_outage_seconds": 1.5})
    await session.start()
    await asyncio.sleep(2.0)  # served a while: the outage is counted from the loss, not from the start
    await server.stop()
    stopped = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailableError) as info:
            async with asyncio.timeout(10):
                async for _ in session.events():
                    pass
    finally:
        await session.aclose()
    waited = time.monotonic() - stopped
    assert info.value.exit_code == ExitCode.PROVIDER_UNAVAILABLE and int(info.value.exit_code) == 5
    assert "unavailable for" in str(info.value) and "TRANSLATOR_PROVIDER_OUTAGE_SECONDS" in str(info.value)
    assert 1.5 <= waited < 4.0, waited


class _NoRoute:
    def deliver_audio(self, key: LaneKey, item: str, pcm: bytes) -> None:
        pass

    def end_item(self, key: LaneKey, item: str) -> None:
        pass

    def caption(self, key: LaneKey, message: dict[str, object]) -> None:
        pass


async def test_tokens_are_counted_once(servers: list[ScriptedServer]) -> None:
    async def script(conn: ScriptedConn) -> None:
        await conn.session_updated()
        await conn.wait_audio_ms(300)
        await one_turn(conn, 1, pcm_tone(100), input_tokens=123)
        await conn.closed.wait()

    server = await serving(servers, script)
    alice = Member("a1", "Alice", parse_language("en"))
    bea = Member("b1", "Bea", parse_language("es"))
    plan = LanePlan(LaneKey("a1", "es"), alice, parse_language("es"), (bea,))
    session = make(server, lane=spec_for(plan))
    lane_id = str(plan.key)
    before = {k: counter_value(ENGINE_TOKENS, lane=lane_id, kind=k) for k in ("input", "output", "cached")}
    errors: list[Exception] = []
    lane = Lane(plan, session, _NoRoute(), Transcript("m"), on_fatal=errors.append)
    lane.start()
    try:
        lane.push_audio(pcm_tone(300) + silence(300))
        async with asyncio.timeout(5):
            while session.usage_total == Usage():  # noqa: ASYNC110 (the lane consumes the events)
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # the lane handles the usage event after the session counted it
    finally:
        await lane.aclose()
    counted = {k: counter_value(ENGINE_TOKENS, lane=lane_id, kind=k) - before[k] for k in before}
    assert counted == {"input": 123, "output": 20, "cached": 5}
    assert session.usage_total == Usage(123, 20, 5) and errors == []


async def test_what_is_sent_after_an_outage_is_bounded(servers: list[ScriptedServer]) -> None:
    """Every replayed or late second is billed again: after a long outage the new session gets the
    recent past (at most MAX_REPLAY_MS), not the whole backlog the lane kept."""
    server = await serving(servers)
    port = server.port
    session = make(server, settings={"provider_outage_seconds": 60})
    dropped_before = counter_value(ENGINE_AUDIO_DROPPED_SECONDS, engine="realtime")
    await session.start()
    try:
        await server.stop()
        async with asyncio.timeout(5):
            while session.state is not EngineState.DEGRADED:  # noqa: ASYNC110 (no event to wait on)
                await asyncio.sleep(0.05)
        for _ in range(18):  # 18 s of a meeting while the provider is away
            session.send_audio(silence(700) + pcm_tone(300))
        # The lane keeps no more than it could ever send again (memory: every lane holds this much),
        # and what it could not keep is counted as dropped, not skipped silently at the switch.
        assert session.kept_input_ms <= MAX_REPLAY_MS, session.kept_input_ms
        dropped = counter_value(ENGINE_AUDIO_DROPPED_SECONDS, engine="realtime") - dropped_before
        assert dropped == pytest.approx((18_000 - MAX_REPLAY_MS) / 1000, abs=0.05)
        back = await serving(servers, port=port)
        conn = await back.wait_conns(1, wait_s=15)
        await asyncio.sleep(1.0)
        sent_ms = conn.audio_ms
    finally:
        await session.aclose()
    assert MAX_REPLAY_MS - 200 <= sent_ms <= MAX_REPLAY_MS, sent_ms
