"""The room session notices when the room takes one of the bot's feeds away or a connection fails.
(Against real Janus: tests/integration/test_meeting_guard.py kicks a feed of the bot's.)"""

from __future__ import annotations

import types
from typing import Any

from translator_bot.languages import parse_language
from translator_bot.room import videoroom
from translator_bot.room.events import FeedId, FeedTrackGone, RoomEvent
from translator_bot.room.peers import IceConfig
from translator_bot.room.publication import PublishedFeed, PublishedFeeds
from translator_bot.room.roster import FeedsWanted, Roster
from translator_bot.room.session import RoomSession
from translator_bot.room.subscriptions import Seat, Subscriptions


def publication(
    owner: RoomSession, feeds: PublishedFeeds, pid: int, pc_state: str = "connected"
) -> PublishedFeed:
    pc: Any = types.SimpleNamespace(connectionState=pc_state)
    track: Any = types.SimpleNamespace()
    pub = PublishedFeed(owner, track, "Interpreter -> Bea (es)", "{}", data=False)
    pub.participant_id = pid
    pub._pc = pc
    feeds._feeds.add(pub)
    return pub


async def test_an_own_feed_unpublished_kicked_or_hung_up_is_marked_lost():
    room = RoomSession(url="ws://127.0.0.1:1/", room=1234)
    own = PublishedFeeds()
    control_id = 1
    feeds = {pid: publication(room, own, pid) for pid in (11, 12, 13, 14)}
    assert all(feed.lost_reason is None for feed in feeds.values())
    assert own.taken(videoroom.FeedUnpublished(11), control_id)
    assert own.taken(videoroom.ParticipantKicked(12), control_id)
    assert own.taken(videoroom.ParticipantLeaving(13), control_id)
    feeds[14].on_message({"janus": "hangup", "reason": "ICE failed"})
    assert feeds[11].lost_reason == "unpublished by the room server"
    assert feeds[12].lost_reason == "kicked out of the meeting"
    assert feeds[13].lost_reason == "removed from the meeting"
    assert feeds[14].lost_reason == "the room server hung up the feed (ICE failed)"
    # The bot's own feeds are never participants: the session hands such events to no one else.
    assert not own.taken(videoroom.FeedUnpublished(15), control_id)
    assert not own.taken(videoroom.ParticipantKicked(control_id), control_id)


async def test_an_own_feed_whose_connection_failed_is_lost():
    room = RoomSession(url="ws://127.0.0.1:1/", room=1234)
    assert (
        publication(room, PublishedFeeds(), 21, "failed").lost_reason
        == "its connection to the room server failed"
    )


def subscriptions(roster: Roster, events: list[RoomEvent]) -> Subscriptions:
    def receive_again(feed: FeedId) -> None:  # what the session does when a feed's connection fails
        pid = feed.participant
        subs.sync(FeedsWanted(pid, roster.wanted_feeds(pid), roster.participants.get(pid)))

    subs = Subscriptions(
        ice=IceConfig(),
        seat=lambda: Seat(None, None, None),
        emit=events.append,
        participant_of=roster.participants.get,
        on_failed=receive_again,
    )
    return subs


async def test_a_failed_receiving_connection_is_subscribed_anew():
    roster = Roster(parse_language("en"))
    stream = videoroom.StreamInfo(type="audio", mid="0", description=None, disabled=False)
    roster.apply(videoroom.PublishersAnnounced((videoroom.PublisherInfo(7, "Alice [en]", (stream,)),)))
    alice = roster.participants[7]
    feed = FeedId(7, "0")
    events: list[RoomEvent] = []
    subs = subscriptions(roster, events)
    subs.sync(FeedsWanted(7, roster.wanted_feeds(7), alice))
    sub = subs.get(feed)
    assert sub is not None and sub.task is not None
    await subs._tasks.cancel(sub.task)  # stands for a subscription that was made
    sub.announced = alice
    pc = types.SimpleNamespace(connectionState="connected")
    sub.pc = pc  # type: ignore[assignment]
    subs.check_connection(sub)
    assert subs.get(feed) is sub  # a working connection is left alone
    pc.connectionState = "failed"
    subs.check_connection(sub)
    again = subs.get(feed)
    assert again is not None and again is not sub and again.task is not None
    assert FeedTrackGone(alice, feed) in events
    await subs._tasks.close()


async def test_a_feed_dropped_twice_or_never_received_changes_nothing():
    roster = Roster(parse_language("en"))
    events: list[RoomEvent] = []
    subs = subscriptions(roster, events)
    subs.drop(FeedId(7, "0"))  # never held
    subs.sync(FeedsWanted(7))  # "receive none of 7's feeds" when none are received
    assert events == [] and subs.feeds == frozenset()
    await subs.close()
