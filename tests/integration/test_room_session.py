"""RoomSession against a real Janus (Debian package) in a private network namespace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import numpy as np
import pytest

from tests.conftest import StartJanus
from translator_bot.errors import RoomError
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.room.janus import JanusSession
from translator_bot.room.metadata import ParticipantId
from translator_bot.room.session import (
    FeedTrackArrived,
    FeedTrackGone,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RoomSession,
    RoomSessionClosed,
)
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.participant import (
    ScheduleTrack,
    SimParticipant,
    best_envelope_match,
    fixture_speech,
)
from translator_bot.testbed.watch import RoomWatcher

pytestmark = [pytest.mark.janus, pytest.mark.timeout(60)]


async def _spoken_all(sim: SimParticipant, count: int, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while len([u for u in sim.spoken if u.end is not None]) < count:  # noqa: ASYNC110 - the track only counts
            await asyncio.sleep(0.05)


def _from(pid: ParticipantId) -> Callable[[FeedTrackArrived], bool]:
    return lambda event: event.participant.id == pid


def _ref(utterance_id: str) -> np.ndarray:
    return read_pcm(utterance(utterance_id))


async def test_bot_receives_each_participant_as_48k_frames(janus: JanusServer) -> None:
    alice = SimParticipant(janus.url, janus.room, "Alice", "en-US", declare="display")
    beatriz = SimParticipant(janus.url, janus.room, "Beatriz", "ES-mx", declare="description")
    room = RoomSession(url=janus.url, room=str(janus.room), default_language="de")
    try:
        await room.join()
        watch = RoomWatcher(room).start()
        a_id = await alice.join()
        b_id = await beatriz.join()
        for pid in (a_id, b_id):
            arrived = await watch.wait_for(FeedTrackArrived, _from(pid))
            # Speak only once media flows: a DTLS handshake that needs its 1 s retransmit would
            # otherwise swallow the start of a sentence scheduled from the publisher's first frame.
            await watch.recorders[arrived.feed].wait_first_frame(10)
        alice.say("u1-en", pause_before=0.3)
        beatriz.say("u2-es", pause_before=0.3)
        for who in (alice, beatriz):
            await _spoken_all(who, 1)
        await asyncio.sleep(0.4)  # the tail still in flight
        assert room.participants[a_id].language.tag == "en-US"
        assert room.participants[a_id].language_source == "display"
        assert room.participants[b_id].language.tag == "es-MX"
        assert room.participants[b_id].language_source == "description"
        assert room.participants[b_id].name == "Beatriz"
        heard = {e.participant.id: watch.recorders[e.feed].recording for e in watch.of_type(FeedTrackArrived)}
        assert set(heard) == {a_id, b_id}
        for rec in heard.values():
            assert rec.rates == {48000} and rec.frame_samples == {960}
            assert rec.frames > 100
        a_self, a_other = (best_envelope_match(heard[a_id].samples(), _ref(u)) for u in ("u1-en", "u2-es"))
        b_self, b_other = (best_envelope_match(heard[b_id].samples(), _ref(u)) for u in ("u2-es", "u1-en"))
        assert a_self > 0.8 and a_self > a_other + 0.2, (a_self, a_other)
        assert b_self > 0.8 and b_self > b_other + 0.2, (b_self, b_other)
        await watch.close()
    finally:
        await room.leave()
        await alice.close()
        await beatriz.close()


async def test_published_feed_reaches_its_listener_with_labels_and_captions(janus: JanusServer) -> None:
    beatriz = SimParticipant(
        janus.url, janus.room, "Beatriz", "es", schedule=[fixture_speech("u2-es")], loop=True
    )
    # Another interpreter bot's feed: the bot must not subscribe to it.
    other_bot = SimParticipant(
        janus.url,
        janus.room,
        "Other interpreter",
        "de",
        declare="description",
        description=json.dumps({"role": "interpreter", "for": 1, "lang": "de"}),
        schedule=[fixture_speech("u1-de")],
        loop=True,
    )
    await beatriz.join()
    room = RoomSession(url=janus.url, room=janus.room)
    try:
        await room.join()
        watch = RoomWatcher(room).start()
        arrived = await watch.wait_for(FeedTrackArrived, lambda e: e.participant.id == beatriz.id)
        listener = arrived.participant
        speaking = ScheduleTrack()
        publication = await room.publish_feed(speaking, listener, "es")
        assert publication.display == "Interpreter -> Beatriz (es)"
        assert json.loads(publication.description) == {"role": "interpreter", "for": beatriz.id, "lang": "es"}
        listening = await beatriz.subscribe_interpreter(timeout_s=10)
        await publication.wait_connected(10)
        recorder = await listening.wait_track(10)
        await recorder.wait_first_frame(10)  # media flows: the whole sentence will be heard
        speaking.say(fixture_speech("u3-es", 0.3))
        other_id = await other_bot.join()
        await watch.wait_for(ParticipantJoined, lambda e: e.participant.id == other_id)
        await other_bot.media_up.wait()
        for _ in range(100):
            if publication.send_data("caption: hola") and listening.messages:
                break
            await asyncio.sleep(0.05)
        async with asyncio.timeout(10):
            while not (speaking.spoken and speaking.spoken[0].end is not None):  # noqa: ASYNC110 - the track only counts
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.4)
        heard = listening.recording
        assert heard.rates == {48000}
        match, wrong = (
            best_envelope_match(heard.samples(), _ref("u3-es")),
            best_envelope_match(heard.samples(), _ref("u2-es")),
        )
        assert match > 0.8 and match > wrong + 0.2, (match, wrong)
        assert any(text == "caption: hola" for _, text in listening.messages)
        subscribed = {e.participant.id for e in watch.of_type(FeedTrackArrived)}
        assert subscribed == {beatriz.id}, "subscribed to its own or another interpreter's feed"
        assert publication.participant_id in room.own_ids
        assert room.participants[other_id].is_interpreter
        await publication.aclose()
        await watch.close()
    finally:
        await room.leave()
        await beatriz.close()
        await other_bot.close()


async def test_follows_language_change_leave_and_rejoin(janus: JanusServer) -> None:
    alice = SimParticipant(
        janus.url, janus.room, "Alice", "en", schedule=[fixture_speech("u1-en")], loop=True
    )
    room = RoomSession(url=janus.url, room=janus.room)
    await room.join()
    watch = RoomWatcher(room).start()
    try:
        await alice.join()
        first_id = alice.id
        arrived = await watch.wait_for(FeedTrackArrived, lambda e: e.participant.id == first_id)
        assert arrived.participant.language.base == "en"
        mark = len(watch.events)
        await alice.configure_language("de-AT")
        updated = await watch.wait_for(
            ParticipantUpdated, lambda e: e.participant.language.tag == "de-AT", after=mark
        )
        assert updated.previous.language.base == "en" and updated.participant.name == "Alice"
        changes = [e for e in watch.of_type(ParticipantUpdated) if e.participant.id == first_id]
        assert len(changes) == 1, changes  # display + description changes come as one update

        mark = len(watch.events)
        await alice.leave()  # `leave` while connected: Janus sends `leaving`, no renegotiation
        gone = await watch.wait_for(FeedTrackGone, lambda e: e.feed.participant == first_id, after=mark)
        left = await watch.wait_for(ParticipantLeft, lambda e: e.participant.id == first_id, after=mark)
        assert left.participant.language.tag == "de-AT"
        order = [e for _, e in watch.events[mark:]]
        assert order.index(gone) < order.index(left)
        assert not [f for f in room.receiving if f.participant == first_id]
        # A duplicate `unpublished`/`leaving` for a feed already gone: tests/unit/test_roster.py.

        mark = len(watch.events)
        await alice.join()
        assert alice.id != first_id
        joined = await watch.wait_for(ParticipantJoined, lambda e: e.participant.id == alice.id, after=mark)
        assert joined.participant.name == "Alice"
        again = await watch.wait_for(FeedTrackArrived, lambda e: e.participant.id == alice.id, after=mark)
        assert again.participant.language.tag == "de-AT"
        recorder = watch.recorders[again.feed]
        await recorder.wait_first_frame(10)
        await room.leave()
        closed = await watch.wait_for(RoomSessionClosed, timeout_s=5)
        assert closed.error is None and len(watch.of_type(RoomSessionClosed)) == 1
    finally:
        await room.leave()
        await watch.close()
        await alice.close()


async def test_string_room_ids_and_create_room(start_janus: StartJanus) -> None:
    janus = await start_janus(room="standup", string_ids=True)
    alice = SimParticipant(
        janus.url, janus.room, "Alice", "en", schedule=[fixture_speech("u1-en")], loop=True
    )
    await alice.join()
    async with RoomSession(url=janus.url, room="standup") as room:
        watch = RoomWatcher(room).start()
        arrived = await watch.wait_for(FeedTrackArrived)
        assert arrived.participant.id == alice.id and isinstance(alice.id, str)
        await watch.close()
    await alice.close()

    with pytest.raises(RoomError, match="does not exist"):
        await RoomSession(url=janus.url, room="retro").join()
    with pytest.raises(RoomError, match="cannot create"):
        await RoomSession(url=janus.url, room="retro", create_room=True, admin_key="wrong").join()
    async with RoomSession(url=janus.url, room="retro", create_room=True, admin_key=janus.admin_key) as room:
        assert room.room_id == "retro"


async def test_refusals_are_room_errors(start_janus: StartJanus) -> None:
    janus = await start_janus(api_secret="let-me-in")
    refused_room = RoomSession(url=janus.url, room=janus.room)
    with pytest.raises(RoomError, match="refused") as refused:
        await refused_room.join()
    assert "let-me-in" not in str(refused.value)
    await asyncio.wait_for(refused_room.leave(), 2)  # leaving after a failed join returns at once
    with pytest.raises(RoomError, match="does not exist"):
        await RoomSession(url=janus.url, room="4321", api_secret="let-me-in").join()
    with pytest.raises(RoomError, match="not valid"):
        await RoomSession(url=janus.url, room="no-such-name", api_secret="let-me-in").join()
    async with RoomSession(url=janus.url, room=janus.room, api_secret="let-me-in") as room:
        assert room.participant_id is not None
    with pytest.raises(RoomError, match="cannot reach"):
        await RoomSession(url="ws://127.0.0.1:9/", room="1").join()


async def test_janus_killed_mid_call_closes_with_error(janus: JanusServer) -> None:
    alice = SimParticipant(
        janus.url, janus.room, "Alice", "en", schedule=[fixture_speech("u1-en")], loop=True
    )
    await alice.join()
    # The session retries a lost room server for `reconnect_seconds` before it gives up.
    room = RoomSession(url=janus.url, room=janus.room, reconnect_seconds=2)
    await room.join()
    watch = RoomWatcher(room).start()
    try:
        arrived = await watch.wait_for(FeedTrackArrived)
        await watch.recorders[arrived.feed].wait_first_frame(10)
        janus.kill()
        closed = await watch.wait_for(RoomSessionClosed, timeout_s=10)
        assert closed.error is not None and "lost the room server" in str(closed.error)
        assert "gave up after 2 s" in str(closed.error) and not closed.ended
        assert isinstance(await room.wait_closed(), RoomError)
        assert watch.of_type(FeedTrackGone), "the feed was not torn down"
        assert watch.recorders[arrived.feed].recording.frames > 0
    finally:
        await room.leave()
        await watch.close()
        await alice.close()


async def test_keepalives_hold_the_session_open(start_janus: StartJanus) -> None:
    janus = await start_janus(session_timeout=2)
    # Without keepalives Janus drops the session: this is what the keepalives are for.
    silent = await JanusSession.connect(janus.url, keepalive_interval=60)
    async with RoomSession(url=janus.url, room=janus.room, keepalive_interval=0.7) as room:
        reason = await asyncio.wait_for(silent.wait_closed(), 10)
        assert "timed the session out" in reason
        assert not room.closed
        beatriz = SimParticipant(janus.url, janus.room, "Beatriz", "es", publish=False)
        b_id = await beatriz.join()
        watch = RoomWatcher(room).start()
        await watch.wait_for(ParticipantJoined, lambda e: e.participant.id == b_id)
        await watch.close()
        await beatriz.close()
    await silent.destroy()
