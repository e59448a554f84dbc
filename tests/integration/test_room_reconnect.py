"""The bot's WebSocket to Janus is cut (Janus stays up), and how a meeting ends, with every part real.

A TCP proxy sits between the bot (`translator-bot join`, a child process) and Janus's WebSocket port;
participants talk to Janus directly, so only the bot's signalling drops. Media does not travel on
that socket. Janus keeps the bot's session for `reclaim_session_timeout` seconds (the bot claims it
back on a new socket) or, with its default of 0, destroys it at once (the bot joins again and
re-publishes its feeds). Either way the interpretation goes on with the same lanes and model sessions.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import StartJanus
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.room import videoroom
from translator_bot.room.janus import JanusSession
from translator_bot.room.session import FeedTrackArrived, FeedTrackGone, ParticipantLeft, RoomSession
from translator_bot.testbed.bot import BotProcess
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.participant import (
    Listening,
    ScheduleTrack,
    SimParticipant,
    best_envelope_match,
    fixture_speech,
)
from translator_bot.testbed.proxy import TcpProxy
from translator_bot.testbed.rig import InterpreterRig, free_port
from translator_bot.testbed.watch import RoomWatcher

pytestmark = [pytest.mark.janus, pytest.mark.timeout(180)]

SETTLE_S = 6.0
# Comfortably above the bot's keepalive interval: Janus counts the claim window from the session's
# last request, not from the moment its socket went.
RECLAIM_S = 40


async def settle(rig: InterpreterRig, extra: float = SETTLE_S) -> None:
    await rig.quiet()
    await asyncio.sleep(extra)


def heard(listenings: list[Listening]) -> list[str | None]:
    return [h.utterance_id for listening in listenings for h in heard_utterances(listening.recording)]


@pytest.mark.parametrize("reclaim", [RECLAIM_S, None], ids=["claim", "rejoin"])
async def test_interpretation_survives_the_janus_socket_being_cut(
    start_janus: StartJanus, tmp_path: Path, reclaim: int | None
) -> None:
    janus = await start_janus(reclaim_session_timeout=reclaim)
    proxy = await TcpProxy("127.0.0.1", janus.port).start()
    rig = InterpreterRig(
        janus,
        "translate",
        tmp_path / "transcripts",
        fake_options=FakeOptions(heartbeat_ms=1000),
        env={"TRANSLATOR_JANUS_URL": proxy.url()},
    )
    listenings: list[Listening] = []
    try:
        await rig.start([("Alice", "en"), ("Beatriz", "es")])
        assert rig.bot is not None and rig.fake is not None
        beatriz = rig.people["Beatriz"]
        assert beatriz.listening is not None
        listenings.append(beatriz.listening)
        feed_before = beatriz.listening.feed

        rig.say("Alice", "u1-en")
        await settle(rig)
        # The lanes open once the engine has loaded, which may be after the feeds flow: count the
        # model sessions after a sentence went through, when both lanes are surely open.
        sessions_before = rig.fake.state.opened
        assert sessions_before == 2, rig.fake.state.snapshot()

        assert proxy.cut() == 1, "the bot's only connection to Janus goes through the proxy"
        cut_at = time.monotonic()
        if reclaim:
            await rig.bot.wait_line(r"reclaimed the room server session", 20)
        else:
            await rig.bot.wait_line(r"rejoined meeting", 20)
            await rig.bot.wait_line(r"re-published .*Beatriz", 20)
            # Janus unpublished the old feed with the old session; the page (here: Beatriz) follows
            # the interpreter feed labelled for her, now a new publisher.
            pub = await beatriz.sim.wait_for_publisher(
                lambda p: beatriz.sim.is_my_interpreter(p) and p.id != feed_before, 20
            )
            again = await beatriz.sim.subscribe(pub.id)
            await (await again.wait_track(20)).wait_first_frame(20)
            listenings.append(again)
        await rig.wait_bot_hears_everyone(20)
        recovered_s = time.monotonic() - cut_at

        rig.say("Alice", "u3-en")
        await settle(rig)

        status, health = await rig.health()
        assert status == 200 and health["room"] == "joined" and len(health["lanes"]) == 2, health
        # The lanes and their model sessions were kept: no new session was opened for the recovery.
        assert rig.fake.state.opened == sessions_before, rig.fake.state.snapshot()
        assert len(re.findall(r"opening lane", rig.bot.text)) == 2, rig.bot.text
        if reclaim:
            assert "rejoined meeting" not in rig.bot.text
            assert beatriz.sim.is_my_interpreter(beatriz.sim.publishers[feed_before])
        assert rig.bot.proc.returncode is None
        assert await rig.stop_bot() == 0, rig.bot.text
    finally:
        await rig.aclose()
        await proxy.stop()

    ids = heard(listenings)
    print(f"room socket cut ({'claim' if reclaim else 'rejoin'}): interpretation back in {recovered_s:.2f} s")
    recovery = r"room server|rejoined|re-published|playout"
    print("\n".join(line for line in rig.bot.lines if re.search(recovery, line)))
    details = [heard_utterances(listening.recording) for listening in listenings]
    report = f"Beatriz heard {ids} {details} (recovered in {recovered_s:.1f} s)\n{rig.bot.text[-5000:]}"
    assert ids == ["u1-es", "u3-es"], report
    assert recovered_s < 10, report
    assert "Traceback" not in rig.bot.text, report


async def start_bot(janus: JanusServer, url: str, *args: str, **env: str) -> BotProcess:
    environ = janus.environ()
    environ.update(
        {
            "OPENAI_API_KEY": "sk-local-test-key",
            "TRANSLATOR_LOG_LEVEL": "INFO",
            "TRANSLATOR_ENGINE": "passthrough",
            "TRANSLATOR_METRICS_PORT": "0",
            "TRANSLATOR_JANUS_URL": url,
        }
    )
    environ.update(env)
    return await BotProcess.start(["join", *args], environ)


async def test_sigterm_while_reconnecting_exits_promptly_with_0(janus: JanusServer) -> None:
    alice = SimParticipant(janus.url, janus.room, "Alice", "en", publish=False)
    await alice.join()
    port = free_port()
    async with TcpProxy("127.0.0.1", janus.port) as proxy:
        bot = await start_bot(janus, proxy.url(), str(janus.room), TRANSLATOR_METRICS_PORT=str(port))
        try:
            await bot.wait_line(r"joined meeting")
            proxy.refuse_for(120)
            proxy.cut()
            await bot.wait_line(r"reconnecting", 10)
            await asyncio.sleep(1.5)  # in the middle of the backoff, with attempts refused
            assert proxy.refused >= 1
            # Alive while reconnecting (a probe that restarted the bot would not help), and not ready.
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/livez") as reply:
                    assert reply.status == 200, await reply.text()
                async with http.get(f"http://127.0.0.1:{port}/healthz") as reply:
                    health = await reply.json()
                    assert reply.status == 503 and health["room"] == "reconnecting", health
                    assert {"part": "room", "status": "reconnecting"}.items() <= health["degraded"][0].items()
            started = time.monotonic()
            bot.proc.send_signal(signal.SIGTERM)
            assert await bot.wait(10) == 0, bot.text
            assert time.monotonic() - started < 5.0, bot.text
        finally:
            await bot.kill()
            await alice.close()
    assert "Traceback" not in bot.text, bot.text


async def test_gives_up_after_the_reconnect_window_with_exit_3(janus: JanusServer) -> None:
    alice = SimParticipant(janus.url, janus.room, "Alice", "en", publish=False)
    await alice.join()
    async with TcpProxy("127.0.0.1", janus.port) as proxy:
        bot = await start_bot(janus, proxy.url(), str(janus.room), TRANSLATOR_ROOM_RECONNECT_SECONDS="3")
        try:
            await bot.wait_line(r"joined meeting")
            proxy.refuse_for(120)
            proxy.cut()
            started = time.monotonic()
            assert await bot.wait(20) == 3, bot.text
            took = time.monotonic() - started
        finally:
            await bot.kill()
            await alice.close()
    assert 2.5 <= took < 8, (took, bot.text)
    assert re.search(r"translator-bot: lost the room server.*gave up after 3 s", bot.text), bot.text
    assert "Traceback" not in bot.text, bot.text


async def _destroy_room(janus: JanusServer, room: int | str) -> None:
    session = await JanusSession.connect(janus.url)
    try:
        handle = await session.attach(videoroom.PLUGIN)
        await handle.message({"request": "destroy", "room": room})
    finally:
        await session.destroy()


async def test_destroyed_room_is_a_meeting_that_ended_exit_0(janus: JanusServer) -> None:
    alice = SimParticipant(janus.url, 7001, "Alice", "en", publish=False)
    bot = await start_bot(janus, janus.url, "7001", "--create-room")
    try:
        await bot.wait_line(r"joined meeting 7001")
        await alice.join()
        await bot.wait_line(r"participant .* joined: Alice")
        await _destroy_room(janus, 7001)
        assert await bot.wait(10) == 0, bot.text
    finally:
        await bot.kill()
        await alice.close()
    assert re.search(r"meeting ended", bot.text), bot.text
    assert "Traceback" not in bot.text, bot.text


async def test_room_gone_when_rejoining_is_a_meeting_that_ended_exit_0(janus: JanusServer) -> None:
    alice = SimParticipant(janus.url, 7002, "Alice", "en", publish=False)
    async with TcpProxy("127.0.0.1", janus.port) as proxy:
        bot = await start_bot(janus, proxy.url(), "7002", "--create-room")
        try:
            await bot.wait_line(r"joined meeting 7002")
            await alice.join()
            await bot.wait_line(r"participant .* joined: Alice")
            proxy.refuse_for(2.0)
            proxy.cut()
            # Destroyed while the bot is away: it learns it only when it comes back.
            await _destroy_room(janus, 7002)
            assert await bot.wait(20) == 0, bot.text
        finally:
            await bot.kill()
            await alice.close()
    assert re.search(r"meeting ended: meeting 7002 no longer exists", bot.text), bot.text
    assert "Traceback" not in bot.text, bot.text


async def test_bot_alone_in_the_room_leaves_with_exit_0(janus: JanusServer) -> None:
    # Nobody ever comes: the countdown starts at the join.
    bot = await start_bot(janus, janus.url, str(janus.room), TRANSLATOR_EMPTY_ROOM_SECONDS="2")
    try:
        await bot.wait_line(r"joined meeting", 30)
        joined = time.monotonic()
        assert await bot.wait(15) == 0, bot.text
        alone = time.monotonic() - joined
    finally:
        await bot.kill()
    assert 1.5 <= alone < 6, (alone, bot.text)
    assert re.search(r"meeting ended: nobody but interpreters in the room for 2 s", bot.text), bot.text

    # Someone there: the bot stays; they leave (another interpreter does not count): it goes.
    alice = SimParticipant(janus.url, janus.room, "Alice", "en", publish=False)
    await alice.join()
    bot = await start_bot(janus, janus.url, str(janus.room), TRANSLATOR_EMPTY_ROOM_SECONDS="2")
    other: BotProcess | None = None
    try:
        await bot.wait_line(r"joined meeting", 30)
        await bot.wait_line(r"participant .* joined: Alice")
        other = await start_bot(janus, janus.url, str(janus.room), TRANSLATOR_EMPTY_ROOM_SECONDS="0")
        await bot.wait_line(r"participant .* joined: Interpreter .*\[interpreter\]", 30)
        await asyncio.sleep(3.5)
        assert bot.proc.returncode is None, bot.text
        await alice.close()
        left = time.monotonic()
        assert await bot.wait(15) == 0, bot.text
        took = time.monotonic() - left
        assert other.proc.returncode is None, other.text  # 0: never leaves for being alone
    finally:
        await bot.kill()
        if other is not None:
            await other.kill()
        await alice.close()
    assert 1.5 <= took < 6, (took, bot.text)
    assert "Traceback" not in bot.text, bot.text


# --- RoomSession itself, through the proxy ------------------------------------------------------------


async def test_room_session_claims_its_session_back_and_catches_up_on_the_gap(
    start_janus: StartJanus,
) -> None:
    janus = await start_janus(reclaim_session_timeout=RECLAIM_S)
    alice = SimParticipant(
        janus.url, janus.room, "Alice", "en", schedule=[fixture_speech("u1-en")], loop=True
    )
    bob = SimParticipant(janus.url, janus.room, "Bob", "de", publish=False)
    carol = SimParticipant(
        janus.url, janus.room, "Carol", "fr", schedule=[fixture_speech("u2-en")], loop=True
    )
    await alice.join()
    await bob.join()
    proxy = await TcpProxy("127.0.0.1", janus.port).start()
    room = RoomSession(url=proxy.url(), room=janus.room, reconnect_seconds=30)
    watch: RoomWatcher | None = None
    try:
        await room.join()
        watch = RoomWatcher(room).start()
        arrived = await watch.wait_for(FeedTrackArrived, lambda e: e.participant.id == alice.id)
        await watch.recorders[arrived.feed].wait_first_frame(10)
        session_id = room.janus_session_id
        assert session_id is not None
        mark = len(watch.events)

        proxy.refuse_for(1.5)
        proxy.cut()
        # While the bot is away: Bob leaves, Carol comes. Janus sends nobody's events to a lost socket.
        bob_id = bob.id
        await bob.close()
        carol_id = await carol.join()
        await watch.wait_for(ParticipantLeft, lambda e: e.participant.id == bob_id, 15, after=mark)
        await watch.wait_for(FeedTrackArrived, lambda e: e.participant.id == carol_id, 15, after=mark)
        assert room.online and room.reconnects == 1 and room.janus_session_id == session_id
        # Alice's subscription went on untouched: no FeedTrackGone, her recording still grows.
        assert not [e for _, e in watch.events[mark:] if isinstance(e, FeedTrackGone)]
        frames = watch.recorders[arrived.feed].recording.frames
        await asyncio.sleep(0.5)
        assert watch.recorders[arrived.feed].recording.frames > frames
    finally:
        await room.leave()
        if watch is not None:
            await watch.close()
        await proxy.stop()
        for sim in (alice, bob, carol):
            await sim.close()


async def test_room_session_rejoins_and_republishes_the_same_track(start_janus: StartJanus) -> None:
    janus = await start_janus()  # Janus's default: the session goes with its socket
    beatriz = SimParticipant(
        janus.url, janus.room, "Beatriz", "es", schedule=[fixture_speech("u2-es")], loop=True
    )
    await beatriz.join()
    proxy = await TcpProxy("127.0.0.1", janus.port).start()
    room = RoomSession(url=proxy.url(), room=janus.room, reconnect_seconds=30)
    watch: RoomWatcher | None = None
    try:
        await room.join()
        watch = RoomWatcher(room).start()
        arrived = await watch.wait_for(FeedTrackArrived, lambda e: e.participant.id == beatriz.id)
        speaking = ScheduleTrack()
        publication = await room.publish_feed(speaking, arrived.participant, "es")
        first_id = publication.participant_id
        listening = await beatriz.subscribe_interpreter(timeout_s=10)
        await (await listening.wait_track(10)).wait_first_frame(10)
        mark = len(watch.events)

        proxy.refuse_for(1.5)
        proxy.cut()
        await asyncio.sleep(0.3)
        assert not room.online
        # Relabelled while away (Beatriz switched to German): applied on return.
        await publication.relabel(arrived.participant, "de")
        async with asyncio.timeout(15):
            while publication.publish_count < 2:  # noqa: ASYNC110 - the publication only counts
                await asyncio.sleep(0.05)
        # The same Publication and the same track, now as a new room participant.
        assert publication.track is speaking and speaking.readyState == "live"
        assert publication.participant_id != first_id and publication.participant_id in room.own_ids
        gone = await watch.wait_for(FeedTrackGone, lambda e: e.participant.id == beatriz.id, after=mark)
        again = await watch.wait_for(FeedTrackArrived, lambda e: e.participant.id == beatriz.id, after=mark)
        assert again.track is not arrived.track and gone.feed == again.feed
        await watch.recorders[again.feed].wait_first_frame(10)

        pub = await beatriz.wait_for_publisher(
            lambda p: beatriz.is_my_interpreter(p) and p.id == publication.participant_id, 10
        )
        assert json.loads(pub.streams[0].description or "{}")["lang"] == "de"
        assert pub.display == "Interpreter -> Beatriz (de)"
        relistening = await beatriz.subscribe(pub.id)
        recorder = await relistening.wait_track(10)
        await recorder.wait_first_frame(10)
        speaking.say(fixture_speech("u3-es"))
        async with asyncio.timeout(10):
            while not (speaking.spoken and speaking.spoken[-1].end is not None):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.4)
        match = best_envelope_match(recorder.recording.samples(), read_pcm(utterance("u3-es")))
        assert match > 0.8, match
    finally:
        await room.leave()
        if watch is not None:
            await watch.close()
        await proxy.stop()
        await beatriz.close()


async def test_room_session_notices_a_stalled_socket_by_its_keepalives(janus: JanusServer) -> None:
    """A connection that silently stops carrying anything is never closed by anyone: the unanswered
    keepalive is what tells the bot, which then claims its session on a new socket."""
    alice = SimParticipant(
        janus.url, janus.room, "Alice", "en", schedule=[fixture_speech("u1-en")], loop=True
    )
    await alice.join()
    proxy = await TcpProxy("127.0.0.1", janus.port).start()
    room = RoomSession(url=proxy.url(), room=janus.room, keepalive_interval=1.0, reconnect_seconds=30)
    watch: RoomWatcher | None = None
    try:
        await room.join()
        watch = RoomWatcher(room).start()
        arrived = await watch.wait_for(FeedTrackArrived, lambda e: e.participant.id == alice.id)
        mark = len(watch.events)
        assert proxy.stall() == 1
        stalled_at = time.monotonic()
        async with asyncio.timeout(10):
            while room.reconnects < 1:  # noqa: ASYNC110 - the session only counts
                await asyncio.sleep(0.05)
        noticed_s = time.monotonic() - stalled_at
        # The old socket was still open at Janus's end, so the session was there to claim.
        assert room.online and proxy.accepted == 2
        assert not [e for _, e in watch.events[mark:] if isinstance(e, FeedTrackGone)]
        frames = watch.recorders[arrived.feed].recording.frames
        await asyncio.sleep(0.5)
        assert watch.recorders[arrived.feed].recording.frames > frames
    finally:
        await room.leave()
        if watch is not None:
            await watch.close()
        await proxy.stop()
        await alice.close()
    assert 1.0 <= noticed_s < 4.0, noticed_s
