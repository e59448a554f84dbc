"""One meeting from the bot's side: join a VideoRoom, follow its participants, receive and publish audio.

`RoomSession` turns the room server's loose events into a stream of typed ones (participants joining,
changing, leaving; remote audio tracks arriving and going) and publishes the bot's own feeds.
Each remote audio feed gets its own subscriber PeerConnection: Janus reuses freed m-line slots with a
new SSRC and aiortc keeps routing by the first SSRC it saw, so a shared connection goes silent.
The bot never subscribes to its own feeds nor to another interpreter's.

The session survives its WebSocket to Janus dropping (media does not travel on it): it claims its
Janus session back on a new socket where Janus kept it (`reclaim_session_timeout`), or else joins the
room again, re-subscribes and re-publishes the same feeds with the same labels, for up to
`reconnect_seconds`. The `Publication` objects the caller holds stay valid throughout and re-bind to
the new room participant, sending the same track. The meeting ends (`RoomClosed.ended`) when the
room is destroyed, is gone when the bot comes back, or has held nobody but interpreters for
`empty_room_seconds`.
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
from aiortc.mediastreams import MediaStreamError

from translator_bot import metrics
from translator_bot.errors import RoomError
from translator_bot.languages import Language, parse_language
from translator_bot.room import videoroom
from translator_bot.room.janus import (
    JanusConnectionLost,
    JanusError,
    JanusHandle,
    JanusSession,
    JanusSessionGone,
    JsonObject,
    PluginReply,
)
from translator_bot.room.lifecycle import Presence, empty_room_verdict, next_attempt_at, reconnect_delay
from translator_bot.room.metadata import (
    Listeners,
    Participant,
    ParticipantId,
    Problem,
    interpreter_description,
    interpreter_display,
    listener_ids,
    parse_participant,
)
from translator_bot.room.peers import IceConfig, close_quietly, from_jsep, new_peer_connection, to_jsep
from translator_bot.settings import Settings

log = logging.getLogger(__name__)

_SUBSCRIBE_ATTEMPTS = 3
_JANUS_UNAUTHORIZED = 403
_PRESENCE_CHECK_S = 0.5


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
    """The last event. `ended`: the meeting is over (room destroyed or gone, nobody left), a normal
    end; `error`: the room failed under the bot (server unreachable for too long, kicked out)."""

    reason: str
    error: RoomError | None = None
    ended: bool = False


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
    lost: bool = False  # its setup failed because the room connection dropped: redo it


@dataclass(frozen=True)
class _SessionLost:
    session: JanusSession
    reason: str


class _RoomGone(Exception):
    """The room no longer exists on the server: the meeting is over."""


class _Relay(MediaStreamTrack):
    """What one PeerConnection sends of a published track.

    aiortc stops the track a sender was given when that sender ends (its PeerConnection closed or
    hung up by the server), so each PeerConnection gets its own relay and the feed's own track (the
    meeting's playout) lives on to be sent by the next one after a re-publish."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self._source = source

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._source.recv()


_Inbox = JsonObject | _SessionLost


