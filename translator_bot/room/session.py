"""One meeting from the bot's side: join a VideoRoom, follow its participants, receive and publish audio.

`RoomSession` turns the room server's loose events into a stream of typed ones (`room.events`:
participants joining, changing, leaving; remote audio tracks arriving and going) and publishes the
bot's own feeds. It wires the parts, each in its own module: the line into the room (`control`) and
getting it back (`reconnect`), who is there and what to receive (`roster`, pure), receiving
(`subscriptions`), publishing (`publication`), and when to retry or leave (`lifecycle`, pure). The bot
never receives its own feeds nor another interpreter's.

The session survives its WebSocket to Janus dropping (media does not travel on it): it claims its
Janus session back on a new socket where Janus kept it (`reclaim_session_timeout`), or else joins the
room again, re-subscribes and re-publishes the same feeds with the same labels, for up to
`reconnect_seconds`. The `PublishedFeed` objects the caller holds stay valid throughout and re-bind
to the new room participant, sending the same track. The meeting ends (`RoomSessionClosed.ended`)
when the room is destroyed, is gone when the bot comes back, or has held nobody but interpreters for
`empty_room_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiortc import MediaStreamTrack

from translator_bot import metrics
from translator_bot.errors import RoomError
from translator_bot.languages import Language
from translator_bot.room import videoroom
from translator_bot.room.control import ControlLink, Inbox, JanusAccess, RoomGone, SessionLost
from translator_bot.room.events import (
    FeedId,
    FeedTrackArrived,
    FeedTrackGone,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RoomEvent,
    RoomSessionClosed,
)
from translator_bot.room.janus import (
    EventListener,
    JanusHandle,
    JsonObject,
)
from translator_bot.room.lifecycle import Presence, empty_room_verdict
from translator_bot.room.metadata import (
    Listeners,
    Participant,
    ParticipantId,
)
from translator_bot.room.peers import IceConfig
from translator_bot.room.publication import PublishedFeed, PublishedFeeds, as_language
from translator_bot.room.reconnect import get_back, reconnect
from translator_bot.room.roster import FeedsWanted, Roster, RosterStep
from translator_bot.room.subscriptions import Seat, Subscriptions
from translator_bot.settings import Settings
from translator_bot.tasks import TaskSet

# The session's public face: it and the values it hands out (defined in their own modules).
__all__ = [
    "FeedId",
    "FeedTrackArrived",
    "FeedTrackGone",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantUpdated",
    "PublishedFeed",
    "RoomEvent",
    "RoomSession",
    "RoomSessionClosed",
]

log = logging.getLogger(__name__)

_PRESENCE_CHECK_S = 0.5


class RoomSession:
    """Join with `await room.join()` (RoomError if the room cannot be joined), read `room.events()`,
    and `await room.leave()` on every path (also `async with`)."""

    def __init__(
        self,
        *,
        url: str,
        room: str | int,
        display_name: str = "Interpreter",
        default_language: Language | str = "en",
        ice: IceConfig | None = None,
        api_secret: str | None = None,
        token: str | None = None,
        admin_key: str | None = None,
        create_room: bool = False,
        keepalive_interval: float = 10.0,
        reconnect_seconds: float = 120.0,
        empty_room_seconds: float = 0.0,
    ) -> None:
        self.url = url
        self.meeting_id = str(room)
        self.display_name = display_name
        self.default_language = as_language(default_language)
        self.ice = ice or IceConfig()
        self.create_room = create_room
        self.reconnect_seconds = reconnect_seconds
        self.empty_room_seconds = empty_room_seconds  # 0: never leave for being alone
        self.closed_event = asyncio.Event()
        self.close_reason: str | None = None
        self.error: RoomError | None = None
        self.control_lost: str | None = None  # the room handle went: the bot no longer sees the room
        self.reconnects = 0
        self._roster = Roster(self.default_language)
        self._inbox: Inbox = asyncio.Queue()
        self._link = ControlLink(
            JanusAccess(url, api_secret, token, admin_key, keepalive_interval),
            self.meeting_id,
            display_name,
            create_room=create_room,
            own_ids=self._roster.own_ids,
            inbox=self._inbox,
        )
        self._feeds = Subscriptions(
            ice=self.ice,
            seat=lambda: Seat(self._link.session, self._link.room_id, self._link.private_id),
            emit=self._emit,
            participant_of=self._roster.participants.get,
            on_failed=self._receive_again,
        )
        self._publications = PublishedFeeds()
        self._events: asyncio.Queue[RoomEvent] = asyncio.Queue()
        self._tasks = TaskSet("room session", logger=log)
        self._loop_task: asyncio.Task[None] | None = None
        self._presence_task: asyncio.Task[None] | None = None
        self._leaving = False
        self._presence = Presence(None)

    @classmethod
    def from_settings(cls, settings: Settings, meeting_id: str, *, create_room: bool = False) -> RoomSession:
        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            url=settings.janus_url,
            room=meeting_id,
            display_name=settings.display_name,
            default_language=settings.default_language,
            ice=IceConfig.from_settings(settings),
            api_secret=secret(settings.janus_api_secret),
            token=secret(settings.janus_token),
            admin_key=secret(settings.janus_admin_key),
            create_room=create_room,
            reconnect_seconds=settings.room_reconnect_seconds,
            empty_room_seconds=settings.empty_room_seconds,
        )

    @property
    def room_id(self) -> ParticipantId | None:
        return self._link.room_id

    @property
    def participant_id(self) -> ParticipantId | None:
        """The bot's control participant."""
        return self._link.participant_id

    @property
    def janus_session_id(self) -> int | None:
        """The room server's id of the bot's session (the same after a reclaim, new after a rejoin)."""
        return self._link.session.id if self._link.session is not None else None

    @property
    def participants(self) -> dict[ParticipantId, Participant]:
        return self._roster.participants

    @property
    def own_ids(self) -> set[ParticipantId]:
        return self._roster.own_ids

    @property
    def receiving(self) -> frozenset[FeedId]:
        """The feeds the bot receives or is subscribing to."""
        return self._feeds.feeds

    # --- joining -----------------------------------------------------------------------------------

    async def join(self) -> None:
        try:
            joined = await self._link.open()
        except BaseException:
            await self._abort()
            raise
        self._loop_task = self._tasks.spawn(self._room_loop(), name="room-events")
        self._run(self._roster.apply_snapshot(joined))
        self._link.mark_online(True)
        self._presence_task = self._tasks.spawn(self._presence_loop(), name="room-presence")

    # --- events ------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[RoomEvent]:
        """Room events in order; ends after RoomSessionClosed. One consumer only."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, RoomSessionClosed):
                return

    def _emit(self, event: RoomEvent) -> None:
        self._events.put_nowait(event)

    async def _room_loop(self) -> None:
        while True:
            item = await self._inbox.get()
            if isinstance(item, SessionLost):
                if self._leaving:
                    return
                if item.session is not self._link.session or self.online:
                    continue  # a session already replaced closing late, or a loss already recovered
                if not await self._recover(item.reason):
                    return
                continue
            self._on_control_message(item)

    def _on_control_message(self, message: JsonObject) -> None:
        kind = message.get("janus")
        if kind == "hangup" or kind == "detached":
            log.warning("the room server dropped the bot's room handle (%s)", kind)
            self.control_lost = f"the room server dropped the bot's room handle ({kind})"
            return
        for event in videoroom.parse_message(message):
            self._apply(event)

    def _apply(self, event: videoroom.VideoRoomEvent) -> None:
        pid = getattr(event, "id", None)
        if isinstance(event, videoroom.ParticipantKicked) and pid == self.participant_id:
            error = RoomError("the bot was kicked out of the meeting")
            self._spawn_close("the bot was kicked out of the meeting", error)
        elif isinstance(event, videoroom.RoomDestroyed):
            self._spawn_close("meeting ended: the meeting room was destroyed", None, ended=True)
        elif not self._publications.taken(event, self.participant_id):
            self._run(self._roster.apply(event))

    def _run(self, step: RosterStep) -> None:
        """Do what a roster step asks: report problems, start and stop feeds, tell the owner."""
        for found in step.problems:
            metrics.ROOM_METADATA_WARNINGS.labels(source=found.problem.source).inc()
            log.warning(
                "participant %s: %s in %s; using the next source or the default %s",
                found.participant,
                found.problem.message,
                found.problem.source,
                self.default_language.tag,
            )
        for change in step.changes:
            if isinstance(change, FeedsWanted):
                self._feeds.sync(change)
                continue
            p = change.participant
            if isinstance(change, ParticipantJoined):
                role = " [interpreter]" if p.is_interpreter else ""
                log.info("participant %s joined: %s%s", p.id, p.describe(), role)
            elif isinstance(change, ParticipantUpdated):
                log.info("participant %s is now %s", p.id, p.describe())
            else:
                log.info("participant %s left: %s", p.id, p.name)
            self._emit(change)

    def _receive_again(self, feed: FeedId) -> None:
        """A feed's connection failed: receive it anew if it is still wanted."""
        if self._roster.knows(feed.participant) and not self._leaving:
            pid = feed.participant
            self._feeds.sync(FeedsWanted(pid, self._roster.wanted_feeds(pid), self.participants.get(pid)))

    # --- recovery ----------------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """In the room with a working connection to the room server (False while reconnecting)."""
        return self._link.online

    async def _wait_online(self) -> None:
        while not self.online:
            if self.closed_event.is_set() or self._leaving:
                raise RoomError("the bot is not in a meeting")
            await self._link.wait_up(self.closed_event)

    async def _recover(self, reason: str) -> bool:
        """Get back into the room after the connection to the room server dropped: claim the Janus
        session, or join again. False when the room closed instead (meeting over, or gave up)."""
        self._link.mark_online(False)
        try:
            await reconnect(self._reconnect_once, reason, self.reconnect_seconds)
        except RoomGone as exc:
            await self._close(f"meeting ended: {exc}", None, ended=True)
            return False
        except RoomError as error:
            await self._close(str(error), error)
            return False
        self.reconnects += 1
        self._link.mark_online(True)
        await self._publications.republish()
        return True

    async def _reconnect_once(self) -> str:
        def caught_up(joined: videoroom.JoinedRoom) -> None:
            self._run(self._roster.apply_snapshot(joined))

        return await get_back(self._link, self._feeds, self._publications, caught_up)

    async def _presence_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.online:
                now = loop.time()
                self._presence = self._presence.update(self._roster.people_present(), now)
                verdict = empty_room_verdict(self._presence, now, self.empty_room_seconds)
                if verdict is not None:
                    self._spawn_close(f"meeting ended: {verdict}", None, ended=True)
                    return
            await asyncio.sleep(_PRESENCE_CHECK_S)

    # --- publishing --------------------------------------------------------------------------------

    async def publish_feed(
        self,
        track: MediaStreamTrack,
        for_participant: Listeners,
        lang: Language | str,
        *,
        data: bool = True,
    ) -> PublishedFeed:
        """Publish an audio track as its own room participant, labelled for one listener and language.
        While the room connection is being recovered this waits for it."""
        if self._link.session is None or self.room_id is None or self.closed or self._leaving:
            raise RoomError("the bot is not in a meeting")
        return await self._publications.publish(
            self, track, for_participant, as_language(lang), data=data, wait_online=self._wait_online
        )

    async def join_feed_participant(
        self, listener: EventListener, display: str
    ) -> tuple[JanusHandle, ParticipantId]:
        return await self._link.join_feed_participant(listener, display)

    def forget_feed(self, feed: PublishedFeed) -> None:
        self._publications.discard(feed)

    # --- leaving -----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.closed_event.is_set()

    async def wait_closed(self) -> RoomError | None:
        await self.closed_event.wait()
        return self.error

    def _spawn_close(self, reason: str, error: RoomError | None, *, ended: bool = False) -> None:
        self._tasks.spawn(self._close(reason, error, ended=ended), name="room-close")

    async def _close(self, reason: str, error: RoomError | None, *, ended: bool = False) -> None:
        if self.closed_event.is_set() or self._leaving:
            return
        self._leaving = True
        self._link.mark_online(False)
        self.close_reason, self.error = reason, error
        if error is not None:
            log.error("%s", error)
        elif ended:
            log.info("%s; leaving", reason)
        await self._stop_loops()  # nothing may re-publish now
        self._feeds.drop_all()
        await self._publications.close()
        await self._feeds.close()
        await self._link.close()
        self.closed_event.set()
        self._emit(RoomSessionClosed(reason, error, ended))

    async def _stop_loops(self) -> None:
        """Stop a recovery in progress and the presence watch (but not the task doing the stopping)."""
        current = asyncio.current_task()
        for task in (self._loop_task, self._presence_task):
            if task is not None and task is not current:
                await self._tasks.cancel(task)

    async def leave(self) -> None:
        """Leave the meeting: unsubscribe, unpublish, detach, destroy the session. Safe to call twice."""
        if self.closed_event.is_set():
            return
        if self._leaving:
            await self.closed_event.wait()
            return
        await self._close("left the meeting", None)

    async def _abort(self) -> None:
        self._leaving = True
        await self._stop_loops()
        await self._link.abort()
        self.close_reason = "could not join"
        self.closed_event.set()

    async def __aenter__(self) -> RoomSession:
        await self.join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
