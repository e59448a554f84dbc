"""`/v1/realtime/translations` of the fake server."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from translator_bot.fake.events import EventSink
from translator_bot.fake.pacing import translation_start
from translator_bot.fake.probe import ProbeClient, types
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import fixtures_dir, read_pcm, read_wav, utterance


def silence(ms: int) -> np.ndarray:
    return np.zeros(24 * ms, np.int16)


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    fake = FakeRealtimeServer(options=FakeOptions(translation_speed=50.0, heartbeat_ms=0))
    await fake.start()
    yield fake
    await fake.stop()
    assert fake.state.internal_errors == []


async def connect(
    server: FakeRealtimeServer, language: str | None = "es", transcription: bool = True
) -> ProbeClient:
    client = await ProbeClient.connect(
        server.websocket_base_url + "/realtime/translations?model=gpt-realtime-translate"
    )
    created = (await client.until("session.created"))[-1]
    assert created.session.type == "translation"
    audio: dict[str, object] = {"output": {"language": language}}
    if transcription:
        audio["input"] = {"transcription": {"model": "gpt-4o-transcribe"}}
    await client.send({"type": "session.update", "session": {"audio": audio}})
    await client.until("session.updated")
    return client


def joined(events, kind: str) -> str:
    return "".join(e.delta for e in events if e.type == kind)


def audio(events) -> bytes:
    return b"".join(base64.b64decode(e.delta) for e in events if e.type == "session.output_audio.delta")


async def test_translates_an_utterance_into_the_session_language_and_closes_cleanly(server):
    async with await connect(server, "es-MX") as client:
        await client.append(
            np.concatenate([silence(400), read_pcm(utterance("u1-en")), silence(1000)]), chunk_ms=200
        )
        await client.send({"type": "session.close"})
        events = await client.until("session.closed")
        assert await client.close_code() == 1000
    assert audio(events) == read_pcm(utterance("u1-es")).tobytes()
    assert joined(events, "session.input_transcript.delta") == utterance("u1-en").text
    assert joined(events, "session.output_transcript.delta") == utterance("u1-es").text
    deltas = [e for e in events if e.type == "session.output_audio.delta"]
    assert all(e.sample_rate == 24_000 and e.channels == 1 and e.format == "pcm16" for e in deltas)
    assert max(len(base64.b64decode(e.delta)) for e in deltas) == 200 * 48
    record = server.state.sessions[0]
    assert (record.endpoint, record.target_language, record.recognised) == ("translations", "es", ["u1-en"])
    assert record.close_reason == "session.close" and record.contract_violations == []


async def test_close_flushes_an_utterance_still_in_progress(server):
    async with await connect(server, "de", transcription=False) as client:
        await client.append(read_pcm(utterance("u2-es")))  # no trailing silence: VAD still open
        await client.send({"type": "session.close"})
        events = await client.until("session.closed")
    assert audio(events) == read_pcm(utterance("u2-de")).tobytes()
    assert "session.input_transcript.delta" not in types(events)  # transcription is off


async def test_speech_in_the_target_language_and_wrong_layout_get_no_audio(server):
    async with await connect(server, "en") as client:
        await client.append(np.concatenate([read_pcm(utterance("u3-en")), silence(800)]))
        stereo, _ = read_wav(fixtures_dir() / "u1-en-48k-stereo.wav")
        await client.append(np.concatenate([stereo.reshape(-1), silence(800)]))  # interleaved stereo as mono
        await client.send({"type": "session.close"})
        events = await client.until("session.closed")
    assert audio(events) == b""
    heard = joined(events, "session.input_transcript.delta")
    assert heard.startswith(utterance("u3-en").text + " [unrecognised speech]")  # one running transcript
    record = server.state.sessions[0]
    # At a quarter speed the pauses between words are long enough to split the turn.
    assert (record.recognised, record.same_language) == (["u3-en"], 1) and record.unrecognised >= 1


async def test_heartbeats_are_all_zero_audio_while_idle():
    fake = FakeRealtimeServer(options=FakeOptions(heartbeat_ms=30))
    await fake.start()
    try:
        async with await connect(fake, "de") as client:
            beats = [e for e in [await client.recv() for _ in range(3)]]
            assert types(beats) == ["session.output_audio.delta"] * 3
            assert audio(beats) == bytes(3 * 200 * 48)
        assert fake.state.sessions[0].heartbeats_sent >= 3
    finally:
        await fake.stop()


async def test_invalid_events_and_missing_language(server):
    client = await ProbeClient.connect(
        server.websocket_base_url + "/realtime/translations?model=gpt-realtime-translate", validate_sent=False
    )
    async with client:
        await client.until("session.created")
        await client.send({"type": "input_audio_buffer.append", "audio": "", "event_id": "evt_ga"})
        error = (await client.until("error"))[-1].error
        assert (error.code, error.event_id) == ("invalid_value", "evt_ga")
        await client.append(np.concatenate([read_pcm(utterance("u4-de")), silence(800)]))
        assert (await client.until("error"))[-1].error.code == "no_target_language"
    assert [v.event_type for v in server.state.sessions[0].contract_violations] == [
        "input_audio_buffer.append"
    ]


MONOLOGUE = ["u1-en", "u2-en", "u3-en", "u4-en"]
PAUSES_MS = [350, 400, 300]  # between sentences: shorter than the 500 ms that ends a turn


def monologue_pcm(ids: list[str], pauses_ms: list[int]) -> list[np.ndarray]:
    """The sentences with their pause before each (none before the first), as separate pieces."""
    pieces = [read_pcm(utterance(ids[0]))]
    for uid, pause in zip(ids[1:], pauses_ms, strict=True):
        pieces.append(np.concatenate([silence(pause), read_pcm(utterance(uid))]))
    return pieces


async def test_a_monologue_is_interpreted_sentence_by_sentence_while_the_speaker_goes_on(server):
    pieces = monologue_pcm(MONOLOGUE, PAUSES_MS)
    async with await connect(server, "es") as client:
        # The first sentence, its pause and the first half-second of the next: the speaker is still
        # talking, and the first sentence's translation must already be on its way.
        await client.append(np.concatenate([pieces[0], pieces[1][: 24 * (PAUSES_MS[0] + 500)]]))
        early: list[object] = []
        async with asyncio.timeout(5):
            while not audio(early):
                early.append(await client.recv())
        await client.append(pieces[1][24 * (PAUSES_MS[0] + 500) :])
        for piece in pieces[2:]:
            await client.append(piece)
        await client.send({"type": "session.close"})
        events = early + await client.until("session.closed")
    translations = [utterance(uid.replace("-en", "-es")) for uid in MONOLOGUE]
    # One after another, whole, never interleaved: the output is exactly the four recordings in order.
    assert audio(events) == b"".join(read_pcm(u).tobytes() for u in translations)
    assert joined(events, "session.output_transcript.delta") == " ".join(u.text for u in translations)
    assert joined(events, "session.input_transcript.delta") == " ".join(
        utterance(uid).text for uid in MONOLOGUE
    )
    assert server.state.sessions[0].recognised == MONOLOGUE
    assert server.state.sessions[0].unrecognised == 0


async def test_translated_audio_keeps_pace_with_real_time_even_when_sending_takes_time(monkeypatch):
    """The real output keeps up with the input it consumes; time spent sending must not add up."""
    speed, send_s = 5.0, 0.015  # a 200 ms chunk every 40 ms; each send takes 15 ms of it
    send_raw = EventSink.send_raw

    async def slow_send_raw(self: EventSink, raw: str) -> bool:
        if '"session.output_audio.delta"' in raw[:60]:
            await asyncio.sleep(send_s)
        return await send_raw(self, raw)

    monkeypatch.setattr(EventSink, "send_raw", slow_send_raw)
    fake = FakeRealtimeServer(options=FakeOptions(translation_speed=speed, heartbeat_ms=0))
    await fake.start()
    try:
        async with await connect(fake, "en", transcription=False) as client:
            await client.append(np.concatenate([read_pcm(utterance("u4-es")), silence(600)]))
            arrivals: list[float] = []
            translated = len(read_pcm(utterance("u4-en"))) * 2
            received = 0
            while received < translated:
                event = await client.recv()
                if event.type == "session.output_audio.delta":
                    arrivals.append(time.monotonic())
                    received += len(base64.b64decode(event.delta))
    finally:
        await fake.stop()
    due_s = (len(arrivals) - 1) * 0.2 / speed
    late_s = arrivals[-1] - arrivals[0] - due_s
    print(f"\nlast chunk {late_s * 1000:.0f} ms behind its due time ({len(arrivals)} chunks)")
    assert late_s < send_s * 4, late_s  # sleeping a chunk's length after each send: 13 x 15 ms behind


def test_translations_longer_than_their_originals_do_not_push_later_sentences_back() -> None:
    """English sentences 2.1-2.6 s long, 5 s apart, whose Spanish translations are 2.3-3.5 s: each
    translation starts as soon as its sentence is understood, however long the previous one was."""
    sources = [2.63, 2.68, 2.12, 2.68] * 3  # voiced length of each original
    translations = [2.96, 2.95, 2.25, 3.48] * 3
    understood_after, pause = 0.3, 5.0
    spoken_from, previous_end = 0.0, None
    lags = []
    for source, translation in zip(sources, translations, strict=True):
        ended = spoken_from + source
        ready = ended + understood_after
        start = translation_start(ready, previous_end, pause, 0.3)
        lags.append(start - ended)
        previous_end = start + translation
        spoken_from = ended + pause
    assert lags == pytest.approx([understood_after] * len(sources))


def test_translations_keep_a_sentence_break_and_the_speakers_shorter_pause() -> None:
    # Behind (the previous translation ends after this one is ready): a 300 ms break at most.
    assert translation_start(10.0, 10.5, 0.45, 0.3) == pytest.approx(10.8)
    # A shorter pause of the speaker is kept as it was.
    assert translation_start(10.0, 10.5, 0.2, 0.3) == pytest.approx(10.7)
    # Not behind: at once.
    assert translation_start(10.0, 8.0, 0.45, 0.3) == 10.0
    assert translation_start(10.0, None, 0.45, 0.3) == 10.0
