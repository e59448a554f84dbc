"""What a room session tells its owner: participants joining, changing, leaving; remote audio feeds
arriving and going; and, last, the session closing. Plain values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import MediaStreamTrack

from translator_bot.errors import RoomError
from translator_bot.room.metadata import Participant, ParticipantId


@dataclass(frozen=True)
class FeedId:
    """One audio stream of one room participant (its `mid` in the participant's publication)."""

    participant: ParticipantId
    mid: str

    def __str__(self) -> str:
        return f"{self.participant}/{self.mid}"


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
class RoomSessionClosed:
    """The last event. `ended`: the meeting is over (room destroyed or gone, nobody left), a normal
    end; `error`: the room failed under the bot (server unreachable for too long, kicked out)."""

    reason: str
    error: RoomError | None = None
    ended: bool = False


ParticipantEvent = ParticipantJoined | ParticipantUpdated | ParticipantLeft
RoomEvent = ParticipantEvent | FeedTrackArrived | FeedTrackGone | RoomSessionClosed
