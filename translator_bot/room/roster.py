"""Who is in the room and which of their feeds the bot should receive: a pure state machine.

`Roster.apply(videoroom event)` and `Roster.apply_snapshot(join answer)` return a `RosterStep`: the
meeting events and feed changes, in the order they happened, and the metadata problems seen for the
first time. No asyncio, no logging, no metrics: the room session does the I/O each step asks for, so
every rule here (duplicates, late events, the bot's own feeds, interpreters) is tested without a room
server, like `metadata.parse_participant`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from translator_bot.languages import Language
from translator_bot.room import videoroom
from translator_bot.room.events import (
    FeedId,
    ParticipantEvent,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
)
from translator_bot.room.metadata import Participant, ParticipantId, Problem, parse_participant


@dataclass(frozen=True)
class FeedsWanted:
    """Receive exactly these feeds of `participant` (none: stop receiving any of its feeds).
    `known_as`: the participant as it was at that point, for the events of feeds that stop."""

    participant: ParticipantId
    feeds: frozenset[FeedId] = frozenset()
    known_as: Participant | None = None


@dataclass(frozen=True)
class ParticipantProblem:
    """A metadata value of one participant that could not be used (each reported once)."""

    participant: ParticipantId
    problem: Problem


RosterChange = ParticipantEvent | FeedsWanted


@dataclass(frozen=True)
class RosterStep:
    # One ordered list: a participant's feeds stop before it leaves, and after it turns interpreter.
    changes: tuple[RosterChange, ...] = ()
    problems: tuple[ParticipantProblem, ...] = ()

    @property
    def events(self) -> tuple[ParticipantEvent, ...]:
        return tuple(c for c in self.changes if not isinstance(c, FeedsWanted))

    @property
    def feeds(self) -> tuple[FeedsWanted, ...]:
        return tuple(c for c in self.changes if isinstance(c, FeedsWanted))


@dataclass
class _Known:
    """What the room told us about one participant, kept raw so any change can be re-parsed."""

    display: str | None = None
    metadata: object = None
    streams: tuple[videoroom.StreamInfo, ...] = ()
    participant: Participant | None = None


def _significant(p: Participant) -> tuple[object, ...]:
    # Where a value came from, or a display change that keeps the name, is not worth an event.
    return (p.name, p.language.tag, p.role, p.for_participant)


@dataclass
class Roster:
    """The room's participants as the bot knows them. `own_ids` are the bot's own participants
    (its control participant and one per published feed): never participants, never received."""

    default_language: Language
    own_ids: set[ParticipantId] = field(default_factory=set)
    participants: dict[ParticipantId, Participant] = field(default_factory=dict)
    _known: dict[ParticipantId, _Known] = field(default_factory=dict)
    _reported: set[tuple[ParticipantId, tuple[str, str]]] = field(default_factory=set)
    _changes: list[RosterChange] = field(default_factory=list)
    _problems: list[ParticipantProblem] = field(default_factory=list)

    def apply(self, event: videoroom.VideoRoomEvent) -> RosterStep:
        """What one room event changes. The bot's own removal and the room's end are the session's."""
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
            self._on_left(event.id)
        return self._step()

    def apply_snapshot(self, joined: videoroom.JoinedRoom) -> RosterStep:
        """Bring the roster in line with a join answer's full list of participants (after a
        reconnect, events sent while the bot was away are lost)."""
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
        return self._step()

    def knows(self, pid: ParticipantId) -> bool:
        return pid in self._known

    def wanted_feeds(self, pid: ParticipantId) -> frozenset[FeedId]:
        """The feeds of `pid` the bot receives: every enabled audio stream of a participant that is
        neither the bot's own nor an interpreter."""
        known = self._known.get(pid)
        participant = known.participant if known is not None else None
        if known is None or participant is None or participant.is_interpreter or pid in self.own_ids:
            return frozenset()
        return frozenset(FeedId(pid, s.mid) for s in known.streams if s.type == "audio" and not s.disabled)

    def people_present(self) -> bool:
        """Anyone the bot interprets for (anyone but interpreters) is in the room."""
        return any(not p.is_interpreter for p in self.participants.values())

    # --- rules -------------------------------------------------------------------------------------

    def _step(self) -> RosterStep:
        step = RosterStep(tuple(self._changes), tuple(self._problems))
        self._changes.clear()
        self._problems.clear()
        return step

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
            self._changes.append(
                FeedsWanted(pub.id, self.wanted_feeds(pub.id), self.participants.get(pub.id))
            )

    def _refresh(self, pid: ParticipantId) -> None:
        known = self._known[pid]
        participant, problems = parse_participant(
            pid,
            display=known.display,
            metadata=known.metadata,
            descriptions=[s.description for s in known.streams if s.description],
            default_language=self.default_language,
        )
        for problem in problems:
            if (pid, problem.key) not in self._reported:
                self._reported.add((pid, problem.key))
                self._problems.append(ParticipantProblem(pid, problem))
        previous = known.participant
        known.participant = participant
        self.participants[pid] = participant
        if previous is None:
            self._changes.append(ParticipantJoined(participant))
        elif _significant(previous) != _significant(participant):
            self._changes.append(ParticipantUpdated(participant, previous))
            if participant.is_interpreter:
                self._drop_feeds(pid)

    def _on_left(self, pid: ParticipantId) -> None:
        self._drop_feeds(pid)
        known = self._known.pop(pid, None)
        self.participants.pop(pid, None)
        if known is not None and known.participant is not None:
            self._changes.append(ParticipantLeft(known.participant))

    def _drop_feeds(self, pid: ParticipantId) -> None:
        self._changes.append(FeedsWanted(pid, frozenset(), self.participants.get(pid)))
