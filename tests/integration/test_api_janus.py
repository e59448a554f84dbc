"""The embeddable API end to end, every part real: an `Interpreter` run inside this test's own event loop
(through the public `translator_bot` names only) joins a Janus room in the private network namespace and
talks to the package's fake realtime server; aiortc participants speak recorded fixtures and record the
interpreter feed meant for them, as in test_interpreter_e2e.py (which runs the same meeting as
`translator-bot join`).

The bot's side of these tests uses nothing but what `translator_bot` exports; the room, the people and
the model server around it are the testbed's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from translator_bot import (
    Caption,
    Ended,
    EndReason,
    Event,
    ExitCode,
    HealthChanged,
    Interpreter,
    LanesChanged,
    RoomError,
    Settings,
    TranscriptEntry,
)
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fixtures import utterance
from translator_bot.room import videoroom
from translator_bot.room.janus import JanusSession
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.participant import Listening, SimParticipant
from translator_bot.testbed.proxy import TcpProxy

pytestmark = [pytest.mark.janus, pytest.mark.timeout(240)]

FAKE_KEY = "sk-local-fake-key-0000"
SETTLE_S = 6.0  # turn detection + the translation streamed in real time + playout, with room to spare


def bot_settings(janus: JanusServer, tmp_path: Path, **more: object) -> Settings:
    """What an embedding program would build: the room server, the model server, where transcripts go."""
    options: dict[str, object] = {
        "engine": "translate",
        "openai_api_key": SecretStr(FAKE_KEY),
        "janus_url": janus.url,
        "janus_admin_key": SecretStr(janus.admin_key),
        "transcript_dir": tmp_path / "transcripts",
        "metrics_port": 0,
    }
    options.update(more)
    return Settings(**options)  # type: ignore[arg-type]


async def wait_until(predicate: Callable[[], object], seconds: float, what: str) -> None:
    try:
        async with asyncio.timeout(seconds):
            while not predicate():  # noqa: ASYNC110 - polls state the events and the room fill in
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {seconds:.0f} s: {what}") from None


async def quiet(*people: SimParticipant) -> None:
    """Until everyone has said what they were told to, and the translation has had time to arrive."""
    await wait_until(
        lambda: not any(p.track is not None and p.track.busy for p in people), 30, "the speakers done"
    )
    await asyncio.sleep(SETTLE_S)


def interpreter_publishers(sim: SimParticipant) -> list[videoroom.PublisherInfo]:
    return [pub for pub in sim.publishers.values() if sim.is_my_interpreter(pub)]


async def test_an_embedded_interpreter_interprets_a_janus_meeting_until_stopped(
    janus: JanusServer, tmp_path: Path
) -> None:
    fake = FakeRealtimeServer()
    await fake.start()
    alice = SimParticipant(janus.url, janus.room, "Alice", "en")
    beatriz = SimParticipant(janus.url, janus.room, "Beatriz", "es")
    captions: list[Caption] = []
    entries: list[TranscriptEntry] = []
    streamed: list[Event] = []
    listening: dict[str, Listening] = {}
    ids: dict[str, str] = {}
    try:
        settings = bot_settings(janus, tmp_path, openai_base_url=fake.base_url)
        async with Interpreter(settings, janus.room) as bot:
            bot.on(Caption, captions.append)
            bot.on(TranscriptEntry, entries.append)

            async def read_events() -> None:
                async for event in bot.events():
                    streamed.append(event)

            reader = asyncio.create_task(read_events())
            ids = {sim.name: str(await sim.join()) for sim in (alice, beatriz)}
            for sim in (alice, beatriz):
                listening[sim.name] = await sim.subscribe_interpreter(timeout_s=20)
                await (await listening[sim.name].wait_track(20)).wait_first_frame(20)
            # Speech before the bot hears someone is lost, not late (the media path can take a DTLS
            # retransmit to come up): wait until its health says it hears both.
            await wait_until(
                lambda: all(
                    bot.health().details.get("frames_heard", {}).get(str(sim.id)) for sim in (alice, beatriz)
                ),
                20,
                "the bot hearing both participants",
            )
            assert bot.running and bot.health().status == "ok", bot.health().details
            lanes = {(lane.speaker_name, lane.target_language) for lane in bot.lanes}
            assert lanes == {("Alice", "es"), ("Beatriz", "en")}, bot.lanes

            alice.say("u1-en")
            await quiet(alice, beatriz)
            beatriz.say("u3-es")
            await quiet(alice, beatriz)

            stopped = time.monotonic()
            bot.stop()
            result = await bot.wait()
            took = time.monotonic() - stopped
            await asyncio.wait_for(reader, 5)
        # Out of the room: the participants see its feeds go.
        await wait_until(
            lambda: not interpreter_publishers(alice) and not interpreter_publishers(beatriz),
            10,
            "the interpreter's feeds unpublished",
        )
    finally:
        for sim in (alice, beatriz):
            with contextlib.suppress(Exception):
                await sim.close()
        await fake.stop()

    # stop() is a clean leave: the result join exits 0 with, in well under the 5 s SIGTERM budget.
    assert result.reason is EndReason.STOPPED and result.ok, result
    assert result.exit_code is ExitCode.OK and bot.result == result
    assert took < 5.0, f"leaving took {took:.1f} s"

    # Each listener heard the other person, in their own language.
    heard_by_alice = [h.utterance_id for h in heard_utterances(listening["Alice"].recording)]
    heard_by_beatriz = [h.utterance_id for h in heard_utterances(listening["Beatriz"].recording)]
    assert heard_by_alice == ["u3-en"], (heard_by_alice, heard_by_beatriz)
    assert heard_by_beatriz == ["u1-es"], (heard_by_alice, heard_by_beatriz)

    # Captions reached the program as they reached the listeners' data channels.
    final = {(c.speaker_name, c.target_language, c.translation.strip()) for c in captions if c.final}
    assert ("Alice", "es", utterance("u1-es").text) in final, final
    assert ("Beatriz", "en", utterance("u3-en").text) in final, final
    sent_to_beatriz = [json.loads(text) for _, text in listening["Beatriz"].messages]
    assert [m["translation"] for m in sent_to_beatriz if m.get("final")] == [
        c.translation for c in captions if c.final and c.listener_ids == (ids["Beatriz"],)
    ]
    assert all(c.speaker_id == ids["Alice"] for c in captions if c.listener_ids == (ids["Beatriz"],))
    assert {e.speaker_name for e in entries} == {"Alice", "Beatriz"}
    assert {e.original.strip() for e in entries} >= {utterance("u1-en").text, utterance("u3-es").text}

    # The iterator saw it all, in order, and ended with the result.
    assert [e for e in streamed if isinstance(e, Caption)] == captions
    assert isinstance(streamed[-1], Ended) and streamed[-1].result == result
    lane_events = [e for e in streamed if isinstance(e, LanesChanged)]
    assert any(len(e.lanes) == 2 and len(e.participants) == 2 for e in lane_events), lane_events
    health_events = [e.health.status for e in streamed if isinstance(e, HealthChanged)]
    assert "ok" in health_events, health_events

    # The transcript was written, as join writes it.
    assert len(list((tmp_path / "transcripts").glob("*.jsonl"))) == 1
    assert len(list((tmp_path / "transcripts").glob("*.txt"))) == 1
    assert fake.state.all_violations() == []


async def _destroy_room(janus: JanusServer, room: int) -> None:
    session = await JanusSession.connect(janus.url)
    try:
        handle = await session.attach(videoroom.PLUGIN)
        await handle.message({"request": "destroy", "room": room})
    finally:
        await session.destroy()


async def test_a_destroyed_room_ends_the_meeting_with_exit_code_0(janus: JanusServer, tmp_path: Path) -> None:
    alice = SimParticipant(janus.url, 7101, "Alice", "en", publish=False)
    ended: list[Ended] = []
    try:
        settings = bot_settings(janus, tmp_path, engine="passthrough")
        async with Interpreter(settings, 7101, create_room=True) as bot:
            bot.on(Ended, ended.append)
            await alice.join()
            await wait_until(lambda: bot.health().details.get("participants"), 15, "Alice seen by the bot")
            await _destroy_room(janus, 7101)
            result = await asyncio.wait_for(bot.wait(), 15)
    finally:
        await alice.close()
    assert result.reason is EndReason.MEETING_ENDED and result.exit_code is ExitCode.OK, result
    assert ended == [Ended(result)]


async def test_a_room_server_that_stays_away_ends_with_the_room_exit_code(
    janus: JanusServer, tmp_path: Path
) -> None:
    """The bot's connection to Janus is cut and refused (a TCP proxy in between) for longer than the
    reconnect window: health says reconnecting first, then the meeting ends as join's exit 3."""
    statuses: list[str] = []
    async with TcpProxy("127.0.0.1", janus.port) as proxy:
        settings = bot_settings(
            janus, tmp_path, engine="passthrough", janus_url=proxy.url(), room_reconnect_seconds=3
        )
        async with Interpreter(settings, janus.room) as bot:
            bot.on(HealthChanged, lambda changed: statuses.append(changed.health.details.get("room", "")))
            proxy.refuse_for(120)
            proxy.cut()
            started = time.monotonic()
            result = await asyncio.wait_for(bot.wait(), 20)
            took = time.monotonic() - started
    assert result.reason is EndReason.ROOM_LOST and isinstance(result.error, RoomError), result
    assert result.exit_code is ExitCode.ROOM and int(result.exit_code) == 3
    assert "gave up after 3 s" in result.detail, result.detail
    assert 2.5 <= took < 8, took
    assert "reconnecting" in statuses, statuses
