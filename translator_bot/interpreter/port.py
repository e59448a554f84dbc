"""The meeting's port to a room: what the interpreter needs from a transport, and what it hears from it.

The meeting (interpreter/meeting.py) knows no Janus: it reads `RoomPort.events()` and publishes its
feeds through `RoomPort.publish_feed()`. `translator_bot.api.rooms.RoomBridge` adapts the Janus
VideoRoom client to this port; another transport (LiveKit, a SIP gateway, a test harness) drives a
meeting by implementing the same two methods and handing the object to
`translator_bot.Interpreter(settings, meeting_id, room=...)`. The contract, from the meeting's side:

- `events()` is one async iterator for the whole meeting. It yields `PeerChanged` when a participant
  joins or changes name or language (ids are strings, unique in the meeting; interpreters, the bot's
  own feeds included, must never be reported), `PeerLeft`, `PeerAudio` when a participant's audio track
  arrives and `PeerAudioGone` when it ends. It ends the meeting with `MeetingEnded` (a normal end: the
  room was closed, nobody is left; `Result.reason` MEETING_ENDED, exit code 0) or `RoomClosed` (the bot
  lost the room: ROOM_LOST, exit code 3). An iterator that simply stops counts as a lost room. The
  meeting handles one event at a time, so the iterator may await the transport freely; a transport
  that reconnects by itself just keeps the iterator waiting meanwhile.
- A `PeerAudio` track is an aiortc `MediaStreamTrack` whose `recv()` returns `av.AudioFrame`s of any
  rate, layout and size (they are resampled to the model's 24 kHz mono), paced as they arrive, and
  raises `MediaStreamError` when the track ends. A participant may have several: the first one to
  arrive is interpreted, the others are read and discarded.
- `publish_feed(track, for_id=..., lang=...)` puts one of the bot's output feeds into the room: `track`
  is an aiortc audio track paced in real time by itself (call `recv()` as a sender does: one 20 ms frame
  at a time, 48 kHz); `for_id` is whom it is for (`Audience`: one listener's id, the ids of a language's
  listeners, or None for everyone) and `lang` the language it speaks. Label it so that those listeners'
  clients find it. Raise `RoomError` if the room refuses it (the meeting retries later).
- The returned `Publication` carries the feed's captions (`send_data`: one JSON text per message, the
  fields `translator_bot.Caption` is made of; a caption that cannot be sent now is dropped, not queued),
  is relabelled when its listeners or language change (`relabel`; RoomError if that fails), and is
  closed by the meeting (`aclose`: unpublish, stop reading the track). A transport that loses a feed
  by itself (kicked, connection failed) sets its `lost_reason`; the meeting then closes it and
  publishes the feed again with a new track, after a back-off (so does a failed relabel).

The Interpreter neither closes nor joins a given port's transport: the embedding program does both.
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

    def send_data(self, text: str) -> object:
        """Send one caption (a JSON text) to the feed's listeners now, or drop it; the result is unused."""
        ...

    async def relabel(self, lang: str, for_id: Audience) -> None:
        """Label the feed for another language or audience (a listener switched language, people
        joined or left a per-language feed's audience) without publishing it again."""
        ...

    async def aclose(self) -> None:
        """Unpublish the feed and stop reading its track; called once, when the feed is not needed."""
        ...


class RoomPort(Protocol):
    """A meeting room as the interpreter uses it (see the module's documentation for the contract)."""

    def events(self) -> AsyncIterator[RoomEvent]:
        """Who is in the room, their audio tracks, and how the meeting ends, for the meeting's lifetime."""
        ...

    async def publish_feed(self, track: MediaStreamTrack, *, for_id: Audience, lang: str) -> Publication:
        """Publish `track` labelled for one listener, for the listeners of a language (a tuple of
        ids) or for everyone (None), in language `lang`; RoomError if the room refuses it."""
        ...
