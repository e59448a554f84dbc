"""Audio out: the feeds follow the plan (published, relabelled, closed), and a feed the room refuses or
takes away degrades its listener only and is published again after its back-off."""

from __future__ import annotations

import asyncio

from tests.unit.test_meeting import FakePublication, FakeRoom, member
from translator_bot.audio.clock import FakeClock
from translator_bot.audio.playout import PlayoutTrack
from translator_bot.errors import RoomError
from translator_bot.interpreter.feeds import MIXED_FEED, FeedSet, feed_language, listener_name, lost_reason
from translator_bot.interpreter.plan import LaneKey, LanePlan

ALICE, BEA = member("a", "Alice", "en"), member("b", "Bea", "es")
A_TO_ES, B_TO_EN = LaneKey("a", "es"), LaneKey("b", "en")


def plan_for(speaker, listener) -> LanePlan:
    return LanePlan(LaneKey(speaker.id, listener.language.base), speaker, listener.language, (listener,))


def test_a_feed_is_labelled_in_its_listeners_language_or_the_default_when_mixed() -> None:
    members = {"a": ALICE, "b": BEA}
    assert feed_language("b", members, [], "fr") == "es"
    assert feed_language(MIXED_FEED, members, [], "fr") == "fr"
    # Bea left; her lane is not closed yet (the change limiter holds it for up to a second).
    assert feed_language("b", {"a": ALICE}, [plan_for(ALICE, BEA)], "fr") == "es"


def test_a_feed_is_named_after_its_listener() -> None:
    assert listener_name("b", {"b": BEA}) == "Bea (b)"
    assert listener_name("b", {}) == "b"
    assert listener_name(MIXED_FEED, {}) == "everyone"


def test_only_a_publication_that_says_so_is_lost() -> None:
    publication = FakePublication(None, "b", "es")
    assert lost_reason(publication) is None
    publication.lost_reason = "kicked"  # type: ignore[attr-defined]
    assert lost_reason(publication) == "kicked"


class RefusingRoom(FakeRoom):
    def __init__(self) -> None:
        super().__init__()
        self.refuse = True

    async def publish_feed(self, track, *, for_id, lang):
        if self.refuse:
            raise RoomError("publisher limit reached")
        return await super().publish_feed(track, for_id=for_id, lang=lang)  # type: ignore[no-untyped-call]


def new_feed_set(room: FakeRoom, now: list[float]) -> FeedSet:
    def new_track() -> PlayoutTrack:
        return PlayoutTrack(cushion_ms=60, hold_ms=0, max_lag_ms=2000, clock=FakeClock())

    return FeedSet(room, new_track=new_track, name_of=str, clock=lambda: now[0])


async def test_feeds_follow_the_plan_published_relabelled_and_closed() -> None:
    room, now = FakeRoom(), [0.0]
    feeds = new_feed_set(room, now)
    languages = {"a": "en", "b": "es"}
    await feeds.reconcile({"a": (B_TO_EN,), "b": (A_TO_ES,)}, languages.__getitem__)
    assert {p.for_id: p.lang for p in room.publications} == {"a": "en", "b": "es"}
    assert [f.feed_id for f in feeds.serving(A_TO_ES)] == ["b"]
    languages["b"] = "fr"
    await feeds.reconcile({"b": (A_TO_ES,)}, languages.__getitem__)
    assert room.feed_for("b").lang == "fr"
    assert [p.closed for p in room.publications if p.for_id == "a"] == [True]
    await feeds.aclose()
    assert all(p.closed for p in room.publications) and not feeds.feeds


async def test_a_refused_feed_is_reported_gets_nothing_and_is_published_after_its_back_off() -> None:
    room, now = RefusingRoom(), [0.0]
    feeds = new_feed_set(room, now)
    await feeds.reconcile({"b": (A_TO_ES,)}, lambda feed_id: "es")
    [part] = feeds.degraded()
    assert (part.part, part.status, part.reason) == ("feed for b", "refused", "publisher limit reached")
    assert feeds.serving(A_TO_ES) == []  # its track would only fill up unread
    room.refuse = False
    await feeds.repair()
    assert not room.publications  # the back-off (1 s) is not over
    now[0] = 1.0
    await feeds.repair()
    assert feeds.feeds["b"].publication is room.feed_for("b") and feeds.degraded() == []
    await feeds.aclose()


async def test_a_feed_the_room_took_away_is_noticed_and_published_again() -> None:
    room, now = FakeRoom(), [0.0]
    feeds = new_feed_set(room, now)
    await feeds.reconcile({"b": (A_TO_ES,)}, lambda feed_id: "es")
    kicked = room.feed_for("b")
    kicked.lost_reason = "kicked by the moderator"  # type: ignore[attr-defined]
    await feeds.repair()
    assert [p.status for p in feeds.degraded()] == ["lost"]
    now[0] = 1.0
    await feeds.repair()
    assert kicked.closed and room.feed_for("b") is not kicked and feeds.degraded() == []
    await feeds.aclose()


class SlowRoom(FakeRoom):
    """Every publication takes a while (the room server's negotiation): counts how many overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.publishing = self.most_at_once = 0

    async def publish_feed(self, track, *, for_id, lang):
        self.publishing += 1
        self.most_at_once = max(self.most_at_once, self.publishing)
        try:
            await asyncio.sleep(0.05)
            return await super().publish_feed(track, for_id=for_id, lang=lang)  # type: ignore[no-untyped-call]
        finally:
            self.publishing -= 1


async def test_new_feeds_are_published_at_once_not_one_after_another() -> None:
    """At start-up every listener's feed is new: the last listener must not wait for all the others."""
    room, now = SlowRoom(), [0.0]
    feeds = new_feed_set(room, now)
    listeners = {f"l{i}": (LaneKey("s", "es"),) for i in range(4)}
    await feeds.reconcile(listeners, lambda feed_id: "es")
    assert sorted(p.for_id for p in room.publications) == sorted(listeners)
    assert room.most_at_once == len(listeners)
    assert all(feed.live for feed in feeds.feeds.values())
    await feeds.aclose()


async def test_a_feed_welcomes_whoever_subscribes_when_published_and_when_relabelled() -> None:
    """Its listeners subscribe right after it is published or relabelled for them: the feed sends
    every slot meanwhile, DTX or not (PlayoutTrack.welcome)."""
    room, now = FakeRoom(), [0.0]
    welcomed: list[PlayoutTrack] = []

    class Track(PlayoutTrack):
        def welcome(self) -> None:
            welcomed.append(self)
            super().welcome()

    feeds = FeedSet(room, new_track=lambda: Track(clock=FakeClock()), name_of=str, clock=lambda: now[0])
    languages = {"b": "es"}
    await feeds.reconcile({"b": (A_TO_ES,)}, languages.__getitem__)
    assert welcomed == [feeds.feeds["b"].track]
    await feeds.reconcile({"b": (A_TO_ES,)}, languages.__getitem__)  # nothing changed: nobody new
    assert len(welcomed) == 1
    languages["b"] = "fr"
    await feeds.reconcile({"b": (A_TO_ES,)}, languages.__getitem__)
    assert welcomed == [feeds.feeds["b"].track] * 2
    await feeds.aclose()
