"""The embeddable API through what `translator_bot` exports, and nothing else: an Interpreter driven
by an in-memory RoomPort (tests/unit/memory_room.py), with the passthrough engine (each utterance
comes back as itself) or the package's fake realtime server."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

import translator_bot
from tests.unit.memory_room import MemoryRoom, SpeakerTrack, person
from translator_bot import (
    Caption,
    Ended,
    EndReason,
    Event,
    ExitCode,
    HealthChanged,
    Interpreter,
    LanesChanged,
    MeetingEnded,
    PeerAudio,
    PeerAudioGone,
    RoomClosed,
    Settings,
    TranscriptEntry,
)
from translator_bot.fake.server import FakeRealtimeServer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        engine="passthrough", playout_cushion_ms=60, metrics_port=0, transcript_dir=tmp_path / "transcripts"
    )


def interpreter_tasks() -> set[str]:
    """Tasks the interpreter and its meeting may start, still running."""
    prefixes = ("interpreter", "meeting", "lane ", "inbound ")
    return {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(prefixes)}


async def until(predicate, seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - polls what the interpreter's events filled in
            await asyncio.sleep(0.02)


async def test_captions_transcript_and_state_reach_handlers_and_the_iterator(settings, tmp_path):
    room = MemoryRoom(person("a", "Alice", "en"), person("b", "Beatriz", "es"))
    captions: list[Caption] = []
    entries: list[TranscriptEntry] = []
    streamed: list[Event] = []
    everything: list[Event] = []

    async def keep_entry(entry: TranscriptEntry) -> None:  # a coroutine handler runs in its own task
        entries.append(entry)

    async with Interpreter(settings, "api-1", room=room) as bot:
        bot.on(Caption, captions.append)
        bot.on(TranscriptEntry, keep_entry)
        bot.on(Event, everything.append)  # the union: every kind of event

        async def read_all() -> None:
            async for event in bot.events():
                streamed.append(event)

        reader = asyncio.create_task(read_all())
        await until(lambda: len(bot.lanes) == 2)
        await room.queue.put(PeerAudio("a", SpeakerTrack("u1-en")))
        await until(lambda: any(c.final for c in captions))
        await room.queue.put(MeetingEnded("nobody left"))
        result = await bot.wait()
        await asyncio.wait_for(reader, 5)

    assert result.reason is EndReason.MEETING_ENDED and result.detail == "nobody left"
    assert result.ok and result.exit_code == ExitCode.OK and bot.result == result
    final = [c for c in captions if c.final]
    assert final[-1].speaker_name == "Alice" and final[-1].listener_ids == ("b",)
    assert final[-1].target_language == "es" and final[-1].translation
    # The caption handed to the program is the one Beatriz got on her feed's data channel.
    to_b = [json.loads(text) for feed in room.feeds if feed.for_id == "b" for text in feed.data]
    assert to_b[-1]["translation"] == final[-1].translation
    assert entries and entries[-1].speaker_name == "Alice" and entries[-1].listener_ids == ("b",)
    assert isinstance(streamed[-1], Ended) and streamed[-1].result == result
    lanes = [e for e in streamed if isinstance(e, LanesChanged)]
    assert {lane.lane for lane in lanes[-1].lanes} == {"a->es", "b->en"}
    assert lanes[-1].participants == ("a", "b")
    assert any(isinstance(e, HealthChanged) for e in streamed)
    assert [e for e in streamed if isinstance(e, Caption)] == captions
    assert [e for e in everything if isinstance(e, Caption)] == captions
    assert {type(e) for e in everything} >= {Caption, TranscriptEntry, LanesChanged, HealthChanged, Ended}
    assert everything[-1] == streamed[-1]
    # Left the meeting: every feed closed, nothing left running, the transcript written.
    assert room.feeds and all(feed.closed for feed in room.feeds)
    assert interpreter_tasks() == set()
    assert list((tmp_path / "transcripts").glob("meeting-api-1-*.txt"))


async def test_a_failing_handler_does_not_end_the_meeting(settings, caplog):
    room = MemoryRoom(person("a", "Alice", "en"), person("b", "Beatriz", "es"))
    captions: list[Caption] = []

    def broken(caption: Caption) -> None:
        raise RuntimeError("a bug in the program's caption handler")

    async def broken_too(caption: Caption) -> None:
        raise ValueError("a bug in the program's coroutine handler")

    async with Interpreter(settings, "api-2", room=room) as bot:
        bot.on(Caption, broken)
        bot.on(Caption, broken_too)
        bot.on(Caption, captions.append)
        await until(lambda: len(bot.lanes) == 2)
        await room.queue.put(PeerAudio("a", SpeakerTrack("u1-en")))
        await until(lambda: any(c.final for c in captions))
        assert bot.running and bot.health().status == "ok", bot.health().details
        # The second sentence is still interpreted: the failures ended nothing.
        before = len(captions)
        await room.queue.put(PeerAudioGone("a"))
        await room.queue.put(PeerAudio("a", SpeakerTrack("u2-en")))
        await until(lambda: any(c.final for c in captions[before:]))
        bot.stop()
        result = await bot.wait()
    assert result.reason is EndReason.STOPPED and result.exit_code == ExitCode.OK
    failures = [
        r for r in caplog.records if r.levelno == logging.ERROR and "the meeting goes on" in r.message
    ]
    assert any("broken" in r.message for r in failures) and any("broken_too" in r.message for r in failures)


async def test_stop_mid_sentence_leaves_at_once(settings):
    room = MemoryRoom(person("a", "Alice", "en"), person("b", "Beatriz", "es"))
    loop = asyncio.get_running_loop()
    stopped_at: list[float] = []
    bot = Interpreter(settings, "api-3", room=room)

    @bot.on(Caption)
    def stop_on_first_words(caption: Caption) -> None:
        if not stopped_at:
            stopped_at.append(loop.time())
            bot.stop()  # from inside a handler, while the translation is still being spoken

    async with bot:
        await until(lambda: len(bot.lanes) == 2)
        await room.queue.put(PeerAudio("a", SpeakerTrack("u1-en", silence_ms=20_000)))
        result = await asyncio.wait_for(bot.wait(), 20)
    took = loop.time() - stopped_at[0]
    assert result.reason is EndReason.STOPPED and result.exit_code == ExitCode.OK
    assert took < 2.0, f"leaving took {took:.2f} s after stop()"
    assert all(feed.closed for feed in room.feeds)
    assert interpreter_tasks() == set()


async def test_leaving_the_block_without_waiting_stops_the_bot(settings):
    room = MemoryRoom(person("a", "Alice", "en"), person("b", "Beatriz", "es"))
    async with Interpreter(settings, "api-4", room=room) as bot:
        await until(lambda: len(bot.lanes) == 2)
    assert bot.result is not None and bot.result.reason is EndReason.STOPPED
    assert all(feed.closed for feed in room.feeds) and interpreter_tasks() == set()


async def test_a_lost_room_ends_with_the_room_exit_code(settings):
    room = MemoryRoom(person("a", "Alice", "en"), person("b", "Beatriz", "es"))
    async with Interpreter(settings, "api-5", room=room) as bot:
        await until(lambda: len(bot.lanes) == 2)
        await room.queue.put(RoomClosed("kicked by the moderator"))
        result = await bot.wait()
    assert result.reason is EndReason.ROOM_LOST and result.detail == "kicked by the moderator"
    assert (
        isinstance(result.error, translator_bot.RoomError)
        and result.exit_code is ExitCode.ROOM
        and int(result.exit_code) == 3
    )


async def test_a_refused_api_key_ends_with_the_provider_exit_code(tmp_path):
    fake = FakeRealtimeServer()
    await fake.start()
    fake.faults.reject_auth = True
    try:
        settings = Settings(
            engine="realtime",
            openai_api_key=SecretStr("sk-refused-by-the-fake-0000"),
            openai_base_url=fake.base_url,
            metrics_port=0,
            transcript_dir=tmp_path,
        )
        room = MemoryRoom(person("a", "Alice", "en"), person("b", "Beatriz", "es"))
        async with Interpreter(settings, "api-6", room=room) as bot:
            result = await asyncio.wait_for(bot.wait(), 30)
    finally:
        await fake.stop()
    assert (
        result.reason is EndReason.PROVIDER_REFUSED
        and result.exit_code is ExitCode.PROVIDER
        and int(result.exit_code) == 4
    )
    assert isinstance(result.error, translator_bot.ProviderFatalError)
    assert "sk-refused" not in result.detail
