"""Where the interpreter's meeting takes place: a Janus VideoRoom joined by the bot (`JanusRoom`), or a
`RoomPort` that the embedding program drives itself (`GivenRoom`). Both give the meeting its port and
say how the room is doing, for the interpreter's health.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from aiortc.mediastreams import MediaStreamTrack

from translator_bot.interpreter import port
from translator_bot.interpreter.health import PartHealth
from translator_bot.interpreter.plan import Audience, Member
from translator_bot.room import session as rs
from translator_bot.room.metadata import Participant
from translator_bot.settings import Settings

RoomState = tuple[bool, dict[str, object], list[PartHealth]]


class _Feed:
    """A published interpreter feed, as the meeting sees it."""

    def __init__(self, bridge: RoomBridge, publication: rs.PublishedFeed) -> None:
        self._bridge, self._publication = bridge, publication

    def send_data(self, text: str) -> bool:
        return self._publication.send_data(text)

    @property
    def lost_reason(self) -> str | None:
        return self._publication.lost_reason

    async def relabel(self, lang: str, for_id: Audience) -> None:
        await self._publication.relabel(self._bridge.audience(for_id), lang)

    async def aclose(self) -> None:
        await self._publication.aclose()


class RoomBridge:
    """Presents a RoomSession as the meeting's RoomPort: participants become Members, interpreters
    (ours or another bot's) are invisible, and the room's ids become strings."""

    def __init__(self, room: rs.RoomSession) -> None:
        self._room = room
        self._by_key: dict[str, Participant] = {}

    def participant(self, key: str | None) -> Participant | None:
        return None if key is None else self._by_key.get(key)

    def audience(self, for_id: Audience) -> Participant | tuple[Participant, ...] | None:
        """The room's participants a feed is labelled for (one, a language's listeners, or None: all)."""
        if isinstance(for_id, tuple):
            return tuple(p for key in for_id if (p := self._by_key.get(key)) is not None)
        return self.participant(for_id)

    async def events(self) -> AsyncIterator[port.RoomEvent]:
        async for event in self._room.events():
            translated = self._translate(event)
            if translated is not None:
                yield translated
            if isinstance(event, rs.RoomSessionClosed):
                return

    def _translate(self, event: rs.RoomEvent) -> port.RoomEvent | None:
        match event:
            case rs.ParticipantJoined(participant=p) | rs.ParticipantUpdated(participant=p):
                key = str(p.id)
                if p.is_interpreter:
                    # Someone who turned into an interpreter is no longer a participant to translate.
                    return port.PeerLeft(key) if self._by_key.pop(key, None) is not None else None
                self._by_key[key] = p
                return port.PeerChanged(Member(key, p.name, p.language))
            case rs.ParticipantLeft(participant=p):
                self._by_key.pop(str(p.id), None)
                return port.PeerLeft(str(p.id))
            case rs.FeedTrackArrived(participant=p, feed=feed, track=track):
                return None if p.is_interpreter else port.PeerAudio(str(p.id), track, str(feed))
            case rs.FeedTrackGone(participant=p, feed=feed):
                return port.PeerAudioGone(str(p.id), str(feed))
            case rs.RoomSessionClosed(error=error, ended=ended, reason=reason):
                if ended:
                    return port.MeetingEnded(reason)
                return port.RoomClosed(str(error)) if error is not None else None
        return None

    async def publish_feed(self, track: MediaStreamTrack, *, for_id: Audience, lang: str) -> _Feed:
        publication = await self._room.publish_feed(track, self.audience(for_id), lang)
        return _Feed(self, publication)


class Venue(Protocol):
    """The room as the interpreter holds it: joined before the meeting starts, left after it ends."""

    @property
    def port(self) -> port.RoomPort: ...

    @property
    def name(self) -> str: ...

    async def join(self) -> None: ...

    async def leave(self) -> None: ...

    def state(self) -> RoomState:
        """(in the room, details for /healthz, parts of the room that are not well)."""
        ...


class JanusRoom:
    """The Janus VideoRoom named by the settings, joined (or created) by the bot itself."""

    def __init__(self, settings: Settings, meeting_id: str, *, create_room: bool = False) -> None:
        self._room = rs.RoomSession.from_settings(settings, meeting_id, create_room=create_room)
        self._port = RoomBridge(self._room)

    @property
    def port(self) -> port.RoomPort:
        return self._port

    @property
    def name(self) -> str:
        return str(self._room.room_id)

    async def join(self) -> None:
        await self._room.join()

    async def leave(self) -> None:
        await self._room.leave()

    def state(self) -> RoomState:
        return janus_room_state(self._room)


def janus_room_state(room: rs.RoomSession) -> RoomState:
    """In the room, details for /healthz, and the room's parts that are not well."""
    joined = room.room_id is not None and not room.closed
    # Reconnecting is reported as a degraded part: the lanes keep running and media may still flow
    # (a claimed session keeps its PeerConnections), but the room's events are not arriving.
    status = ("joined" if room.online else "reconnecting") if joined else "not joined"
    details: dict[str, object] = {"room": status, "room_reconnects": room.reconnects}
    parts = [PartHealth("room", "lost", room.control_lost)] if room.control_lost else []
    if joined and not room.online:
        parts.append(PartHealth("room", "reconnecting", "the connection to the room server dropped"))
    return joined, details, parts


class GivenRoom:
    """A RoomPort the embedding program drives: it is in the room for as long as the meeting runs, and
    the program closes its own transport."""

    def __init__(self, room: port.RoomPort, meeting_id: str) -> None:
        self._port, self._name = room, meeting_id
        self._joined = False

    @property
    def port(self) -> port.RoomPort:
        return self._port

    @property
    def name(self) -> str:
        return self._name

    async def join(self) -> None:
        self._joined = True

    async def leave(self) -> None:
        self._joined = False

    def state(self) -> RoomState:
        return self._joined, {"room": "joined" if self._joined else "not joined"}, []
