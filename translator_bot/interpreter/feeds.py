"""Audio out: the bot's feeds in the room, one per listener, one per language or one mixed feed, kept in
step with the plan.

A feed the room refuses (publisher limit) or takes away (kicked, unpublished, connection failed) leaves only
its listeners without interpretation, and is published again with back-off. Which lanes a feed carries and
whom it is labelled for is decided by `plan.plan_feeds`; this module applies that to the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from translator_bot.audio.playout import PlayoutTrack
from translator_bot.errors import RoomError
from translator_bot.interpreter.health import PartHealth, Restarts
from translator_bot.interpreter.plan import LANGUAGE_FEED_PREFIX, Audience, LaneKey, LanePlan, Member
from translator_bot.interpreter.port import Publication, RoomPort
from translator_bot.metrics import FEED_FAILURES

log = logging.getLogger(__name__)

MIXED_FEED = "mixed"


@dataclass(slots=True, eq=False)
class Feed:
    feed_id: str  # listener id, "lang:<base>" (per-language) or MIXED_FEED
    track: PlayoutTrack
    publication: Publication | None
    lanes: tuple[LaneKey, ...]
    lang: str
    audience: Audience  # whom the feed is labelled for (see plan.Audience)
    problem: str | None = None  # "refused" or "lost": the listener hears nothing until re-published
    retry_at: float | None = None
    restarts: Restarts = field(default_factory=Restarts)

    @property
    def live(self) -> bool:
        return self.publication is not None and self.problem is None


def feed_language(
    feed_id: str, members: Mapping[str, Member], plans: Iterable[LanePlan], default_language: str
) -> str:
    """The language a feed is labelled with: its listener's, or the meeting's default for the mixed feed."""
    if feed_id == MIXED_FEED:
        return default_language
    member = members.get(feed_id)
    if member is None:  # left, and the lanes for them are not closed yet (at most a second)
        member = next(m for plan in plans for m in plan.listeners if m.id == feed_id)
    return member.language.tag


def default_audience(feed_id: str) -> Audience:
    """Whom a per-listener or mixed feed is labelled for: its listener, or everyone."""
    return None if feed_id == MIXED_FEED else feed_id


def listener_name(feed_id: str, members: Mapping[str, Member]) -> str:
    """Who a feed is for, as the logs and the health report name them."""
    if feed_id == MIXED_FEED:
        return "everyone"
    if feed_id.startswith(LANGUAGE_FEED_PREFIX):
        return f"the {feed_id.removeprefix(LANGUAGE_FEED_PREFIX)} listeners"
    member = members.get(feed_id)
    return f"{member.name} ({feed_id})" if member is not None else feed_id


def lost_reason(publication: Publication) -> str | None:
    """Why the room took the feed away, if it did (a publication may not tell)."""
    lost = getattr(publication, "lost_reason", None)
    return str(lost) if lost else None


class FeedSet:
    """The bot's feeds in the room, by feed id; published, relabelled, repaired and closed here."""

    def __init__(
        self,
        room: RoomPort,
        *,
        new_track: Callable[[], PlayoutTrack],
        name_of: Callable[[str], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._room = room
        self._new_track = new_track
        self._name_of = name_of
        self._clock = clock
        self.feeds: dict[str, Feed] = {}

    def serving(self, key: LaneKey) -> list[Feed]:
        """The feeds that carry lane `key` and are in the room."""
        # A feed that is not in the room gets nothing: its track would only fill up unread.
        return [feed for feed in self.feeds.values() if key in feed.lanes and feed.problem is None]

    async def reconcile(
        self,
        wanted: Mapping[str, tuple[LaneKey, ...]],
        language_of: Callable[[str], str],
        audience_of: Callable[[str], Audience] = default_audience,
    ) -> None:
        """Close the feeds nobody needs, publish the new ones, relabel those whose listener switched
        language or whose audience changed (people joined or left a language), then repair what is due."""
        for feed_id in [f for f in self.feeds if f not in wanted]:
            feed = self.feeds.pop(feed_id)
            feed.track.stop()
            if feed.publication is not None:
                with contextlib.suppress(Exception):
                    await feed.publication.aclose()
        new: list[Feed] = []
        for feed_id, lanes in wanted.items():
            lang, audience = language_of(feed_id), audience_of(feed_id)
            existing = self.feeds.get(feed_id)
            if existing is None:
                new.append(feed := Feed(feed_id, self._new_track(), None, lanes, lang, audience))
                self.feeds[feed_id] = feed
                continue
            existing.lanes = lanes
            if (existing.lang, existing.audience) != (lang, audience):
                # A feed being published again later takes the new labels with it.
                existing.lang, existing.audience = lang, audience
                log.info("relabelling the feed for %s: %s, for %s", self._name_of(feed_id), lang, audience)
                existing.track.welcome()  # whoever it is now for subscribes to it now
                if existing.live and existing.publication is not None:
                    try:
                        await existing.publication.relabel(lang, audience)
                    except RoomError as exc:
                        self._failed(existing, "lost", f"relabelling failed: {exc}")
        await self._publish_all(new)
        await self.repair()

    async def repair(self) -> None:
        """Notice feeds the room took away, and publish again those whose back-off is over."""
        now = self._clock()
        for feed in list(self.feeds.values()):
            if feed.problem is None and feed.publication is not None:
                lost = lost_reason(feed.publication)
                if lost:
                    self._failed(feed, "lost", lost)
            if feed.problem is None or feed.retry_at is None or feed.retry_at > now:
                continue
            feed.retry_at = None  # this attempt is under way; a failure sets the next
            old, feed.publication = feed.publication, None
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.aclose()
            feed.track.stop()
            feed.track = self._new_track()
            log.info("publishing the feed for %s again", self._name_of(feed.feed_id))
            await self._publish_feed(feed)

    async def aclose(self) -> None:
        feeds = list(self.feeds.values())
        self.feeds.clear()
        for feed in feeds:
            feed.track.stop()
            if feed.publication is not None:
                with contextlib.suppress(Exception):
                    await feed.publication.aclose()

    def degraded(self) -> list[PartHealth]:
        return [
            PartHealth(f"feed for {self._name_of(feed.feed_id)}", feed.problem, feed.restarts.reason)
            for feed in self.feeds.values()
            if feed.problem is not None
        ]

    async def _publish_all(self, feeds: list[Feed]) -> None:
        """Publish new feeds side by side: each is its own negotiation with the room server, and at
        start-up every listener's feed is new; the last listener does not wait for all the others."""
        if len(feeds) == 1:
            await self._publish_feed(feeds[0])
            return
        async with asyncio.TaskGroup() as group:
            for feed in feeds:
                group.create_task(self._publish_feed(feed), name=f"publishing the feed for {feed.feed_id}")

    async def _publish_feed(self, feed: Feed) -> None:
        """Publish (or publish again) `feed`; a refusal degrades this listener only."""
        try:
            publication = await self._room.publish_feed(feed.track, for_id=feed.audience, lang=feed.lang)
        except RoomError as exc:
            self._failed(feed, "refused", str(exc))
            return
        if self.feeds.get(feed.feed_id) is not feed:
            with contextlib.suppress(Exception):
                await publication.aclose()  # the feed was dropped while it was being published
            return
        if feed.problem is not None:
            log.info("the feed for %s is published again", self._name_of(feed.feed_id))
        feed.publication, feed.problem, feed.retry_at = publication, None, None
        feed.track.welcome()  # its listeners subscribe to it now

    def _failed(self, feed: Feed, problem: str, reason: str) -> None:
        delay = feed.restarts.record(self._clock(), reason)
        FEED_FAILURES.labels(reason=problem).inc()
        feed.problem, feed.retry_at = problem, self._clock() + delay
        log.error(
            "the feed for %s is %s: %s; %s hears no interpretation until it is published again (next"
            " try in %.0f s)",
            self._name_of(feed.feed_id),
            problem,
            reason,
            "nobody"
            if feed.feed_id == MIXED_FEED
            else "its listeners"
            if feed.feed_id.startswith(LANGUAGE_FEED_PREFIX)
            else "this listener",
            delay,
        )
