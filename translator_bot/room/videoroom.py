"""The VideoRoom plugin's requests and its unsolicited events, as typed values.

Janus reports room changes in loosely shaped `event` messages (a `publishers` list, a `leaving` id,
an `unpublished` id, a bare display change...), possibly several in one message and at any time.
`parse_room_event` turns one message into a list of typed events and never raises on odd input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from translator_bot import metrics
from translator_bot.room.janus import JanusError, JanusHandle, JsonObject, PluginReply
from translator_bot.room.metadata import ParticipantId

log = logging.getLogger(__name__)

PLUGIN = "janus.plugin.videoroom"

# VideoRoom error codes worth naming (janus_videoroom.c).
ERR_NO_SUCH_ROOM = 426
ERR_ROOM_EXISTS = 427
ERR_NO_SUCH_FEED = 428
ERR_UNAUTHORIZED = 433
ERR_INVALID_ELEMENT = 430
ERR_ALREADY_JOINED = 425


@dataclass(frozen=True)
class StreamInfo:
    mid: str
    type: str
    codec: str | None = None
    description: str | None = None
    disabled: bool = False


@dataclass(frozen=True)
class PublisherInfo:
    id: ParticipantId
    display: str | None
    streams: tuple[StreamInfo, ...] = ()
    metadata: object = None

    @property
    def audio_streams(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.streams if s.type == "audio" and not s.disabled)

    @property
    def descriptions(self) -> tuple[str, ...]:
        return tuple(s.description for s in self.streams if s.description)


@dataclass(frozen=True)
class PublishersAnnounced:
    publishers: tuple[PublisherInfo, ...]


@dataclass(frozen=True)
class AttendeeJoined:
    """A participant that joined without publishing (only when the room has notify_joining)."""

    id: ParticipantId
    display: str | None


@dataclass(frozen=True)
class DisplayChanged:
    id: ParticipantId
    display: str | None


@dataclass(frozen=True)
class FeedUnpublished:
    id: ParticipantId


@dataclass(frozen=True)
class ParticipantLeaving:
    id: ParticipantId


@dataclass(frozen=True)
class ParticipantKicked:
    id: ParticipantId


@dataclass(frozen=True)
class RoomDestroyed:
    room: object


VideoRoomEvent = (
    PublishersAnnounced
    | AttendeeJoined
    | DisplayChanged
    | FeedUnpublished
    | ParticipantLeaving
    | ParticipantKicked
    | RoomDestroyed
)


@dataclass(frozen=True)
class JoinedRoom:
    room: ParticipantId
    id: ParticipantId
    private_id: int | None
    publishers: tuple[PublisherInfo, ...]
    attendees: tuple[AttendeeJoined, ...] = field(default=())
    # Janus lists non-publishers only in rooms with notify_joining; without it they are unknown.
    attendees_listed: bool = False


def _participant_id(value: object) -> ParticipantId | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        return value
    return None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _parse_streams(raw: object) -> tuple[StreamInfo, ...]:
    if not isinstance(raw, list):
        return ()
    streams: list[StreamInfo] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        mid = item.get("mid")
        kind = item.get("type")
        if not isinstance(mid, (str, int)) or not isinstance(kind, str):
            continue
        streams.append(
            StreamInfo(
                mid=str(mid),
                type=kind,
                codec=_optional_str(item.get("codec")),
                description=_optional_str(item.get("description")),
                disabled=bool(item.get("disabled", False)),
            )
        )
    return tuple(streams)


def parse_publisher(raw: object) -> PublisherInfo | None:
    if not isinstance(raw, dict):
        return None
    pid = _participant_id(raw.get("id"))
    if pid is None:
        return None
    if raw.get("dummy"):
        return None
    return PublisherInfo(
        id=pid,
        display=_optional_str(raw.get("display")),
        streams=_parse_streams(raw.get("streams")),
        metadata=raw.get("metadata"),
    )


def _publishers(raw: object) -> tuple[PublisherInfo, ...]:
    if not isinstance(raw, list):
        return ()
    parsed = (parse_publisher(item) for item in raw)
    return tuple(p for p in parsed if p is not None)


def _attendees(raw: object) -> tuple[AttendeeJoined, ...]:
    if not isinstance(raw, list):
        return ()
    out: list[AttendeeJoined] = []
    for item in raw:
        if isinstance(item, dict) and (pid := _participant_id(item.get("id"))) is not None:
            out.append(AttendeeJoined(pid, _optional_str(item.get("display"))))
    return tuple(out)


def parse_message(message: JsonObject) -> list[VideoRoomEvent]:
    """Typed events in one Janus message on a VideoRoom handle (media notices carry none)."""
    plugindata = message.get("plugindata")
    data = plugindata.get("data") if isinstance(plugindata, dict) else None
    if not isinstance(data, dict):
        if message.get("janus") not in ("webrtcup", "media", "slowlink", "trickle"):
            metrics.ROOM_MALFORMED_EVENTS.labels(reason="no_plugindata").inc()
        return []
    return parse_room_event(data)


def parse_room_event(data: JsonObject) -> list[VideoRoomEvent]:
    """Typed events in one VideoRoom plugin message; unknown shapes give [] and are counted."""
    kind = data.get("videoroom")
    if kind == "destroyed":
        return [RoomDestroyed(data.get("room"))]
    if kind not in ("event", "joined"):
        if kind not in ("talking", "stopped-talking", "slow_link", "updated", "attached", "success"):
            metrics.ROOM_MALFORMED_EVENTS.labels(reason="unknown_event").inc()
        return []
    events: list[VideoRoomEvent] = []
    if "publishers" in data:
        events.append(PublishersAnnounced(_publishers(data.get("publishers"))))
    if "attendees" in data:
        events.extend(_attendees(data.get("attendees")))
    joining = data.get("joining")
    if isinstance(joining, dict) and (pid := _participant_id(joining.get("id"))) is not None:
        events.append(AttendeeJoined(pid, _optional_str(joining.get("display"))))
    for key, event_type in (("unpublished", FeedUnpublished), ("leaving", ParticipantLeaving)):
        pid = _participant_id(data.get(key))
        # "ok" is Janus confirming our own unpublish/leave, not someone else's.
        if pid is not None and pid != "ok":
            events.append(event_type(pid))
    kicked = _participant_id(data.get("kicked"))
    if kicked is not None:
        events.append(ParticipantKicked(kicked))
    if kind == "event" and "display" in data and (pid := _participant_id(data.get("id"))) is not None:
        events.append(DisplayChanged(pid, _optional_str(data.get("display"))))
    if not events and kind == "event" and not ("configured" in data or "started" in data or "paused" in data):
        log.debug("VideoRoom event with nothing we follow: %s", sorted(data))
    return events


def parse_joined(data: JsonObject) -> JoinedRoom:
    pid = _participant_id(data.get("id"))
    room = _participant_id(data.get("room"))
    if pid is None or room is None:
        raise JanusError(0, "the room server's join answer has no participant id")
    private = data.get("private_id")
    return JoinedRoom(
        room=room,
        id=pid,
        private_id=private if isinstance(private, int) and not isinstance(private, bool) else None,
        publishers=_publishers(data.get("publishers")),
        attendees=_attendees(data.get("attendees")),
        attendees_listed="attendees" in data,
    )


# --- requests ---------------------------------------------------------------------------------------


async def room_exists(handle: JanusHandle, room: ParticipantId) -> bool:
    reply = await handle.message({"request": "exists", "room": room})
    return bool(reply.data.get("exists"))


async def create_room(
    handle: JanusHandle,
    room: ParticipantId,
    *,
    admin_key: str | None,
    publishers: int = 16,
    opus_dtx: bool = False,
) -> None:
    """`opus_dtx`: publishers who ask for Opus DTX get it (needed from Janus 1.3.1; 1.1 grants any ask)."""
    body: JsonObject = {
        "request": "create",
        "room": room,
        "permanent": False,
        "publishers": publishers,
        "audiocodec": "opus",
        "notify_joining": True,
        "description": f"meeting {room}",
    }
    if opus_dtx:
        body["opus_dtx"] = True
    if admin_key:
        body["admin_key"] = admin_key
    await handle.message(body)


async def join_publisher(handle: JanusHandle, room: ParticipantId, display: str) -> JoinedRoom:
    reply = await handle.message({"request": "join", "ptype": "publisher", "room": room, "display": display})
    if reply.data.get("videoroom") != "joined":
        raise JanusError(0, f"unexpected answer to join: {reply.data.get('videoroom')!r}")
    return parse_joined(reply.data)


async def publish(
    handle: JanusHandle,
    jsep: JsonObject,
    *,
    descriptions: Sequence[tuple[str, str]] = (),
    display: str | None = None,
) -> PluginReply:
    body: JsonObject = {"request": "publish"}
    if descriptions:
        body["descriptions"] = [{"mid": mid, "description": text} for mid, text in descriptions]
    if display is not None:
        body["display"] = display
    return await handle.message(body, jsep)


async def configure(
    handle: JanusHandle,
    *,
    descriptions: Sequence[tuple[str, str]] = (),
    display: str | None = None,
    metadata: JsonObject | None = None,
) -> None:
    body: JsonObject = {"request": "configure"}
    if descriptions:
        body["descriptions"] = [{"mid": mid, "description": text} for mid, text in descriptions]
    if display is not None:
        body["display"] = display
    if metadata is not None:
        body["metadata"] = metadata  # honoured by Janus >= 1.3, ignored by older ones
    await handle.message(body)


async def join_subscriber(
    handle: JanusHandle,
    room: ParticipantId,
    streams: Sequence[JsonObject],
    *,
    private_id: int | None = None,
) -> PluginReply:
    body: JsonObject = {"request": "join", "ptype": "subscriber", "room": room, "streams": list(streams)}
    if private_id is not None:
        body["private_id"] = private_id
    reply = await handle.message(body)
    if reply.jsep is None:
        raise JanusError(0, "the room server sent no offer for the subscription")
    return reply


async def start(handle: JanusHandle, jsep: JsonObject) -> None:
    await handle.message({"request": "start"}, jsep)


async def leave(handle: JanusHandle) -> None:
    await handle.message({"request": "leave"}, timeout_s=3.0)


def stream_request(feed: ParticipantId, mid: str | None = None) -> JsonObject:
    request: JsonObject = {"feed": feed}
    if mid is not None:
        request["mid"] = mid
    return request


def describe_join_error(exc: JanusError, room: object) -> str:
    if exc.code == ERR_NO_SUCH_ROOM:
        return f"meeting {room!r} does not exist on the room server (use --create-room to create it)"
    if exc.code == ERR_UNAUTHORIZED:
        return f"the room server refused to let the bot into meeting {room!r}: {exc.reason}"
    return f"cannot join meeting {room!r}: {exc.reason}"
