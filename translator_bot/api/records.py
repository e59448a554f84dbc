"""The meeting's transcript files: every utterance to the journal (JSON lines, fsynced) as soon as it
is final, and the plain-text transcript with the cost footer when the meeting ends."""

from __future__ import annotations

import logging
from collections.abc import Callable

from translator_bot.interpreter.journal import TranscriptJournal
from translator_bot.interpreter.meeting import Meeting
from translator_bot.settings import Settings

log = logging.getLogger(__name__)


def open_journal(
    meeting: Meeting, settings: Settings, also: Callable[[dict[str, object]], None]
) -> TranscriptJournal:
    """Record every final utterance to the journal, then hand it to `also`."""
    transcript = meeting.transcript
    journal = TranscriptJournal.for_meeting(
        settings.transcript_dir,
        transcript.base_name,
        to_stdout=settings.transcript_stdout,
        meeting_id=transcript.meeting_id,
    )

    def record(entry: dict[str, object]) -> None:
        journal.append(entry)
        also(entry)

    transcript.record_to(record)
    return journal


async def write_transcript(meeting: Meeting, journal: TranscriptJournal, settings: Settings) -> None:
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
