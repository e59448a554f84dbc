"""The bot's line into one room: its Janus session and its control participant.

The control participant publishes nothing; it is how the bot follows the room (its events arrive in
`inbox`). After the WebSocket to Janus drops, the line is restored one of two ways: `reclaim()` claims
the same Janus session on a new socket (feeds and subscriptions intact) and `replace_control()` joins a
fresh control participant to learn who is there now; or `rejoin()` starts over with a new session.
When to try and when to give up is decided in `lifecycle`; the room session drives the attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass

from translator_bot.errors import RoomError
from translator_bot.room import videoroom
from translator_bot.room.janus import (
    EventListener,
    JanusConnectionLost,
    JanusError,
    JanusHandle,
    JanusSession,
    JsonObject,
)
from translator_bot.room.metadata import ParticipantId

log = logging.getLogger("translator_bot.room.session")  # one logger for everything a room session says


_JANUS_UNAUTHORIZED = 403


@dataclass(frozen=True)
class SessionLost:
    """The Janus session `session` lost its socket or closed: the room loop recovers (or ends)."""

    session: JanusSession
    reason: str


class RoomGone(Exception):
    """The room no longer exists on the server: the meeting is over."""


Inbox = asyncio.Queue[JsonObject | SessionLost]


@dataclass(frozen=True)
class JanusAccess:
    url: str
    api_secret: str | None = None
    token: str | None = None
    admin_key: str | None = None
    # Janus counts a lost session's claim window from its last request: frequent keepalives keep
    # a claim possible even with a short reclaim_session_timeout.
    keepalive_interval: float = 10.0

    def __repr__(self) -> str:
        return "JanusAccess(***)"  # the URL may carry a password; the rest are secrets


class ControlLink:
    """`open()` once; then `reclaim()` + `replace_control()`, or `rejoin()`, after a loss; `close()`."""

    def __init__(
        self,
        access: JanusAccess,
        meeting_id: str,
        display_name: str,
        *,
        create_room: bool,
        own_ids: set[ParticipantId],
        inbox: Inbox,
    ) -> None:
        self._access = access
        self.meeting_id = meeting_id
        self._display_name = display_name
        self._create_room = create_room
        self._own_ids = own_ids
        self._inbox = inbox
        self._up = asyncio.Event()  # joined, and the room server's socket is up
        self.session: JanusSession | None = None
        self.control: JanusHandle | None = None
        self.room_id: ParticipantId | None = None
        self.participant_id: ParticipantId | None = None
        self.private_id: int | None = None

    @property
    def online(self) -> bool:
        """In the room with a working connection to the room server (False while reconnecting)."""
        return self._up.is_set() and self.session is not None and self.session.linked

    def mark_online(self, up: bool) -> None:
        if up:
            self._up.set()
        else:
            self._up.clear()

    async def wait_up(self, closed: asyncio.Event) -> None:
        """Until the line is marked up again, or `closed` is set."""
        if self._up.is_set():
            self._up.clear()  # the socket went and the room loop has yet to hear of it
        waiters = {asyncio.ensure_future(self._up.wait()), asyncio.ensure_future(closed.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        await asyncio.sleep(0)

    async def open(self) -> videoroom.JoinedRoom:
        """Connect and join the meeting (RoomError, saying why not, if the bot cannot)."""
        try:
            return await self._open()
        except JanusConnectionLost as exc:
            raise RoomError(exc.reason) from None
        except JanusError as exc:
            if exc.code == _JANUS_UNAUTHORIZED:
                raise RoomError(
                    f"the room server refused the bot: {exc.reason} (check TRANSLATOR_JANUS_API_SECRET"
                    " / TRANSLATOR_JANUS_TOKEN)"
                ) from None
            raise RoomError(videoroom.describe_join_error(exc, self.meeting_id)) from None

    async def _open(self) -> videoroom.JoinedRoom:
        self.session = await self._connect()
        self.control = await self.session.attach(videoroom.PLUGIN, self._inbox.put_nowait)
        self.room_id = await self._resolve_room(self.control)
        joined = await self._join_control(self.control)
        log.info("joined meeting %s as participant %s", self.room_id, self.participant_id)
        return joined

    async def reclaim(self) -> None:
        """Claim the same Janus session on a new socket (JanusSessionGone: Janus no longer has it)."""
        assert self.session is not None
        await self.session.reclaim()

    async def replace_control(self) -> videoroom.JoinedRoom:
        """After a claim: the session, its feeds and subscriptions are intact, but the room's events of
        the gap are lost; a new control participant gets the full list of who is there now."""
        assert self.session is not None
        control = await self.session.attach(videoroom.PLUGIN, self._inbox.put_nowait)
        try:
            joined = await self._join_control_checked(control)
        except BaseException:
            with contextlib.suppress(JanusError):
                await control.detach()
            raise
        old, self.control = self.control, control
        if old is not None:
            with contextlib.suppress(JanusError):
                await videoroom.leave(old)
            await old.detach()
        return joined

    async def rejoin(self) -> videoroom.JoinedRoom:
        """The Janus session is gone with everything in it: a new session and control participant."""
        old = self.session
        if old is not None:
            await old.destroy()
        session = await self._connect()
        try:
            control = await session.attach(videoroom.PLUGIN, self._inbox.put_nowait)
            joined = await self._join_control_checked(control)
        except BaseException:
            await session.destroy()
            raise
        self.session, self.control = session, control
        return joined

    async def join_feed_participant(
        self, listener: EventListener, display: str
    ) -> tuple[JanusHandle, ParticipantId]:
        """A new participant of the bot's (on its own handle) to publish one feed as."""
        if self.session is None:
            raise JanusConnectionLost("the bot is not connected to the room server")
        pid = self._new_participant_id()
        self._own_ids.add(pid)
        handle = await self.session.attach(videoroom.PLUGIN, listener)
        try:
            await self._join_as(handle, pid, display)
        except BaseException:
            await handle.detach()
            raise
        return handle, pid

    async def close(self) -> None:
        """Leave with the control participant (if the room server is reachable) and end the session."""
        if self.control is not None and self.session is not None and self.session.linked:
            with contextlib.suppress(JanusError):
                await videoroom.leave(self.control)
        if self.session is not None:
            await self.session.destroy()

    async def abort(self) -> None:
        if self.session is not None:
            await self.session.destroy()

    # --- internals ---------------------------------------------------------------------------------

    async def _connect(self) -> JanusSession:
        holder: list[JanusSession] = []

        def transport_lost(reason: str) -> None:
            # Synchronously: nothing may try the dead socket again before the room loop recovers.
            self._up.clear()
            if holder:
                self._inbox.put_nowait(SessionLost(holder[0], reason))

        access = self._access
        session = await JanusSession.connect(
            access.url,
            api_secret=access.api_secret,
            token=access.token,
            keepalive_interval=access.keepalive_interval,
            on_transport_lost=transport_lost,
        )
        holder.append(session)

        def session_closed(reason: str) -> None:
            self._up.clear()
            self._inbox.put_nowait(SessionLost(session, reason))

        session.on_close(session_closed)
        return session

    async def _join_control(self, handle: JanusHandle) -> videoroom.JoinedRoom:
        """Join as the bot's control participant (it publishes nothing, it follows the room)."""
        pid = self._new_participant_id()
        self._own_ids.add(pid)
        joined = await self._join_as(handle, pid, f"{self._display_name} [bot]")
        self.participant_id, self.private_id = pid, joined.private_id
        return joined

    async def _join_control_checked(self, handle: JanusHandle) -> videoroom.JoinedRoom:
        assert self.room_id is not None
        try:
            if not await videoroom.room_exists(handle, self.room_id):
                raise RoomGone(f"meeting {self.room_id} no longer exists")
            return await self._join_control(handle)
        except JanusError as exc:
            if exc.code == videoroom.ERR_NO_SUCH_ROOM:
                raise RoomGone(f"meeting {self.room_id} no longer exists") from None
            raise

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
        if not self._create_room:
            raise RoomError(
                f"meeting {self.meeting_id!r} does not exist on the room server "
                "(use --create-room to create it)"
            )
        try:
            await videoroom.create_room(handle, usable, admin_key=self._access.admin_key)
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
