"""Reading an interpreter's log: bytes from its stderr (or its pod's log) -> bounded lines -> records.

The bot logs JSON records (the launchers set its format); the room participant ids it joins and
publishes as, which the page trusts as its interpreter, are read from the room session's own records
only. What a page is shown of the log is only the CLI's final error line, scrubbed of secrets and
cut short.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from dataclasses import dataclass

from translator_bot.redact import redact

CLI_ERROR = "translator-bot: "
ROOM_LOGGER = "translator_bot.room.session"  # the only logger whose announcements are believed
# The bot says this once it is in the room (room/control.py, app.py); JSON log lines carry it in "msg".
READY = re.compile(r"joined meeting")
# The room participants the bot joins as: its own, and one per feed it publishes
# (room/control.py, room/publication.py).
OWN_PARTICIPANT = re.compile(r"^(?:re)?joined meeting \S+ as participant (?P<id>[A-Za-z0-9_.-]{1,64})$")
FEED_PUBLISHED = re.compile(r"^(?:publishing|re-published) .* as participant (?P<id>[A-Za-z0-9_.-]{1,64})$")
FEED_UNPUBLISHED = re.compile(r"^unpublished .* \(participant (?P<id>[A-Za-z0-9_.-]{1,64})\)$")
# "2025-01-02 10:11:12,345 INFO    translator_bot.app: joined meeting ..." -> the message part.
_TEXT_LOG = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+)\s+(?P<name>[\w.]+): (?P<msg>.*)$"
)
_MAX_LINE = 500  # what is kept of one log message
_MAX_REASON = 300  # what the page is shown of the bot's error


def shown_reason(cli_line: str) -> str:
    """The bot's error line as the page may show it: secrets scrubbed, then cut short."""
    text = redact(cli_line)
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


class LineSplitter:
    """Bytes from a pipe -> complete lines, each cut to `max_chars`; a line of any length costs at
    most `max_bytes` of memory (the rest of it is dropped as it arrives)."""

    def __init__(self, max_bytes: int = 16 * 1024) -> None:
        self._max = max_bytes
        self._partial = bytearray()
        self._dropping = False

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._take(data[start:end])
            lines.append(self._partial.decode(errors="replace").rstrip())
            self._partial.clear()
            self._dropping = False
            start = end + 1
        self._take(data[start:])
        return lines

    def flush(self) -> list[str]:
        """What is left when the pipe closes without a final newline."""
        rest = self._partial.decode(errors="replace").rstrip()
        self._partial.clear()
        self._dropping = False
        return [rest] if rest else []

    def _take(self, piece: bytes) -> None:
        if self._dropping:
            return
        room = self._max - len(self._partial)
        self._partial += piece[:room]
        if len(piece) > room:
            self._dropping = True


@dataclass(frozen=True)
class ChildRecord:
    """One line of the bot's stderr, read. Only a JSON record's fields are its own: in a text line,
    a message that quotes text with a newline could fake the next "line"."""

    message: str
    level: int = logging.INFO
    logger: str | None = None
    structured: bool = False
    exc: str | None = None


def read_record(line: str) -> ChildRecord:
    text = line.strip()
    if text.startswith("{"):
        with contextlib.suppress(ValueError):
            record = json.loads(text)
            if isinstance(record, dict) and isinstance(record.get("msg"), str):
                level = logging.getLevelName(str(record.get("level", "info")).upper())
                logger = record.get("logger")
                exc = record.get("exc")
                return ChildRecord(
                    message=record["msg"][:_MAX_LINE],
                    level=level if isinstance(level, int) else logging.INFO,
                    logger=logger if isinstance(logger, str) else None,
                    structured=True,
                    exc=exc if isinstance(exc, str) else None,
                )
    match = _TEXT_LOG.match(text)
    if match is not None:
        text = match.group("msg")
    return ChildRecord(message=text.removeprefix(CLI_ERROR)[:_MAX_LINE])


def log_message(line: str) -> str:
    """The readable part of one of the bot's log lines (text or JSON format), bounded."""
    return read_record(line).message
