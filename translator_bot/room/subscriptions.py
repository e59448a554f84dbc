"""Receiving the room's audio feeds: one subscriber PeerConnection per remote feed.

Janus reuses freed m-line slots with a new SSRC and aiortc keeps routing by the first SSRC it saw, so
a connection shared by several feeds goes silent: each feed gets its own. Which feeds to receive is the
roster's decision (`FeedsWanted`); this module only makes and ends the subscriptions and says when a
feed's track arrives or goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from aiortc import MediaStreamTrack, RTCPeerConnection

from translator_bot import metrics
from translator_bot.room import negotiation, videoroom
from translator_bot.room.events import FeedId, FeedTrackArrived, FeedTrackGone, RoomEvent
from translator_bot.room.janus import JanusConnectionLost, JanusError, JanusHandle, JanusSession, JsonObject
from translator_bot.room.metadata import Participant, ParticipantId
from translator_bot.room.peers import IceConfig, close_quietly, new_peer_connection
from translator_bot.room.roster import FeedsWanted
from translator_bot.tasks import TaskSet

log = logging.getLogger("translator_bot.room.session")  # one logger for everything a room session says

_SUBSCRIBE_ATTEMPTS = 3


class Seat(NamedTuple):
    """Where subscriptions are made now: the room server session, the room, the bot's private id."""

    session: JanusSession | None
    room: ParticipantId | None
    private_id: int | None


@dataclass
class Subscription:
    feed: FeedId
    task: asyncio.Task[None] | None = None  # its setup, then its teardown
    handle: JanusHandle | None = None
    pc: RTCPeerConnection | None = None
    announced: Participant | None = None  # set once FeedTrackArrived went out
    lost: bool = False  # its setup failed because the room connection dropped: redo it


