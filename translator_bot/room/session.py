"""One meeting from the bot's side: join a VideoRoom, follow its participants, receive and publish audio.

`RoomSession` turns the room server's loose events into a stream of typed ones (participants joining,
changing, leaving; remote audio tracks arriving and going) and publishes the bot's own feeds.
Each remote audio feed gets its own subscriber PeerConnection: Janus reuses freed m-line slots with a
new SSRC and aiortc keeps routing by the first SSRC it saw, so a shared connection goes silent.
The bot never subscribes to its own feeds nor to another interpreter's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection

from translator_bot import metrics
from translator_bot.errors import RoomError
from translator_bot.languages import Language, parse_language
from translator_bot.room import videoroom
from translator_bot.room.janus import (
    JanusConnectionLost,
    JanusError,
    JanusHandle,
    JanusSession,
    JsonObject,
    PluginReply,
)
from translator_bot.room.metadata import (
    Participant,
    ParticipantId,
    Problem,
    interpreter_description,
    interpreter_display,
    parse_participant,
)
from translator_bot.room.peers import IceConfig, close_quietly, from_jsep, new_peer_connection, to_jsep
from translator_bot.settings import Settings

log = logging.getLogger(__name__)

_SUBSCRIBE_ATTEMPTS = 3
_JANUS_UNAUTHORIZED = 403


@dataclass(frozen=True)
class FeedId:
    participant: ParticipantId
    mid: str

    def __str__(self) -> str:
        return f"{self.participant}/{self.mid}"


# --- events ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantJoined:
    participant: Participant


@dataclass(frozen=True)
class ParticipantUpdated:
    participant: Participant
    previous: Participant


@dataclass(frozen=True)
class ParticipantLeft:
    participant: Participant


@dataclass(frozen=True)
class FeedTrackArrived:
    participant: Participant
    feed: FeedId
    track: MediaStreamTrack


@dataclass(frozen=True)
class FeedTrackGone:
    participant: Participant
    feed: FeedId


@dataclass(frozen=True)
class RoomClosed:
    """The last event: `error` is set when the room ended under the bot (server gone, room destroyed)."""

    reason: str
    error: RoomError | None = None


RoomEvent = (
    ParticipantJoined | ParticipantUpdated | ParticipantLeft | FeedTrackArrived | FeedTrackGone | RoomClosed
)


# --- internals ---------------------------------------------------------------------------------------


@dataclass
class _Known:
    """What the room told us about one participant, kept raw so any change can be re-parsed."""

    display: str | None = None
    metadata: object = None
    streams: tuple[videoroom.StreamInfo, ...] = ()
    participant: Participant | None = None


@dataclass
class _Subscription:
    feed: FeedId
    task: asyncio.Task[None] | None = None
    handle: JanusHandle | None = None
    pc: RTCPeerConnection | None = None
    announced: Participant | None = None  # set once FeedTrackArrived went out


@dataclass(frozen=True)
class _SessionLost:
    reason: str


_Inbox = JsonObject | _SessionLost


class Publication:
    """One audio feed the bot publishes, with its own room participant and display name."""

    def __init__(
        self,
        owner: RoomSession,
        handle: JanusHandle,
        pc: RTCPeerConnection,
        participant_id: ParticipantId,
        channel: RTCDataChannel | None,
        display: str,
        description: str,
        mid: str,
    ) -> None:
        self._owner = owner
        self._handle = handle
        self._pc = pc
        self.participant_id = participant_id
        self._channel = channel
        self.display = display
        self.description = description
        self._mid = mid
        self.media_up = asyncio.Event()
        self.closed = False

    def _on_message(self, message: JsonObject) -> None:
        if message.get("janus") == "webrtcup":
            self.media_up.set()
        elif message.get("janus") == "hangup" and not self.closed:
            log.warning(
                "the room server hung up the feed %r (%s)", self.display, message.get("reason", "no reason")
            )

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            await self.media_up.wait()

    def send_data(self, text: str) -> bool:
        """Send text (e.g. a caption) to the feed's subscribers; False if the data channel is not open."""
        if self.closed or self._channel is None or self._channel.readyState != "open":
            return False
        try:
            self._channel.send(text)
        except Exception:
            log.debug("data channel send failed", exc_info=True)
            return False
        return True

    async def relabel(self, for_participant: Participant | None, language: Language | str) -> None:
        """Point the feed at a renamed listener or a new language without re-publishing."""
        lang = _language(language)
        self.display = interpreter_display(self._owner.display_name, for_participant, lang)
        self.description = interpreter_description(
            for_participant.id if for_participant is not None else None, lang
        )
        await videoroom.configure(
            self._handle, descriptions=[(self._mid, self.description)], display=self.display
        )

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._owner._publications.discard(self)
        # `translator-bot web` reads this (and "publishing ... as participant") to tell its page which
        # feeds are the real interpreter's.
        log.info("unpublished %r (participant %s)", self.display, self.participant_id)
        if not self._handle.session.closed:
            with contextlib.suppress(JanusError):
                await videoroom.leave(self._handle)
        await close_quietly(self._pc)
        await self._handle.detach()


