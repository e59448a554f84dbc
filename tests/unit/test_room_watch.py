"""The room session notices when the room takes one of the bot's feeds away or a connection fails.
(Against real Janus: tests/integration/test_meeting_guard.py kicks a feed of the bot's.)"""

from __future__ import annotations

import asyncio
import types
from typing import Any

from translator_bot.room import videoroom
from translator_bot.room.session import FeedId, FeedTrackGone, Publication, RoomSession, _Known, _Subscription


def publication(owner: RoomSession, pid: int, pc_state: str = "connected") -> Publication:
    pc: Any = types.SimpleNamespace(connectionState=pc_state)
    track: Any = types.SimpleNamespace()
    pub = Publication(owner, track, "Interpreter -> Bea (es)", "{}", data=False)
    pub.participant_id = pid
    pub._pc = pc
    owner._publications.add(pub)
    return pub


async def test_an_own_feed_unpublished_kicked_or_hung_up_is_marked_lost():
    room = RoomSession(url="ws://127.0.0.1:1/", room=1234)
    room.participant_id = 1
    feeds = {pid: publication(room, pid) for pid in (11, 12, 13, 14)}
    assert all(feed.lost_reason is None for feed in feeds.values())
    room._apply(videoroom.FeedUnpublished(11))
    room._apply(videoroom.ParticipantKicked(12))
    room._apply(videoroom.ParticipantLeaving(13))
    feeds[14]._on_message({"janus": "hangup", "reason": "ICE failed"})
    assert feeds[11].lost_reason == "unpublished by the room server"
    assert feeds[12].lost_reason == "kicked out of the meeting"
    assert feeds[13].lost_reason == "removed from the meeting"
    assert feeds[14].lost_reason == "the room server hung up the feed (ICE failed)"
    assert room._events.empty()  # the bot's own feeds are never participants


async def test_an_own_feed_whose_connection_failed_is_lost():
    room = RoomSession(url="ws://127.0.0.1:1/", room=1234)
    assert publication(room, 21, "failed").lost_reason == "its connection to the room server failed"


async def test_a_failed_receiving_connection_is_subscribed_anew():
    room = RoomSession(url="ws://127.0.0.1:1/", room=1234)
    stream = videoroom.StreamInfo(type="audio", mid="0", description=None, disabled=False)
    room._known[7] = _Known(display="Alice [en]", streams=(stream,))
    room._refresh(7)
    alice = room.participants[7]
    feed = FeedId(7, "0")
    sub = _Subscription(feed, announced=alice)
    pc = types.SimpleNamespace(connectionState="connected")
    sub.pc = pc  # type: ignore[assignment]
    room._subscriptions[feed] = sub
    room._on_subscriber_state(sub)
    assert room._subscriptions[feed] is sub  # a working connection is left alone
    pc.connectionState = "failed"
    room._on_subscriber_state(sub)
    again = room._subscriptions[feed]
    assert again is not sub and again.task is not None
    events = [room._events.get_nowait() for _ in range(room._events.qsize())]
    assert FeedTrackGone(alice, feed) in events
    for task in [again.task, *room._teardowns]:
        task.cancel()
    await asyncio.gather(again.task, *room._teardowns, return_exceptions=True)
