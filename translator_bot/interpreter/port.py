"""What the meeting needs from the room, and what it hears from it (implemented by translator_bot.room).

The meeting owns this port and the room is adapted to it (app.RoomBridge), so the interpreter can be run
and tested against any room: a fake one in the unit tests, Janus in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from aiortc.mediastreams import MediaStreamTrack

from translator_bot.interpreter.plan import Audience, Member


@dataclass(frozen=True, slots=True)
class PeerChanged:
    """A participant joined or changed name/language (interpreters never reach the meeting)."""

    member: Member


@dataclass(frozen=True, slots=True)
class PeerLeft:
    participant_id: str


@dataclass(frozen=True, slots=True)
class PeerAudio:
    """An audio stream of a participant arrived; `stream` names it among the participant's streams."""

    participant_id: str
    track: MediaStreamTrack
    stream: str = ""


@dataclass(frozen=True, slots=True)
class PeerAudioGone:
    """One audio stream of a participant ended (`stream` empty: all of them)."""

    participant_id: str
    stream: str = ""


@dataclass(frozen=True, slots=True)
class RoomClosed:
    """The room ended under the bot; `reason` is shown to the user as is."""

    reason: str


@dataclass(frozen=True, slots=True)
class MeetingEnded:
    """The meeting is over (room destroyed, nobody left in it): a normal end, like stop()."""

    reason: str


RoomEvent = PeerChanged | PeerLeft | PeerAudio | PeerAudioGone | RoomClosed | MeetingEnded


class Publication(Protocol):
    """One of the bot's feeds in the room. It may also have a `lost_reason` (str | None) attribute:
    set when the room took the feed away (kicked, unpublished, connection failed)."""

    def send_data(self, text: str) -> object: ...

    async def relabel(self, lang: str, for_id: Audience) -> None:
        """Label the feed for another language or audience (a listener switched language, people
        joined or left a per-language feed's audience) without publishing it again."""
        ...

    async def aclose(self) -> None: ...


class RoomPort(Protocol):
    def events(self) -> AsyncIterator[RoomEvent]: ...

    async def publish_feed(self, track: MediaStreamTrack, *, for_id: Audience, lang: str) -> Publication:
        """Publish `track` labelled for one listener, for the listeners of a language (a tuple of
        ids) or for everyone (None), in language `lang`; RoomError if the room refuses it."""
        ...