def _significant(p: Participant) -> tuple[object, ...]:
    # Where a value came from, or a display change that keeps the name, is not worth an event.
    return (p.name, p.language.tag, p.role, p.for_participant)


def _language(value: Language | str) -> Language:
    return value if isinstance(value, Language) else parse_language(value)


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
        keepalive_interval: float = 25.0,
    ) -> None:
        self.url = url
        self.meeting_id = str(room)
        self.display_name = display_name
        self.default_language = _language(default_language)
        self.ice = ice or IceConfig()
        self._api_secret = api_secret
        self._token = token
        self._admin_key = admin_key
        self.create_room = create_room
        self._keepalive = keepalive_interval
        self.room_id: ParticipantId | None = None
        self.participant_id: ParticipantId | None = None
        self.participants: dict[ParticipantId, Participant] = {}
        self.own_ids: set[ParticipantId] = set()
        self.closed_event = asyncio.Event()
        self.close_reason: str | None = None
        self.error: RoomError | None = None
        self._session: JanusSession | None = None
        self._control: JanusHandle | None = None
        self._private_id: int | None = None
        self._known: dict[ParticipantId, _Known] = {}
        self._subscriptions: dict[FeedId, _Subscription] = {}
        self._publications: set[Publication] = set()
        self._inbox: asyncio.Queue[_Inbox] = asyncio.Queue()
        self._events: asyncio.Queue[RoomEvent] = asyncio.Queue()
        self._loop_task: asyncio.Task[None] | None = None
        self._reported: set[tuple[ParticipantId, tuple[str, str]]] = set()
        self._leaving = False
        self._teardowns: set[asyncio.Task[None]] = set()

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
        )

    # --- joining -----------------------------------------------------------------------------------

    async def join(self) -> None:
        try:
            await self._join()
        except JanusConnectionLost as exc:
            await self._abort()
            raise RoomError(exc.reason) from None
        except JanusError as exc:
            await self._abort()
            if exc.code == _JANUS_UNAUTHORIZED:
                raise RoomError(
                    f"the room server refused the bot: {exc.reason} (check TRANSLATOR_JANUS_API_SECRET"
                    " / TRANSLATOR_JANUS_TOKEN)"
                ) from None
            raise RoomError(videoroom.describe_join_error(exc, self.meeting_id)) from None
        except BaseException:
            await self._abort()
            raise

    async def _join(self) -> None:
        self._session = await JanusSession.connect(
            self.url, api_secret=self._api_secret, token=self._token, keepalive_interval=self._keepalive
        )
        self._session.on_close(lambda reason: self._inbox.put_nowait(_SessionLost(reason)))
        self._control = await self._session.attach(videoroom.PLUGIN, self._inbox.put_nowait)
        self.room_id = await self._resolve_room(self._control)
        self.participant_id = self._new_participant_id()
        self.own_ids.add(self.participant_id)
        joined = await self._join_as(self._control, self.participant_id, f"{self.display_name} [bot]")
        self._private_id = joined.private_id
        log.info("joined meeting %s as participant %s", self.room_id, self.participant_id)
        self._loop_task = asyncio.create_task(self._room_loop(), name="room-events")
        for attendee in joined.attendees:
            self._on_attendee(attendee.id, attendee.display)
        self._on_publishers(joined.publishers)

    async def _resolve_room(self, handle: JanusHandle) -> ParticipantId:
        """Numeric ids are tried as numbers first; a server with string ids rejects them as invalid."""
        text = self.meeting_id.strip()
        if not text:
            raise RoomError("the meeting id is empty")
        candidates: list[ParticipantId] = [int(text)] if text.isdigit() and int(text) > 0 else []
        candidates.append(text)
        usable: ParticipantId | None = None
        for candidate in candidates:
            try:
                if await videoroom.room_exists(handle, candidate):
                    return candidate
            except JanusError as exc:
                if exc.code == videoroom.ERR_INVALID_ELEMENT:
                    continue
                raise
            usable = candidate if usable is None else usable
        if usable is None:
            raise RoomError(
                f"meeting id {self.meeting_id!r} is not valid on this room server (it expects numeric ids)"
            )
        if not self.create_room:
            raise RoomError(
                f"meeting {self.meeting_id!r} does not exist on the room server "
                "(use --create-room to create it)"
            )
        try:
            await videoroom.create_room(handle, usable, admin_key=self._admin_key)
        except JanusError as exc:
            if exc.code != videoroom.ERR_ROOM_EXISTS:  # someone else created it meanwhile: fine
                raise RoomError(
                    f"cannot create meeting {self.meeting_id!r}: {exc.reason}"
                    " (is TRANSLATOR_JANUS_ADMIN_KEY set and right?)"
                ) from None
        log.info("created meeting %s", usable)
        return usable

    def _new_participant_id(self) -> ParticipantId:
        # Choosing our own ids lets us recognise our feeds in events that race the join reply.
        if isinstance(self.room_id, str):
            return f"bot-{secrets.token_hex(6)}"
        return secrets.randbelow(2**52) + 1

    async def _join_as(self, handle: JanusHandle, pid: ParticipantId, display: str) -> videoroom.JoinedRoom:
        assert self.room_id is not None
        reply = await handle.message(
            {"request": "join", "ptype": "publisher", "room": self.room_id, "display": display, "id": pid}
        )
        return videoroom.parse_joined(reply.data)

    # --- events ------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[RoomEvent]:
        """Room events in order; ends after RoomClosed. One consumer only."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, RoomClosed):
                return

    def _emit(self, event: RoomEvent) -> None:
        self._events.put_nowait(event)

    async def _room_loop(self) -> None:
        while True:
            item = await self._inbox.get()
            if isinstance(item, _SessionLost):
                if not self._leaving:
                    await self._close(item.reason, RoomError(f"lost the room server: {item.reason}"))
                return
            self._on_control_message(item)

    def _on_control_message(self, message: JsonObject) -> None:
        kind = message.get("janus")
        if kind == "hangup" or kind == "detached":
            log.warning("the room server dropped the bot's room handle (%s)", kind)
            return
        plugindata = message.get("plugindata")
        data = plugindata.get("data") if isinstance(plugindata, dict) else None
        if not isinstance(data, dict):
            if kind not in ("webrtcup", "media", "slowlink", "trickle"):
                metrics.ROOM_MALFORMED_EVENTS.labels(reason="no_plugindata").inc()
            return
        for event in videoroom.parse_room_event(data):
            self._apply(event)

    def _apply(self, event: videoroom.VideoRoomEvent) -> None:
        if isinstance(event, videoroom.PublishersAnnounced):
            self._on_publishers(event.publishers)
        elif isinstance(event, videoroom.AttendeeJoined):
            self._on_attendee(event.id, event.display)
        elif isinstance(event, videoroom.DisplayChanged):
            if event.id not in self.own_ids:
                self._known.setdefault(event.id, _Known()).display = event.display
                self._refresh(event.id)
        elif isinstance(event, videoroom.FeedUnpublished):
            known = self._known.get(event.id)
            if known is not None:
                known.streams = ()
            self._drop_feeds(event.id)
        elif isinstance(event, (videoroom.ParticipantLeaving, videoroom.ParticipantKicked)):
            if isinstance(event, videoroom.ParticipantKicked) and event.id == self.participant_id:
                self._spawn_close(
                    "the bot was kicked out of the meeting",
                    RoomError("the bot was kicked out of the meeting"),
                )
                return
            self._on_left(event.id)
        elif isinstance(event, videoroom.RoomDestroyed):
            self._spawn_close("the meeting room was destroyed", RoomError("the meeting room was destroyed"))

    def _on_attendee(self, pid: ParticipantId, display: str | None) -> None:
        if pid in self.own_ids:
            return
        known = self._known.setdefault(pid, _Known())
        if display is not None:
            known.display = display
        self._refresh(pid)

    def _on_publishers(self, publishers: tuple[videoroom.PublisherInfo, ...]) -> None:
        for pub in publishers:
            if pub.id in self.own_ids:
                continue
            known = self._known.setdefault(pub.id, _Known())
            if pub.display is not None:
                known.display = pub.display
            known.metadata = pub.metadata
            known.streams = pub.streams
            self._refresh(pub.id)
            self._sync_feeds(pub.id)

    def _refresh(self, pid: ParticipantId) -> None:
        known = self._known[pid]
        participant, problems = parse_participant(
            pid,
            display=known.display,
            metadata=known.metadata,
            descriptions=[s.description for s in known.streams if s.description],
            default_language=self.default_language,
        )
        self._report(pid, problems)
        previous = known.participant
        known.participant = participant
        self.participants[pid] = participant
        if previous is None:
            log.info(
                "participant %s joined: %s%s",
                pid,
                participant.describe(),
                " [interpreter]" if participant.is_interpreter else "",
            )
            self._emit(ParticipantJoined(participant))
        elif _significant(previous) != _significant(participant):
            log.info("participant %s is now %s", pid, participant.describe())
            self._emit(ParticipantUpdated(participant, previous))
            if participant.is_interpreter:
                self._drop_feeds(pid)

    def _report(self, pid: ParticipantId, problems: list[Problem]) -> None:
        for problem in problems:
            key = (pid, problem.key)
            if key in self._reported:
                continue
            self._reported.add(key)
            metrics.ROOM_METADATA_WARNINGS.labels(source=problem.source).inc()
            log.warning(
                "participant %s: %s in %s; using the next source or the default %s",
                pid,
                problem.message,
                problem.source,
                self.default_language.tag,
            )

    def _on_left(self, pid: ParticipantId) -> None:
        self._drop_feeds(pid)
        known = self._known.pop(pid, None)
        self.participants.pop(pid, None)
        if known is not None and known.participant is not None:
            log.info("participant %s left: %s", pid, known.participant.name)
            self._emit(ParticipantLeft(known.participant))

    # --- subscriptions -----------------------------------------------------------------------------

    def _sync_feeds(self, pid: ParticipantId) -> None:
        known = self._known[pid]
        participant = known.participant
        if participant is None or participant.is_interpreter or pid in self.own_ids:
            self._drop_feeds(pid)
            return
        wanted = {FeedId(pid, s.mid) for s in known.streams if s.type == "audio" and not s.disabled}
        for feed in [f for f in self._subscriptions if f.participant == pid and f not in wanted]:
            self._drop_feed(feed)
        for feed in wanted - self._subscriptions.keys():
            sub = _Subscription(feed)
            self._subscriptions[feed] = sub
            sub.task = asyncio.create_task(self._subscribe(sub), name=f"subscribe-{feed}")

    def _drop_feeds(self, pid: ParticipantId) -> None:
        for feed in [f for f in self._subscriptions if f.participant == pid]:
            self._drop_feed(feed)

    def _drop_feed(self, feed: FeedId) -> None:
        sub = self._subscriptions.pop(feed, None)
        if sub is None:
            return  # a second `unpublished`/`leaving` for a feed already gone
        if sub.announced is not None:
            metrics.ROOM_SUBSCRIPTIONS.dec()
            log.info("stopped receiving %s", sub.feed)
            self._emit(FeedTrackGone(self.participants.get(feed.participant, sub.announced), sub.feed))
        previous = sub.task
        sub.task = asyncio.create_task(self._teardown(sub, previous), name=f"unsubscribe-{feed}")
        self._teardowns.add(sub.task)
        sub.task.add_done_callback(self._teardowns.discard)

    async def _subscribe(self, sub: _Subscription) -> None:
        assert self._session is not None and self.room_id is not None
        feed = sub.feed
        try:
            sub.handle = await self._session.attach(
                videoroom.PLUGIN, lambda m: self._on_subscriber_message(feed, m)
            )
            reply: PluginReply | None = None
            for attempt in range(_SUBSCRIBE_ATTEMPTS):
                try:
                    reply = await videoroom.join_subscriber(
                        sub.handle,
                        self.room_id,
                        [videoroom.stream_request(feed.participant, feed.mid)],
                        private_id=self._private_id,
                    )
                    break
                except JanusError as exc:
                    # 428 comes when media is not up yet (or the feed just went); try again briefly.
                    if exc.code != videoroom.ERR_NO_SUCH_FEED or attempt == _SUBSCRIBE_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.25 * (attempt + 1))
            assert reply is not None and reply.jsep is not None
            sub.pc = new_peer_connection(self.ice)
            tracks: list[MediaStreamTrack] = []
            sub.pc.on("track", lambda track: tracks.append(track) if track.kind == "audio" else None)
            await sub.pc.setRemoteDescription(from_jsep(reply.jsep))
            await sub.pc.setLocalDescription(await sub.pc.createAnswer())
            await videoroom.start(sub.handle, to_jsep(sub.pc.localDescription))
            if not tracks:
                raise JanusError(0, "the offer for the feed had no audio track")
            participant = self.participants.get(feed.participant)
            if participant is None:
                raise JanusError(0, "the participant left while subscribing")
            sub.announced = participant
            metrics.ROOM_SUBSCRIPTIONS.inc()
            log.info("receiving %s from %s", feed, participant.name)
            self._emit(FeedTrackArrived(participant, feed, tracks[0]))
        except asyncio.CancelledError:
            raise
        except JanusConnectionLost:
            return  # the room loop reports the lost session
        except Exception as exc:
            reason = (
                "no_such_feed"
                if isinstance(exc, JanusError) and exc.code == videoroom.ERR_NO_SUCH_FEED
                else "error"
            )
            metrics.ROOM_SUBSCRIBE_FAILURES.labels(reason=reason).inc()
            log.warning("could not receive feed %s: %s", feed, exc)
            if self._subscriptions.get(feed) is sub:
                self._drop_feed(feed)

    def _on_subscriber_message(self, feed: FeedId, message: JsonObject) -> None:
        # A hangup on a subscription we still hold means its publisher went without a renegotiation.
        if message.get("janus") == "hangup" and feed in self._subscriptions:
            log.info("the room server hung up feed %s", feed)
            self._drop_feed(feed)

    async def _teardown(self, sub: _Subscription, setup: asyncio.Task[None] | None) -> None:
        if setup is not None and not setup.done():
            setup.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await setup
        if sub.pc is not None:
            await close_quietly(sub.pc)
        if sub.handle is not None:
            with contextlib.suppress(JanusError):
                await sub.handle.detach()

    # --- publishing --------------------------------------------------------------------------------

    async def publish_feed(
        self,
        track: MediaStreamTrack,
        for_participant: Participant | None,
        lang: Language | str,
        *,
        data: bool = True,
    ) -> Publication:
        """Publish an audio track as its own room participant, labelled for one listener and language."""
        if self._session is None or self.room_id is None or self.closed_event.is_set():
            raise RoomError("the bot is not in a meeting")
        language = _language(lang)
        display = interpreter_display(self.display_name, for_participant, language)
        description = interpreter_description(
            for_participant.id if for_participant is not None else None, language
        )
        pid = self._new_participant_id()
        self.own_ids.add(pid)
        handle = await self._session.attach(videoroom.PLUGIN)
        pc = new_peer_connection(self.ice)
        try:
            await self._join_as(handle, pid, display)
            pc.addTransceiver(track, direction="sendonly")
            channel = pc.createDataChannel("captions") if data else None
            await pc.setLocalDescription(await pc.createOffer())
            mid = pc.getTransceivers()[0].mid or "0"
            publication = Publication(self, handle, pc, pid, channel, display, description, mid)
            handle.listener = publication._on_message
            reply = await videoroom.publish(
                handle, to_jsep(pc.localDescription), descriptions=[(mid, description)], display=display
            )
            if reply.jsep is None:
                raise JanusError(0, "the room server accepted the feed without an answer")
            await pc.setRemoteDescription(from_jsep(reply.jsep))
        except BaseException as exc:
            await close_quietly(pc)
            await handle.detach()
            if isinstance(exc, JanusError):
                raise RoomError(f"cannot publish the feed {display!r}: {exc.reason}") from None
            raise
        self._publications.add(publication)
        log.info("publishing %r as participant %s", display, pid)
        return publication

    # --- leaving -----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.closed_event.is_set()

    async def wait_closed(self) -> RoomError | None:
        await self.closed_event.wait()
        return self.error

    def _spawn_close(self, reason: str, error: RoomError | None) -> None:
        task = asyncio.create_task(self._close(reason, error), name="room-close")
        self._teardowns.add(task)
        task.add_done_callback(self._teardowns.discard)

    async def _close(self, reason: str, error: RoomError | None) -> None:
        if self.closed_event.is_set() or self._leaving:
            return
        self._leaving = True
        self.close_reason, self.error = reason, error
        if error is not None:
            log.error("%s", error)
        for feed in list(self._subscriptions):
            self._drop_feed(feed)
        for publication in list(self._publications):
            with contextlib.suppress(Exception):
                await publication.aclose()
        current = asyncio.current_task()
        pending = [t for t in self._teardowns if t is not current]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._control is not None and self._session is not None and not self._session.closed:
            with contextlib.suppress(JanusError):
                await videoroom.leave(self._control)
        if self._session is not None:
            await self._session.destroy()
        if self._loop_task is not None and self._loop_task is not current:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        self.closed_event.set()
        self._emit(RoomClosed(reason, error))

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
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._session is not None:
            await self._session.destroy()
        self.close_reason = "could not join"
        self.closed_event.set()

    async def __aenter__(self) -> RoomSession:
        await self.join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