class Publication:
    """One audio feed the bot publishes, with its own room participant and display name.

    It outlives the room connection: after a re-join it is published again (a new participant id)
    with the same track and labels; a relabel made while the room was away is applied on return."""

    def __init__(
        self, owner: RoomSession, track: MediaStreamTrack, display: str, description: str, data: bool
    ) -> None:
        self._owner = owner
        self.track = track
        self.display = display
        self.description = description
        self._data = data
        self.participant_id: ParticipantId | None = None
        self._handle: JanusHandle | None = None
        self._pc: RTCPeerConnection | None = None
        self._relay: _Relay | None = None
        self._channel: RTCDataChannel | None = None
        self._mid = "0"
        self._published: tuple[str, str] | None = None  # the labels the room server has
        self._lock = asyncio.Lock()
        self.publish_count = 0
        self.media_up = asyncio.Event()
        self.closed = False
        self._lost: str | None = None

    @property
    def lost_reason(self) -> str | None:
        """Why the room no longer carries this feed (None: it does, as far as the bot can tell)."""
        if (
            self._lost is None
            and not self.closed
            and self._pc is not None
            and self._pc.connectionState == "failed"
        ):
            self._lost = "its connection to the room server failed"
        return self._lost

    def lost(self, reason: str) -> None:
        if self._lost is None and not self.closed:
            self._lost = reason
            log.warning("the feed %r is gone: %s", self.display, reason)

    def _on_message(self, message: JsonObject) -> None:
        if message.get("janus") == "webrtcup":
            self.media_up.set()
        elif message.get("janus") == "hangup" and not self.closed:
            self.lost(f"the room server hung up the feed ({message.get('reason', 'no reason')})")

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

    async def relabel(self, for_participant: Listeners, language: Language | str) -> None:
        """Point the feed at a renamed listener or a new language without re-publishing. With the room
        away it is applied when the room is back."""
        lang = _language(language)
        self.display = interpreter_display(self._owner.display_name, for_participant, lang)
        self.description = interpreter_description(listener_ids(for_participant), lang)
        if not self._owner.online:
            return
        with contextlib.suppress(JanusConnectionLost):
            await self._ensure()

    async def _ensure(self) -> None:
        """Published, with the current labels, on the room's current session."""
        async with self._lock:
            if self.closed:
                return
            if self._handle is None:
                await self._bind()
                if self.closed:  # closed while it was being published
                    await self._unbind()
                    return
            labels = (self.display, self.description)
            if self._published != labels:
                assert self._handle is not None
                await videoroom.configure(
                    self._handle, descriptions=[(self._mid, labels[1])], display=labels[0]
                )
                self._published = labels

    async def _bind(self) -> None:
        owner = self._owner
        session = owner._session
        if session is None:
            raise JanusConnectionLost("the bot is not connected to the room server")
        pid = owner._new_participant_id()
        owner.own_ids.add(pid)
        labels = (self.display, self.description)
        self.media_up.clear()
        handle = await session.attach(videoroom.PLUGIN, self._on_message)
        relay = _Relay(self.track)
        pc = new_peer_connection(owner.ice)
        try:
            await owner._join_as(handle, pid, labels[0])
            pc.addTransceiver(relay, direction="sendonly")
            channel = pc.createDataChannel("captions") if self._data else None
            await pc.setLocalDescription(await pc.createOffer())
            mid = pc.getTransceivers()[0].mid or "0"
            reply = await videoroom.publish(
                handle, to_jsep(pc.localDescription), descriptions=[(mid, labels[1])], display=labels[0]
            )
            if reply.jsep is None:
                raise JanusError(0, "the room server accepted the feed without an answer")
            await pc.setRemoteDescription(from_jsep(reply.jsep))
        except BaseException:
            relay.stop()
            await close_quietly(pc)
            await handle.detach()
            raise
        self._handle, self._pc, self._relay, self._channel, self._mid = handle, pc, relay, channel, mid
        self.participant_id = pid
        self._published = labels
        self.publish_count += 1
        # `translator-bot web` reads this line (and "unpublished ... (participant N)") to tell its page
        # which feeds are the real interpreter's: a re-publish after a re-join has a new participant id.
        verb = "publishing" if self.publish_count == 1 else "re-published"
        log.info("%s %r as participant %s", verb, labels[0], pid)

    async def _unbind(self) -> None:
        """Forget the room participant of a session that is gone (Janus unpublished it already)."""
        handle, pc, relay = self._handle, self._pc, self._relay
        if handle is not None:
            log.info("unpublished %r (participant %s)", self.display, self.participant_id)
        self._handle = self._pc = self._relay = self._channel = None
        self._published = None
        if relay is not None:
            relay.stop()
        if pc is not None:
            await close_quietly(pc)
        if handle is not None:
            await handle.detach()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._owner._publications.discard(self)
        handle = self._handle
        if handle is not None and handle.session.linked:
            with contextlib.suppress(JanusError):
                await videoroom.leave(handle)
        await self._unbind()


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
        keepalive_interval: float = 10.0,
        reconnect_seconds: float = 120.0,
        empty_room_seconds: float = 0.0,
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
        # Janus counts a lost session's claim window from its last request: frequent keepalives keep
        # a claim possible even with a short reclaim_session_timeout.
        self._keepalive = keepalive_interval
        self.reconnect_seconds = reconnect_seconds
        self.empty_room_seconds = empty_room_seconds  # 0: never leave for being alone
        self.room_id: ParticipantId | None = None
        self.participant_id: ParticipantId | None = None
        self.participants: dict[ParticipantId, Participant] = {}
        self.own_ids: set[ParticipantId] = set()
        self.closed_event = asyncio.Event()
        self.close_reason: str | None = None
        self.error: RoomError | None = None
        self.control_lost: str | None = None  # the room handle went: the bot no longer sees the room
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
        self._online = asyncio.Event()  # joined, and the room server's socket is up
        self._presence = Presence(None)
        self._presence_task: asyncio.Task[None] | None = None
        self.reconnects = 0

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
        self._session = await self._connect()
        self._control = await self._session.attach(videoroom.PLUGIN, self._inbox.put_nowait)
        self.room_id = await self._resolve_room(self._control)
        joined = await self._join_control(self._control)
        log.info("joined meeting %s as participant %s", self.room_id, self.participant_id)
        self._loop_task = asyncio.create_task(self._room_loop(), name="room-events")
        self._apply_snapshot(joined)
        self._online.set()
        self._presence_task = asyncio.create_task(self._presence_loop(), name="room-presence")

    async def _connect(self) -> JanusSession:
        holder: list[JanusSession] = []

        def transport_lost(reason: str) -> None:
            # Synchronously: nothing may try the dead socket again before the room loop recovers.
            self._online.clear()
            if holder:
                self._inbox.put_nowait(_SessionLost(holder[0], reason))

        session = await JanusSession.connect(
            self.url,
            api_secret=self._api_secret,
            token=self._token,
            keepalive_interval=self._keepalive,
            on_transport_lost=transport_lost,
        )
        holder.append(session)

        def session_closed(reason: str) -> None:
            self._online.clear()
            self._inbox.put_nowait(_SessionLost(session, reason))

        session.on_close(session_closed)
        return session

    async def _join_control(self, handle: JanusHandle) -> videoroom.JoinedRoom:
        """Join as the bot's control participant (it publishes nothing, it follows the room)."""
        pid = self._new_participant_id()
        self.own_ids.add(pid)
        joined = await self._join_as(handle, pid, f"{self.display_name} [bot]")
        self.participant_id, self._private_id = pid, joined.private_id
        return joined

    def _apply_snapshot(self, joined: videoroom.JoinedRoom) -> None:
        """Bring what we know of the room in line with a join answer's full list of participants
        (after a reconnect, events sent while the bot was away are lost)."""
        publishers = {p.id for p in joined.publishers}
        attendees = {a.id for a in joined.attendees}
        for pid, known in list(self._known.items()):
            if pid in publishers or pid in self.own_ids:
                continue
            if pid in attendees or (not joined.attendees_listed and not known.streams):
                if known.streams:
                    known.streams = ()
                    self._drop_feeds(pid)
                continue
            self._on_left(pid)
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
                if self._leaving:
                    return
                if item.session is not self._session or self.online:
                    continue  # a session already replaced closing late, or a loss already recovered
                if not await self._recover(item.reason):
                    return
                continue
            self._on_control_message(item)

    # --- recovery ------------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """In the room with a working connection to the room server (False while reconnecting)."""
        return self._online.is_set() and self._session is not None and self._session.linked

    async def _wait_online(self) -> None:
        while not self.online:
            if self.closed_event.is_set() or self._leaving:
                raise RoomError("the bot is not in a meeting")
            if self._online.is_set():
                self._online.clear()  # the socket went and the room loop has yet to hear of it
            waiters = {
                asyncio.ensure_future(self._online.wait()),
                asyncio.ensure_future(self.closed_event.wait()),
            }
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            await asyncio.sleep(0)

    async def _recover(self, reason: str) -> bool:
        """Get back into the room after the connection to the room server dropped: claim the Janus
        session, or join again. False when the room closed instead (meeting over, or gave up)."""
        self._online.clear()
        loop = asyncio.get_running_loop()
        lost_at = loop.time()
        log.warning(
            "lost the connection to the room server (%s); reconnecting (giving up after %g s)",
            reason,
            self.reconnect_seconds,
        )
        attempt, last_error = 0, reason
        while True:
            try:
                how = await self._reconnect_once()
                break
            except _RoomGone as exc:
                await self._close(f"meeting ended: {exc}", None, ended=True)
                return False
            except JanusError as exc:
                last_error = exc.reason
                log.info("reconnecting to the room server failed: %s", exc.reason)
            except Exception as exc:
                # A bug must not leave the bot in a room it can no longer follow: count it as a
                # failed attempt, and the window still bounds the whole.
                last_error = f"{type(exc).__name__}: {exc}"
                log.exception("reconnecting to the room server failed")
            attempt += 1
            now = loop.time()
            at = next_attempt_at(lost_at, now, reconnect_delay(attempt), self.reconnect_seconds)
            if at is None:
                error = RoomError(
                    f"lost the room server: {reason}; gave up after {self.reconnect_seconds:g} s"
                    f" ({last_error})"
                )
                await self._close(str(error), error)
                return False
            await asyncio.sleep(at - now)
        self.reconnects += 1
        log.info("%s after %.1f s", how, loop.time() - lost_at)
        self._online.set()
        for publication in list(self._publications):
            try:
                await publication._ensure()
            except JanusConnectionLost:
                return True  # dropped again: the next _SessionLost recovers it
            except JanusError as exc:
                log.error("cannot re-publish the feed %r: %s", publication.display, exc.reason)
        return True

    async def _reconnect_once(self) -> str:
        session = self._session
        if session is not None and not session.closed:
            try:
                await session.reclaim()
            except JanusSessionGone:
                log.info("the room server no longer has the bot's session: joining the meeting again")
            else:
                await self._resync()
                return f"reclaimed the room server session {session.id} (same feeds and subscriptions)"
        await self._rejoin()
        return f"rejoined meeting {self.room_id} as participant {self.participant_id}"

    async def _resync(self) -> None:
        """After a claim: the session, its feeds and subscriptions are intact, but the room's events of
        the gap are lost; a new control participant gets the full list of who is there now."""
        assert self._session is not None
        control = await self._session.attach(videoroom.PLUGIN, self._inbox.put_nowait)
        try:
            joined = await self._join_control_checked(control)
        except BaseException:
            with contextlib.suppress(JanusError):
                await control.detach()
            raise
        old, self._control = self._control, control
        if old is not None:
            with contextlib.suppress(JanusError):
                await videoroom.leave(old)
            await old.detach()
        for feed, sub in list(self._subscriptions.items()):
            if sub.lost:
                self._drop_feed(feed)
        self._apply_snapshot(joined)

    async def _rejoin(self) -> None:
        """The Janus session is gone with everything in it: a new session, a new control participant,
        every subscription made again; the feeds are re-published once online."""
        for feed in list(self._subscriptions):
            self._drop_feed(feed)
        for publication in list(self._publications):
            await publication._unbind()
        old = self._session
        if old is not None:
            await old.destroy()
        session = await self._connect()
        try:
            control = await session.attach(videoroom.PLUGIN, self._inbox.put_nowait)
            joined = await self._join_control_checked(control)
        except BaseException:
            await session.destroy()
            raise
        self._session, self._control = session, control
        self._apply_snapshot(joined)

    async def _join_control_checked(self, handle: JanusHandle) -> videoroom.JoinedRoom:
        assert self.room_id is not None
        try:
            if not await videoroom.room_exists(handle, self.room_id):
                raise _RoomGone(f"meeting {self.room_id} no longer exists")
            return await self._join_control(handle)
        except JanusError as exc:
            if exc.code == videoroom.ERR_NO_SUCH_ROOM:
                raise _RoomGone(f"meeting {self.room_id} no longer exists") from None
            raise

    # --- presence ------------------------------------------------------------------------------

    def _people_present(self) -> bool:
        return any(not p.is_interpreter for p in self.participants.values())

    async def _presence_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.online:
                now = loop.time()
                self._presence = self._presence.update(self._people_present(), now)
                verdict = empty_room_verdict(self._presence, now, self.empty_room_seconds)
                if verdict is not None:
                    self._spawn_close(f"meeting ended: {verdict}", None, ended=True)
                    return
            await asyncio.sleep(_PRESENCE_CHECK_S)

    def _on_control_message(self, message: JsonObject) -> None:
        kind = message.get("janus")
        if kind == "hangup" or kind == "detached":
            log.warning("the room server dropped the bot's room handle (%s)", kind)
            self.control_lost = f"the room server dropped the bot's room handle ({kind})"
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
        if self._own_feed_taken(event):
            return
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
            self._spawn_close("meeting ended: the meeting room was destroyed", None, ended=True)

    def _own_feed_taken(self, event: videoroom.VideoRoomEvent) -> bool:
        """Marks one of the bot's feeds lost when the room unpublishes or kicks it."""
        taken = {
            videoroom.FeedUnpublished: "unpublished by the room server",
            videoroom.ParticipantKicked: "kicked out of the meeting",
            videoroom.ParticipantLeaving: "removed from the meeting",
        }
        reason = taken.get(type(event))
        pid = getattr(event, "id", None)
        if reason is None or pid == self.participant_id:
            return False
        for publication in self._publications:
            if publication.participant_id == pid:
                publication.lost(reason)
                return True
        return False

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
            sub.pc.on("connectionstatechange", lambda: self._on_subscriber_state(sub))
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
            if self._subscriptions.get(feed) is sub:
                self._drop_feed(feed)

    def _on_subscriber_state(self, sub: _Subscription) -> None:
        # A failed connection never delivers again (aiortc keeps its track open and silent): receive
        # the feed anew.
        if (
            sub.pc is None
            or sub.pc.connectionState != "failed"
            or self._subscriptions.get(sub.feed) is not sub
        ):
            return
        log.warning("the connection receiving %s failed; subscribing again", sub.feed)
        metrics.ROOM_SUBSCRIBE_FAILURES.labels(reason="connection_failed").inc()
        self._drop_feed(sub.feed)
        if sub.feed.participant in self._known and not self._leaving:
            self._sync_feeds(sub.feed.participant)

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
        for_participant: Listeners,
        lang: Language | str,
        *,
        data: bool = True,
    ) -> Publication:
        """Publish an audio track as its own room participant, labelled for one listener and language.
        While the room connection is being recovered this waits for it."""
        if self._session is None or self.room_id is None or self.closed_event.is_set() or self._leaving:
            raise RoomError("the bot is not in a meeting")
        language = _language(lang)
        display = interpreter_display(self.display_name, for_participant, language)
        description = interpreter_description(listener_ids(for_participant), language)
        publication = Publication(self, track, display, description, data)
        self._publications.add(publication)
        try:
            while True:
                await self._wait_online()
                try:
                    await publication._ensure()
                    return publication
                except JanusConnectionLost:
                    continue  # the room loop recovers the connection; try again once it has
        except BaseException as exc:
            self._publications.discard(publication)
            publication.closed = True
            await publication._unbind()
            if isinstance(exc, JanusError):
                raise RoomError(f"cannot publish the feed {display!r}: {exc.reason}") from None
            raise

    # --- leaving -----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.closed_event.is_set()

    async def wait_closed(self) -> RoomError | None:
        await self.closed_event.wait()
        return self.error

    def _spawn_close(self, reason: str, error: RoomError | None, *, ended: bool = False) -> None:
        task = asyncio.create_task(self._close(reason, error, ended=ended), name="room-close")
        self._teardowns.add(task)
        task.add_done_callback(self._teardowns.discard)

    async def _close(self, reason: str, error: RoomError | None, *, ended: bool = False) -> None:
        if self.closed_event.is_set() or self._leaving:
            return
        self._leaving = True
        self._online.clear()
        self.close_reason, self.error = reason, error
        if error is not None:
            log.error("%s", error)
        elif ended:
            log.info("%s; leaving", reason)
        current = asyncio.current_task()
        # Stop a recovery in progress and the presence watch first: nothing may re-publish now.
        for task in (self._loop_task, self._presence_task):
            if task is not None and task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for feed in list(self._subscriptions):
            self._drop_feed(feed)
        for publication in list(self._publications):
            with contextlib.suppress(Exception):
                await publication.aclose()
        pending = [t for t in self._teardowns if t is not current]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._control is not None and self._session is not None and self._session.linked:
            with contextlib.suppress(JanusError):
                await videoroom.leave(self._control)
        if self._session is not None:
            await self._session.destroy()
        self.closed_event.set()
        self._emit(RoomClosed(reason, error, ended))

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
        for task in (self._loop_task, self._presence_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._session is not None:
            await self._session.destroy()
        self.close_reason = "could not join"
        self.closed_event.set()

    async def __aenter__(self) -> RoomSession:
        await self.join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
