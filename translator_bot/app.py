"""The `join` command: wires room -> audio in -> engine -> playout -> room for one meeting.

Owns the process-level concerns: signals, the ops HTTP server, the order of shutdown (stop the
meeting, close lanes and feeds, leave the room, write the transcript) and the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from aiortc.mediastreams import MediaStreamTrack

from translator_bot.errors import ExitCode
from translator_bot.interpreter import port
from translator_bot.interpreter.cost import cost_summary
from translator_bot.interpreter.health import PartHealth, assess
from translator_bot.interpreter.journal import TranscriptJournal
from translator_bot.interpreter.meeting import Meeting
from translator_bot.interpreter.plan import Audience, Member
from translator_bot.ops import OpsServer
from translator_bot.room import session as rs
from translator_bot.room.metadata import Participant
from translator_bot.settings import Settings

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET_S = 4.0  # SIGTERM must end in an exit within 5 s, transcript written
# After SIGTERM the meeting finishes the room event in hand; one waiting for the room to come back
# (a feed being published while reconnecting) is cancelled instead.
STOP_WAIT_S = 1.0


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


def run_join(settings: Settings, meeting_id: str, *, create_room: bool = False) -> ExitCode:
    """Join and interpret until SIGTERM/SIGINT or the meeting ends (room destroyed, nobody left):
    exit 0. RoomError (including a room server unreachable for TRANSLATOR_ROOM_RECONNECT_SECONDS) and
    ProviderError propagate to the CLI, which turns them into exit codes 3, 4 and 5."""
    return asyncio.run(_join(settings, meeting_id, create_room))


async def _join(settings: Settings, meeting_id: str, create_room: bool) -> ExitCode:
    loop = asyncio.get_running_loop()
    room = rs.RoomSession.from_settings(settings, meeting_id, create_room=create_room)
    meeting: Meeting | None = None
    journal: TranscriptJournal | None = None
    ops: OpsServer | None = None
    signalled = False
    stop_deadline: asyncio.Timeout | None = None  # set while the meeting runs

    def on_signal() -> None:
        nonlocal signalled
        if signalled:
            return
        signalled = True
        if meeting is not None and stop_deadline is not None:
            log.info("stopping: leaving meeting %s", room.room_id)
            meeting.stop()
            stop_deadline.reschedule(loop.time() + STOP_WAIT_S)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        if settings.metrics_port:
            ops = OpsServer(settings.metrics_host, settings.metrics_port, lambda: _health(room, meeting))
            await ops.start()
        await room.join()
        log.info("joined meeting %s as %r", room.room_id, settings.display_name)
        meeting = Meeting(settings, RoomBridge(room), meeting_id)
        journal = _open_journal(meeting, settings)
        if signalled:  # asked to stop while joining: leave at once
            log.info("stopping: leaving meeting %s", room.room_id)
            return ExitCode.OK
        try:
            async with asyncio.timeout(None) as stop_deadline:
                await meeting.run()  # raises RoomError / ProviderError
        except TimeoutError:
            # The event in hand did not finish within STOP_WAIT_S of the signal: cancelled instead.
            if not signalled:
                raise
        finally:
            stop_deadline = None
        return ExitCode.OK
    finally:
        await _shutdown(room, meeting, journal, ops, settings)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _shutdown(
    room: rs.RoomSession,
    meeting: Meeting | None,
    journal: TranscriptJournal | None,
    ops: OpsServer | None,
    settings: Settings,
) -> None:
    try:
        async with asyncio.timeout(SHUTDOWN_BUDGET_S):
            if meeting is not None:
                await meeting.aclose()
            await room.leave()
    except TimeoutError:
        log.warning("leaving took longer than %.0f s; exiting anyway", SHUTDOWN_BUDGET_S)
    finally:
        if meeting is not None:
            log.info("%s", cost_summary(meeting.transcript.meeting_id, meeting.cost.report()))
        if meeting is not None and journal is not None:
            await _write_transcript(meeting, journal, settings)
        if ops is not None:
            with contextlib.suppress(Exception):
                await ops.stop()


def _open_journal(meeting: Meeting, settings: Settings) -> TranscriptJournal:
    """Every utterance goes to the journal (JSON lines, fsynced) as soon as it is final."""
    transcript = meeting.transcript
    journal = TranscriptJournal.for_meeting(
        settings.transcript_dir,
        transcript.base_name,
        to_stdout=settings.transcript_stdout,
        meeting_id=transcript.meeting_id,
    )
    transcript.record_to(journal.append)
    return journal


async def _write_transcript(meeting: Meeting, journal: TranscriptJournal, settings: Settings) -> None:
    """Record what is still in flight, render the .txt and close the journal. Never raises: a
    transcript that cannot be written is logged with its cause, and a clean leave stays clean."""
    try:
        transcript = meeting.transcript
        transcript.finish()
        if not transcript.utterances:
            await journal.aclose()
            log.info("nothing was interpreted: no transcript written")
            return
        text_path = settings.transcript_dir / f"{transcript.base_name}.txt"
        status = await journal.aclose(text_path, transcript.render_text(meeting.cost.report()))
    except Exception:
        log.exception("the transcript could not be completed")
        return
    if status.lines_failed or not status.text_written:
        log.error(
            "transcript incomplete in %s: %d of %d utterance records written, text %s; cause: %s",
            settings.transcript_dir,
            status.lines_written,
            status.lines_written + status.lines_failed,
            "written" if status.text_written else "not written",
            status.error or "the writer did not finish in time",
        )
        return
    log.info("transcript written: %s and %s", journal.path, text_path)


def _health(room: rs.RoomSession, meeting: Meeting | None) -> tuple[bool, dict[str, Any]]:
    """Readiness: in the room and interpreting with every part working (see ops.py)."""
    joined = room.room_id is not None and not room.closed
    # Reconnecting is reported as a degraded part: the lanes keep running and media may still flow
    # (a claimed session keeps its PeerConnections), but the room's events are not arriving.
    state = ("joined" if room.online else "reconnecting") if joined else "not joined"
    details: dict[str, Any] = {"room": state, "room_reconnects": room.reconnects}
    parts = [PartHealth("room", "lost", room.control_lost)] if room.control_lost else []
    if joined and not room.online:
        parts.append(PartHealth("room", "reconnecting", "the connection to the room server dropped"))
    fatal: str | None = None
    if meeting is None:
        fatal = "not interpreting yet"
    else:
        _, more = meeting.health()
        details.update(more)
        fatal = more.get("fatal")
        parts.extend(meeting.degraded_parts())
    verdict = assess(in_room=joined, fatal=fatal, parts=parts)
    details["status"] = verdict
    details["degraded"] = [part.as_json() for part in parts]
    return verdict == "ok", details
