"""Both engines against the protocol-faithful fake server, with the recorded fixtures.

The fake recognises which fixture utterance it heard and answers with that utterance's recorded
translation, so "the right translation comes back" is checked on the audio itself. Every client
event is validated by the fake against the SDK's strict unions; its violations must stay empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from translator_bot.engine.base import (
    EngineEvent,
    LaneSpec,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
    Usage,
)
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import RealtimeSession
from translator_bot.engine.supervisor import SupervisedSession
from translator_bot.engine.translate import TranslateSession
from translator_bot.errors import ProviderFatalError
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import read_pcm
from translator_bot.fixtures import utterance as fixture_utterance
from translator_bot.languages import parse_language
from translator_bot.metrics import ENGINE_UNKNOWN_EVENTS, counter_value
from translator_bot.settings import EngineName, Settings
from translator_bot.testbed.proxy import TcpProxy

KEY = "sk-test-fake-0123456789"


def utterance(uid: str) -> Any:
    return fixture_utterance(uid)


def pcm_of(uid: str) -> bytes:
    return read_pcm(utterance(uid)).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return bytes(ms * 48)


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtimeServer]:
    server = FakeRealtimeServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
    assert server.state.internal_errors == []


def make(
    fake: FakeRealtimeServer, engine: EngineName, target: str = "es", **settings: Any
) -> SupervisedSession[Any]:
    s = Settings(openai_api_key=SecretStr(KEY), openai_base_url=fake.base_url, engine=engine, **settings)
    spec = LaneSpec(f"ana->{target}", "Ana", parse_language("en"), "Bruno", parse_language(target))
    if engine == "translate":
        return TranslateSession(endpoint_for(s, "translate"), spec, EngineOptions.from_settings(s))
    return RealtimeSession(endpoint_for(s, "realtime"), spec, EngineOptions.from_settings(s))


async def feed_realtime_pace(session: SupervisedSession[Any], pcm: bytes, speed: float = 4.0) -> None:
    """Send audio in 20 ms frames, `speed` times faster than real time (as a lane would, accelerated)."""
    frame = 960
    for start in range(0, len(pcm), frame):
        session.send_audio(pcm[start : start + frame])
        await asyncio.sleep(0.02 / speed)


async def gather_until_done(session: SupervisedSession[Any], out: list[EngineEvent], items: int) -> None:
    """Events until `items` translations are complete (and, on `realtime`, their usage reported)."""
    done = 0
    want_usage = isinstance(session, RealtimeSession)
    async for ev in session.events():
        out.append(ev)
        if isinstance(ev, TranslationDone) and any(
            isinstance(e, TranslatedAudio) and e.item_id == ev.item_id for e in out
        ):
            done += 1
        if done >= items and (not want_usage or sum(isinstance(e, Usage) for e in out) >= items):
            return


async def speak_and_collect(
    session: SupervisedSession[Any], pcm: bytes, items: int, seconds: float = 30
) -> list[EngineEvent]:
    """Speak `pcm` into the session (accelerated real-time pace) and collect events until `items`
    translations are complete."""
    out: list[EngineEvent] = []
    feeder = asyncio.create_task(feed_realtime_pace(session, pcm))
    try:
        await asyncio.wait_for(gather_until_done(session, out, items), seconds)
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
    return out


def audio_of(out: list[EngineEvent]) -> bytes:
    return b"".join(e.pcm for e in out if isinstance(e, TranslatedAudio))


def assert_is_translation(received: bytes, uid: str) -> None:
    expected = pcm_of(uid)
    got = np.frombuffer(received, dtype="<i2")
    want = np.frombuffer(expected, dtype="<i2")
    # The fake streams exactly the recording; allow at most a trailing partial chunk of difference.
    assert abs(len(got) - len(want)) <= 24 * 200, (len(got), len(want))
    n = min(len(got), len(want))
    assert np.array_equal(got[:n], want[:n])


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_right_translation_comes_back(fake: FakeRealtimeServer, engine: EngineName) -> None:
    session = make(fake, engine)
    await session.start()
    try:
        out = await speak_and_collect(session, silence(300) + pcm_of("u2-en") + silence(4000), 1, 30)
    finally:
        await session.aclose()
    assert_is_translation(audio_of(out), "u2-es")
    text = "".join(e.text for e in out if isinstance(e, TranslationTranscript) and not e.final)
    assert text.strip() == utterance("u2-es").text
    record = fake.state.sessions[0]
    assert record.recognised == ["u2-en"] and record.target_language in ("es", "Spanish")
    assert fake.state.all_violations() == []
    if engine == "realtime":
        assert any(isinstance(e, Usage) and e.input_tokens > 0 for e in out)


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_reconnect_after_a_drop_mid_utterance(fake: FakeRealtimeServer, engine: EngineName) -> None:
    session = make(fake, engine)
    await session.start()
    lead = 400
    await fake.control({"action": "drop", "after_audio_ms": lead + 800})
    try:
        out = await speak_and_collect(session, silence(lead) + pcm_of("u1-en") + silence(4000), 1, 30)
    finally:
        await session.aclose()
    assert session.reconnects == 1
    assert len(fake.state.sessions) == 2
    assert fake.state.sessions[1].recognised == ["u1-en"]
    assert_is_translation(audio_of(out), "u1-es")
    assert fake.state.all_violations() == []


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_recycle_before_the_provider_cap(fake: FakeRealtimeServer, engine: EngineName) -> None:
    """The fake expires sessions after 8 s; ours recycles after 2 s at a quiet moment."""
    await fake.control({"action": "session_max_seconds", "value": 8})
    session = make(fake, engine, session_max_seconds=2.0)
    await session.start()
    out: list[EngineEvent] = []
    audio = silence(600) + pcm_of("u1-en") + silence(1500) + pcm_of("u3-en") + silence(4000)
    feeder = asyncio.create_task(feed_realtime_pace(session, audio, speed=2.0))
    try:
        await asyncio.wait_for(gather_until_done(session, out, 2), 40)
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await session.aclose()
    assert session.recycles >= 1 and session.reconnects == 0
    assert [r.close_reason for r in fake.state.sessions].count("session_expired") == 0
    heard = [uid for r in fake.state.sessions for uid in r.recognised]
    assert heard == ["u1-en", "u3-en"]
    items: dict[str, bytes] = {}
    for e in out:
        if isinstance(e, TranslatedAudio):
            items[e.item_id] = items.get(e.item_id, b"") + e.pcm
    assert len(items) == 2
    first, second = items.values()
    assert_is_translation(first, "u1-es")
    assert_is_translation(second, "u3-es")
    assert fake.state.all_violations() == []


async def test_realtime_truncate_against_the_fake(fake: FakeRealtimeServer) -> None:
    session = make(fake, "realtime")
    await session.start()
    out: list[EngineEvent] = []
    feeder = asyncio.create_task(feed_realtime_pace(session, silence(300) + pcm_of("u4-en") + silence(3000)))
    try:
        await asyncio.wait_for(gather_until_done(session, out, 1), 30)
        item = next(e.item_id for e in out if isinstance(e, TranslatedAudio))
        received = sum(len(e.pcm) // 2 for e in out if isinstance(e, TranslatedAudio))
        # A playout that reports more than the item had (the peers' wall-clock bug) ...
        session.report_cut_short(item, received + 24_000)
        # ... and a real cut at 1.0 s.
        session.report_cut_short(item, 24_000)
        async with asyncio.timeout(5):
            while not fake.state.sessions[0].truncates:  # noqa: ASYNC110 (the fake's state has no event)
                await asyncio.sleep(0.02)
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await session.aclose()
    (truncate,) = fake.state.sessions[0].truncates
    assert truncate.accepted and truncate.audio_end_ms == 1000
    assert truncate.item_audio_ms is not None and truncate.audio_end_ms <= truncate.item_audio_ms
    assert fake.state.sessions[0].errors_sent == []


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_rejected_key_is_fatal(fake: FakeRealtimeServer, engine: EngineName) -> None:
    await fake.control({"action": "reject_auth", "enabled": True})
    session = make(fake, engine)
    with pytest.raises(ProviderFatalError) as info:
        await session.start()
    assert "API key" in str(info.value) and KEY not in str(info.value)


async def test_no_quota_at_connect_is_fatal(fake: FakeRealtimeServer) -> None:
    await fake.control({"action": "quota_exceeded"})
    session = make(fake, "realtime")
    with pytest.raises(ProviderFatalError) as info:
        await session.start()
    assert "quota" in str(info.value)


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_no_quota_mid_session_is_fatal(fake: FakeRealtimeServer, engine: EngineName) -> None:
    session = make(fake, engine)
    await session.start()
    await fake.control({"action": "quota_exceeded"})
    with pytest.raises(ProviderFatalError):
        async with asyncio.timeout(5):
            async for _ in session.events():
                pass
    await session.aclose()


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_malformed_event_does_not_kill_the_session(
    fake: FakeRealtimeServer, engine: EngineName
) -> None:
    session = make(fake, engine)
    await session.start()

    def skipped() -> float:
        return sum(
            counter_value(ENGINE_UNKNOWN_EVENTS, engine=engine, reason=r) for r in ("malformed", "unknown")
        )

    before = skipped()
    await fake.control({"action": "malformed"})
    try:
        out = await speak_and_collect(session, silence(300) + pcm_of("u2-en") + silence(4000), 1, 30)
    finally:
        await session.aclose()
    assert skipped() > before
    assert session.reconnects == 0
    assert_is_translation(audio_of(out), "u2-es")


async def test_sentence_ending_during_the_previous_translation_is_still_translated() -> None:
    """interrupt_response is off so a speaker who talks on does not cancel the last translation; the
    server then makes no response for a turn that ends while one is running. Both must come back."""
    server = FakeRealtimeServer(options=FakeOptions(realtime_speed=1.0, heartbeat_ms=0))
    await server.start()
    session = make(server, "realtime")
    try:
        await session.start()
        speech = silence(300) + pcm_of("u1-en") + silence(700) + pcm_of("u3-en") + silence(3000)
        out = await speak_and_collect(session, speech, 2)
        items = list(dict.fromkeys(e.item_id for e in out if isinstance(e, TranslatedAudio)))
        assert len(items) == 2
        for item, uid in zip(items, ["u1-es", "u3-es"], strict=True):
            assert_is_translation(
                b"".join(e.pcm for e in out if isinstance(e, TranslatedAudio) and e.item_id == item), uid
            )
        (record,) = server.state.sessions
        assert record.recognised == ["u1-en", "u3-en"]
        assert record.contract_violations == []
    finally:
        await session.aclose()
        await server.stop()
    assert server.state.internal_errors == []


async def until_items_done(session: SupervisedSession[Any], out: list[EngineEvent], items: int) -> None:
    """Events until `items` translations that carried audio are ended (usage not awaited: a
    translation cut by a drop has none)."""
    done = 0
    async for ev in session.events():
        out.append(ev)
        if isinstance(ev, TranslationDone) and any(
            isinstance(e, TranslatedAudio) and e.item_id == ev.item_id for e in out
        ):
            done += 1
            if done >= items:
                return


def audio_by_item(out: list[EngineEvent]) -> dict[str, bytes]:
    items: dict[str, bytes] = {}
    for e in out:
        if isinstance(e, TranslatedAudio):
            items[e.item_id] = items.get(e.item_id, b"") + e.pcm
    return items


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_drop_during_a_translation_ends_it_and_repeats_nothing(
    fake: FakeRealtimeServer, engine: EngineName
) -> None:
    """The socket goes 600 ms into the translation of the first sentence. What arrived of it is ended
    (a playout queue never waits on it), it is not translated a second time after the reconnect (the
    listener would hear its first words twice), and the next two sentences come back whole."""
    session = make(fake, engine)
    await session.start()
    await fake.control({"action": "drop", "after_output_ms": 600})
    speech = (
        silence(300)
        + pcm_of("u1-en")
        + silence(5000)
        + pcm_of("u2-en")
        + silence(7000)  # the translate endpoint's answers stream at real time: keep them apart
        + pcm_of("u3-en")
        + silence(4000)
    )
    out: list[EngineEvent] = []
    feeder = asyncio.create_task(feed_realtime_pace(session, speech, speed=2.0))
    try:
        await asyncio.wait_for(until_items_done(session, out, 3), 60)
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await session.aclose()
    assert (
        session.reconnects == 1 and fake.state.sessions[0].close_reason == "fault: drop during a translation"
    )
    items = audio_by_item(out)
    ended = [e.item_id for e in out if isinstance(e, TranslationDone)]
    assert list(items) == ended[:3], (list(items), ended)  # every item that got audio was ended, in order
    assert [r.recognised for r in fake.state.sessions] == [["u1-en"], ["u2-en", "u3-en"]]
    assert len(items) == 3
    cut, second, third = items.values()
    want = pcm_of("u1-es")
    assert 600 * 48 <= len(cut) < len(want) and want.startswith(cut)  # what arrived stays playable
    assert_is_translation(second, "u2-es")
    assert_is_translation(third, "u3-es")
    assert session.replayed_ms == 0
    assert fake.state.all_violations() == []


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_a_recycle_due_in_mid_sentence_waits_for_its_end(
    fake: FakeRealtimeServer, engine: EngineName
) -> None:
    """The session is due for renewal 0.8 s in, in the middle of the first sentence: the switch waits
    for the pause after it, so each sentence reaches one server session whole (a cut sentence would
    be two unrecognisable halves) and is translated once."""
    session = make(fake, engine, session_max_seconds=0.8)
    await session.start()
    speech = silence(300) + pcm_of("u1-en") + silence(1500) + pcm_of("u3-en") + silence(4000)
    out: list[EngineEvent] = []
    feeder = asyncio.create_task(feed_realtime_pace(session, speech, speed=2.0))
    try:
        await asyncio.wait_for(until_items_done(session, out, 2), 40)
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await session.aclose()
    assert session.recycles >= 1 and session.reconnects == 0
    assert [uid for r in fake.state.sessions for uid in r.recognised] == ["u1-en", "u3-en"]
    assert all(r.unrecognised == 0 for r in fake.state.sessions), [
        r.unrecognised for r in fake.state.sessions
    ]
    first, second = audio_by_item(out).values()
    assert_is_translation(first, "u1-es")
    assert_is_translation(second, "u3-es")
    assert fake.state.all_violations() == []


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_a_socket_cut_by_the_network_mid_translation(
    fake: FakeRealtimeServer, engine: EngineName
) -> None:
    """The same drop, made by a TCP proxy between the bot and the server that aborts the connection
    0.3 s after the first translated audio reached the bot (no close frame, as a network failure)."""
    proxy = await TcpProxy("127.0.0.1", fake.port).start()
    s = Settings(openai_api_key=SecretStr(KEY), openai_base_url=proxy.url("http", "/v1"), engine=engine)
    spec = LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es"))
    session: SupervisedSession[Any] = (
        TranslateSession(endpoint_for(s, "translate"), spec, EngineOptions.from_settings(s))
        if engine == "translate"
        else RealtimeSession(endpoint_for(s, "realtime"), spec, EngineOptions.from_settings(s))
    )
    speech = (
        silence(300)
        + pcm_of("u1-en")
        + silence(5000)
        + pcm_of("u2-en")
        + silence(7000)
        + pcm_of("u3-en")
        + silence(4000)
    )
    out: list[EngineEvent] = []
    cuts: list[int] = []
    loop = asyncio.get_running_loop()

    async def listen() -> None:
        done = 0
        async for ev in session.events():
            out.append(ev)
            if isinstance(ev, TranslatedAudio) and not cuts:
                cuts.append(0)
                loop.call_later(0.3, lambda: cuts.append(proxy.cut()))
            if isinstance(ev, TranslationDone) and any(
                isinstance(e, TranslatedAudio) and e.item_id == ev.item_id for e in out
            ):
                done += 1
                if done == 3:
                    return

    await session.start()
    feeder = asyncio.create_task(feed_realtime_pace(session, speech, speed=2.0))
    try:
        await asyncio.wait_for(listen(), 60)
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await session.aclose()
        await proxy.stop()
    assert cuts == [0, 1] and session.reconnects == 1 and proxy.accepted == 2
    items = audio_by_item(out)
    ended = [e.item_id for e in out if isinstance(e, TranslationDone)]
    assert list(items) == ended[:3], (list(items), ended)  # every item that got audio was ended, in order
    assert [r.recognised for r in fake.state.sessions] == [["u1-en"], ["u2-en", "u3-en"]]
    assert len(items) == 3
    cut, second, third = items.values()
    want = pcm_of("u1-es")
    assert len(cut) < len(want) and want.startswith(cut)
    assert_is_translation(second, "u2-es")
    assert_is_translation(third, "u3-es")
    assert fake.state.all_violations() == []