class Subscriptions:
    """The bot's subscriptions. `emit` gets FeedTrackArrived/FeedTrackGone; `participant_of` names the
    participant of a feed now; `on_failed` hears of a feed whose connection failed (to receive it anew)."""

    def __init__(
        self,
        *,
        ice: IceConfig,
        seat: Callable[[], Seat],
        emit: Callable[[RoomEvent], None],
        participant_of: Callable[[ParticipantId], Participant | None],
        on_failed: Callable[[FeedId], None],
    ) -> None:
        self._ice = ice
        self._seat = seat
        self._emit = emit
        self._participant_of = participant_of
        self._on_failed = on_failed
        self._subs: dict[FeedId, Subscription] = {}
        self._tasks = TaskSet("room subscriptions", logger=log)
        self._teardowns: set[asyncio.Task[None]] = set()

    @property
    def feeds(self) -> frozenset[FeedId]:
        """The feeds received or being subscribed to."""
        return frozenset(self._subs)

    def get(self, feed: FeedId) -> Subscription | None:
        return self._subs.get(feed)

    def sync(self, wanted: FeedsWanted) -> None:
        """Receive exactly the feeds the roster wants of one participant."""
        pid = wanted.participant
        for feed in [f for f in self._subs if f.participant == pid and f not in wanted.feeds]:
            self.drop(feed, wanted.known_as)
        for feed in wanted.feeds - self._subs.keys():
            sub = Subscription(feed)
            self._subs[feed] = sub
            sub.task = self._tasks.spawn(self._subscribe(sub), name=f"subscribe-{feed}")

    def drop(self, feed: FeedId, known_as: Participant | None = None) -> None:
        """Stop receiving a feed (its teardown runs in the background); nothing if it is not held."""
        sub = self._subs.pop(feed, None)
        if sub is None:
            return  # a second `unpublished`/`leaving` for a feed already gone
        if sub.announced is not None:
            metrics.ROOM_SUBSCRIPTIONS.dec()
            log.info("stopped receiving %s", sub.feed)
            who = known_as or self._participant_of(feed.participant) or sub.announced
            self._emit(FeedTrackGone(who, sub.feed))
        setup = sub.task
        sub.task = self._tasks.spawn(
            self._teardown(sub, setup), name=f"unsubscribe-{feed}", on_done=self._teardowns.discard
        )
        self._teardowns.add(sub.task)

    def drop_all(self) -> None:
        for feed in list(self._subs):
            self.drop(feed)

    def drop_lost(self) -> None:
        """Forget the subscriptions whose setup the lost room connection broke (made again later)."""
        for feed, sub in list(self._subs.items()):
            if sub.lost:
                self.drop(feed)

    async def close(self) -> None:
        """Drop every subscription and wait until each is torn down (PeerConnection closed, handle
        detached); then nothing of this owner runs."""
        self.drop_all()
        await self.wait_torn_down()
        await self._tasks.close()

    async def wait_torn_down(self) -> None:
        # Not cancelled: a teardown closes a PeerConnection and frees a handle, bounded by timeouts.
        if self._teardowns:
            await asyncio.gather(*list(self._teardowns), return_exceptions=True)

    def check_connection(self, sub: Subscription) -> None:
        """A failed connection never delivers again (aiortc keeps its track open and silent): the
        feed is received anew."""
        if sub.pc is None or sub.pc.connectionState != "failed" or self._subs.get(sub.feed) is not sub:
            return
        log.warning("the connection receiving %s failed; subscribing again", sub.feed)
        metrics.ROOM_SUBSCRIBE_FAILURES.labels(reason="connection_failed").inc()
        self.drop(sub.feed)
        self._on_failed(sub.feed)

    def _on_message(self, feed: FeedId, message: JsonObject) -> None:
        # A hangup on a subscription we still hold means its publisher went without a renegotiation.
        if message.get("janus") == "hangup" and feed in self._subs:
            log.info("the room server hung up feed %s", feed)
            self.drop(feed)

    async def _subscribe(self, sub: Subscription) -> None:
        session, room, private_id = self._seat()
        assert session is not None and room is not None
        feed = sub.feed
        try:
            sub.handle = await session.attach(videoroom.PLUGIN, lambda m: self._on_message(feed, m))
            sub.pc = pc = new_peer_connection(self._ice)
            pc.on("connectionstatechange", lambda: self.check_connection(sub))
            tracks: list[MediaStreamTrack] = []
            pc.on("track", lambda track: tracks.append(track) if track.kind == "audio" else None)
            await negotiation.subscribe(
                sub.handle,
                pc,
                room,
                [videoroom.stream_request(feed.participant, feed.mid)],
                private_id=private_id,
                attempts=_SUBSCRIBE_ATTEMPTS,
            )
            if not tracks:
                raise JanusError(0, "the offer for the feed had no audio track")
            participant = self._participant_of(feed.participant)
            if participant is None:
                raise JanusError(0, "the participant left while subscribing")
            sub.announced = participant
            metrics.ROOM_SUBSCRIPTIONS.inc()
            log.info("receiving %s from %s", feed, participant.name)
            self._emit(FeedTrackArrived(participant, feed, tracks[0]))
        except asyncio.CancelledError:
            raise
        except JanusConnectionLost:
            sub.lost = True  # made again once the room connection is back
            return
        except Exception as exc:
            reason = (
                "no_such_feed"
                if isinstance(exc, JanusError) and exc.code == videoroom.ERR_NO_SUCH_FEED
                else "error"
            )
            metrics.ROOM_SUBSCRIBE_FAILURES.labels(reason=reason).inc()
            log.warning("could not receive feed %s: %s", feed, exc)
            if self._subs.get(feed) is sub:
                self.drop(feed)

    @staticmethod
    async def _teardown(sub: Subscription, setup: asyncio.Task[None] | None) -> None:
        if setup is not None and not setup.done():
            setup.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await setup
        if sub.pc is not None:
            await close_quietly(sub.pc)
        if sub.handle is not None:
            with contextlib.suppress(JanusError):
                await sub.handle.detach()
