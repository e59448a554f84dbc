"""Handshake rules and injected faults of the fake server, as a client experiences them."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from translator_bot.engine.protocol import MalformedEventError, UnknownEventError, parse_server_event
from translator_bot.fake.probe import ProbeClient, types
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import read_pcm, utterance

SPANISH = "Translate into Spanish."


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    fake = FakeRealtimeServer(options=FakeOptions(realtime_speed=50.0, transcript_delay_ms=0))
    await fake.start()
    yield fake
    await fake.stop()
    assert fake.state.internal_errors == []


def ws_url(server: FakeRealtimeServer, path: str = "/realtime?model=gpt-realtime") -> str:
    return server.websocket_base_url + path


async def handshake_status(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(url, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            async with http.get(url.replace("ws://", "http://"), headers=headers) as response:
                return exc.status, await response.json()
        await ws.close()
        return 101, {}


async def test_auth_model_and_azure_path(server):
    bearer = {"Authorization": "Bearer sk-test"}
    assert (await handshake_status(ws_url(server), bearer))[0] == 101
    status, body = await handshake_status(ws_url(server), {})
    assert status == 401 and body["error"]["type"] == "invalid_request_error"
    status, body = await handshake_status(ws_url(server, "/realtime"), bearer)
    assert (status, body["error"]["param"]) == (400, "model")
    status, _ = await handshake_status(ws_url(server), {**bearer, "OpenAI-Beta": "realtime=v1"})
    assert status == 400
    azure = f"ws://127.0.0.1:{server.port}/openai/v1/realtime?model=my-deployment"
    assert (await handshake_status(azure, {"api-key": "azure-key"}))[0] == 101
    assert (await handshake_status(ws_url(server), {"api-key": "azure-key"}))[0] == 401  # OpenAI wants Bearer


async def test_reject_auth_through_the_http_control_api(server):
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.base_url.replace("/v1", "/_fake/control"), json={"action": "reject_auth", "enabled": True}
        ) as response:
            assert (await response.json())["ok"] is True
        async with http.post(
            server.base_url.replace("/v1", "/_fake/control"), json={"action": "nope"}
        ) as response:
            assert response.status == 400
    status, body = await handshake_status(ws_url(server), {"Authorization": "Bearer sk-secret-value"})
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")
    assert "secret" not in body["error"]["message"]
    await server.control({"action": "reject_auth", "enabled": False})
    assert (await handshake_status(ws_url(server), {"Authorization": "Bearer sk-test"}))[0] == 101
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.base_url.replace("/v1", "/_fake/state")) as response,
    ):
        state = await response.json()
    assert state["sessions_opened"] == 1 and state["sessions"][0]["endpoint"] == "realtime"


async def test_drop_after_audio_loses_the_connection_without_a_close_frame(server):
    async with await ProbeClient.connect(ws_url(server)) as client:
        await client.until("conversation.created")
        await server.control({"action": "drop", "after_audio_ms": 800})
        await client.append(np.zeros(24 * 2000, np.int16))
        assert await client.close_code() == 1006
    record = server.state.sessions[0]
    assert record.close_reason == "fault: drop after audio" and 800 <= record.audio_ms_received < 1000


async def test_drop_next_session_right_after_connect(server):
    await server.control({"action": "drop", "scope": "next"})
    async with await ProbeClient.connect(ws_url(server)) as client:
        assert await client.close_code() == 1006
    async with await ProbeClient.connect(ws_url(server)) as client:  # the fault fired once
        await client.until("conversation.created")


async def test_malformed_event_fails_client_validation(server):
    async with await ProbeClient.connect(ws_url(server)) as client:
        await client.until("conversation.created")
        for kind, error in (("bad_fields", MalformedEventError), ("unknown_type", UnknownEventError)):
            await server.control({"action": "malformed", "kind": kind})
            message = await client.ws.receive(timeout=5)
            with pytest.raises(error):
                parse_server_event(message.data)
        await client.send({"type": "input_audio_buffer.clear"})  # the session carries on
        assert (await client.recv()).type == "input_audio_buffer.cleared"


async def test_session_expires_with_the_real_error_and_close_1001(server):
    async with await ProbeClient.connect(ws_url(server)) as client:
        await client.until("conversation.created")
        await server.control({"action": "session_max_seconds", "value": 0.2})
        error = (await client.until("error"))[-1].error
        assert (error.type, error.code) == ("invalid_request_error", "session_expired")
        assert error.message.startswith("Your session hit the maximum duration of")
        assert await client.close_code() == 1001
    assert server.state.sessions[0].close_reason == "session_expired"


async def test_first_audio_delay_holds_back_the_audio(server):
    await server.control({"action": "first_audio_delay_ms", "value": 300})
    async with await ProbeClient.connect(ws_url(server)) as client:
        await client.send(
            {"type": "session.update", "session": {"type": "realtime", "instructions": SPANISH}}
        )
        pcm = np.concatenate([read_pcm(utterance("u3-en")), np.zeros(24_000, np.int16)])
        await client.append(pcm)
        await client.until("response.content_part.added")
        started = time.monotonic()
        events = await client.until("response.output_audio.delta")
        waited = time.monotonic() - started
        assert types(events)[-1] == "response.output_audio.delta"
    print(f"\nfirst audio after {waited * 1000:.0f} ms (configured 300 ms)")


async def test_quota_exceeded_errors_live_sessions_then_refuses_new_ones(server):
    async with await ProbeClient.connect(ws_url(server)) as client:
        await client.until("conversation.created")
        await server.control({"action": "quota_exceeded"})
        error = (await client.until("error"))[-1].error
        assert (error.type, error.code) == ("insufficient_quota", "insufficient_quota")
        await client.send(
            {"type": "session.update", "session": {"type": "realtime", "instructions": SPANISH}}
        )
        await client.append(np.concatenate([read_pcm(utterance("u1-en")), np.zeros(24_000, np.int16)]))
        done = (await client.until("response.done"))[-1].response
        assert (done.status, done.status_details.error.code) == ("failed", "insufficient_quota")
    status, body = await handshake_status(ws_url(server), {"Authorization": "Bearer sk-test"})
    assert (status, body["error"]["code"]) == (429, "insufficient_quota")


async def test_an_invalid_event_of_the_fake_itself_fails_loudly():
    from typing import cast

    from aiohttp import web

    from translator_bot.fake.events import EventSink, FakeProtocolBug
    from translator_bot.fake.state import FakeState, SessionRecord

    state = FakeState()
    record = SessionRecord(id="sess_x", endpoint="realtime", model="m", path="/v1/realtime")
    sink = EventSink(cast(web.WebSocketResponse, None), parse_server_event, record, state)
    with pytest.raises(FakeProtocolBug):
        await sink.send({"type": "response.output_audio.delta", "response_id": "r"})
    with pytest.raises(FakeProtocolBug):
        await sink.send({"type": "response.audio.delta", "delta": ""})  # a beta name on the GA socket
    assert len(state.internal_errors) == 2


async def audio_delta_arrivals(server: FakeRealtimeServer, uid: str) -> list[tuple[float, float]]:
    """(arrival time, audio seconds before it) of each audio delta of the response to `uid`."""
    async with await ProbeClient.connect(ws_url(server)) as client:
        await client.send(
            {"type": "session.update", "session": {"type": "realtime", "instructions": SPANISH}}
        )
        await client.append(np.concatenate([read_pcm(utterance(uid)), np.zeros(24_000, np.int16)]))
        arrivals: list[tuple[float, float]] = []
        media = 0.0
        while True:
            event = await client.recv()
            if event.type == "response.output_audio.delta":
                arrivals.append((time.monotonic(), media))
                media += len(base64.b64decode(event.delta)) / 48_000
            elif event.type == "response.done":
                return arrivals


async def test_stream_pace_streams_at_real_time_with_bounded_jitter_per_delta(server):
    await server.control({"action": "stream_pace", "real_time_factor": 1.0, "jitter_ms": 150, "seed": 3})
    arrivals = await audio_delta_arrivals(server, "u3-en")
    first = arrivals[0][0]
    # Against a schedule anchored at the first delta: never early by more than that delta's own
    # delay (<= 150 ms), never late by more than 150 ms plus scheduling slack.
    offsets = [(at - first) - media for at, media in arrivals]
    assert min(offsets) >= -0.155 and max(offsets) <= 0.15 + 0.05, offsets
    # The delays do not add up: the stream takes about its own length, not length + n * 75 ms.
    total = arrivals[-1][1] + 0.1
    assert arrivals[-1][0] - first == pytest.approx(total - 0.1, abs=0.2)
    # And it is jitter, not a constant: the offsets spread over most of the range.
    assert max(offsets) - min(offsets) > 0.08
    print(f"\n{len(arrivals)} deltas over {arrivals[-1][0] - first:.2f} s for {total:.2f} s of audio")


async def test_stream_pace_slower_than_real_time_and_back_to_fast(server):
    await server.control({"action": "stream_pace", "real_time_factor": 0.8, "jitter_ms": 0})
    arrivals = await audio_delta_arrivals(server, "u3-en")
    span = arrivals[-1][0] - arrivals[0][0]
    assert span == pytest.approx(arrivals[-1][1] / 0.8, abs=0.1)
    await server.control({"action": "stream_pace", "enabled": False})
    arrivals = await audio_delta_arrivals(server, "u3-en")
    assert arrivals[-1][0] - arrivals[0][0] < 0.3  # the fixture's 50x speed again


async def test_stream_pace_rejects_nonsense(server):
    for bad in ({"real_time_factor": 0}, {"jitter_ms": -1}):
        with pytest.raises(ValueError):
            await server.control({"action": "stream_pace", **bad})
    async with aiohttp.ClientSession() as http:
        url = server.base_url.replace("/v1", "/_fake/control")
        async with http.post(url, json={"action": "stream_pace", "real_time_factor": -2}) as response:
            assert response.status == 400


async def test_a_crashed_session_task_ends_the_session_and_is_recorded(monkeypatch):
    fake = FakeRealtimeServer(options=FakeOptions(realtime_speed=50.0, transcript_delay_ms=0))
    await fake.start()
    try:

        def broken_recogniser(pcm: np.ndarray) -> Any:
            raise RuntimeError("recogniser bug")

        monkeypatch.setattr(fake._ctx.catalog, "recognise", broken_recogniser)
        async with await ProbeClient.connect(ws_url(fake)) as client:
            await client.send(
                {"type": "session.update", "session": {"type": "realtime", "instructions": SPANISH}}
            )
            await client.append(np.concatenate([read_pcm(utterance("u1-en")), np.zeros(24_000, np.int16)]))
            assert await client.close_code() == 1011
        assert len(fake.state.internal_errors) == 1
        assert (
            "recogniser" in fake.state.internal_errors[0]
            and "recogniser bug" in fake.state.internal_errors[0]
        )
    finally:
        await fake.stop()
