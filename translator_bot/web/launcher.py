"""Interpreter bots started on demand from the meeting page: one `translator-bot join <id>` child
process per meeting, owned by the web server (its log relayed, its exit reaped, its state reported)
and stopped with SIGTERM (then SIGKILL) when the server shuts down.

No shell is involved: the meeting id is checked against a conservative pattern and passed as one
argument, after `--`, so it can never become an option or a command. Ids are canonical before any
lookup (`01234` is meeting 1234), so one meeting has at most one interpreter.

The child's stderr is read in bounded chunks, whatever its line lengths and volume: a pipe nobody
reads would block the bot on its next log write, inside its event loop. What the API shows of it is
only the CLI's final error line, scrubbed of secrets and cut short. The bot logs JSON records (the
launcher sets its format), and the room participant ids it joins and publishes as, which the page
trusts as its interpreter, are read from the room session's own records only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from translator_bot.errors import ExitCode
from translator_bot.redact import redact

log = logging.getLogger(__name__)

State = Literal["starting", "running", "exited"]
CommandFactory = Callable[[str], Sequence[str]]

# Numeric room ids and the string ids Janus accepts with `string_ids`, nothing a shell or argparse
# could read as anything but one plain word. fullmatch: "1234\n" is not "1234".
_MEETING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NUMERIC_ID = re.compile(r"[0-9]+")
# The bot says this once it is in the room (room/session.py, app.py); JSON log lines carry it in "msg".
_READY = re.compile(r"joined meeting")
# The room participants the bot joins as: its own, and one per feed it publishes (room/session.py).
_OWN_PARTICIPANT = re.compile(r"^(?:re)?joined meeting \S+ as participant (?P<id>[A-Za-z0-9_.-]{1,64})$")
_FEED_PUBLISHED = re.compile(r"^(?:publishing|re-published) .* as participant (?P<id>[A-Za-z0-9_.-]{1,64})$")
_FEED_UNPUBLISHED = re.compile(r"^unpublished .* \(participant (?P<id>[A-Za-z0-9_.-]{1,64})\)$")
_CLI_ERROR = "translator-bot: "
_ROOM_LOGGER = "translator_bot.room.session"  # the only logger whose announcements are believed
# "2025-01-02 10:11:12,345 INFO    translator_bot.app: joined meeting ..." -> the message part.
_TEXT_LOG = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+)\s+(?P<name>[\w.]+): (?P<msg>.*)$"
)
_MAX_LINE = 500  # what is kept of one log message
_MAX_REASON = 300  # what the page is shown of the bot's error
_READ_CHUNK = 64 * 1024
_KEEP_LINES = 40
_MAX_PARTICIPANTS = 256
_KEEP_EXITED = 200
_PR_SET_PDEATHSIG = 1

EXIT_MESSAGES: dict[int, str] = {
    ExitCode.OK: "the interpreter left the meeting",
    ExitCode.FAILURE: "the interpreter stopped after an unexpected error (the server log has the details)",
    ExitCode.USAGE: "the interpreter's settings are wrong (fix the web server's environment or .env)",
    ExitCode.ROOM: "the interpreter could not join or stay in the meeting: it does not exist, refused "
    "the bot, or the room server went away",
    ExitCode.PROVIDER: "the model provider refused the interpreter: the API key is wrong or has no quota",
    ExitCode.PROVIDER_UNAVAILABLE: "the model provider could not be reached for too long; start the "
    "interpreter again when it is back",
}


def valid_meeting_id(text: str) -> bool:
    return canonical_meeting_id(text) is not None


def canonical_meeting_id(text: str) -> str | None:
    """The one spelling of a meeting id, or None if it is not one: a number as a number (`001234` is
    1234, as Janus reads it), any other id exactly as given."""
    if not _MEETING_ID.fullmatch(text):
        return None
    if _NUMERIC_ID.fullmatch(text) and int(text) > 0:
        return str(int(text))
    return text


def default_command(extra_args: Sequence[str] = ()) -> CommandFactory:
    """`python -m translator_bot join [extra args] -- <id>` with this interpreter, so the child runs the
    same installation as the server whatever PATH says."""

    def command(meeting_id: str) -> list[str]:
        return [sys.executable, "-m", "translator_bot", "join", *extra_args, "--", meeting_id]

    return command


def describe_exit(code: int | None, reason: str | None) -> str:
    if code is None:
        return "the interpreter is still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the interpreter was stopped by {name}"
    text = EXIT_MESSAGES.get(code, f"the interpreter exited with code {code}")
    if code in (ExitCode.USAGE, ExitCode.ROOM, ExitCode.PROVIDER, ExitCode.PROVIDER_UNAVAILABLE) and reason:
        text = f"{text}. The interpreter said: {reason}"
    return text


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
    return ChildRecord(message=text.removeprefix(_CLI_ERROR)[:_MAX_LINE])


def log_message(line: str) -> str:
    """The readable part of one of the bot's log lines (text or JSON format), bounded."""
    return read_record(line).message


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The bot's environment as the launcher needs it: JSON log records (the participant ids it
    announces are read from their fields) at INFO at least (where it announces them); this server's
    own log level still decides what is relayed."""
    out = dict(env)
    out["TRANSLATOR_LOG_FORMAT"] = "json"
    if out.get("TRANSLATOR_LOG_LEVEL", "INFO").upper() != "DEBUG":
        out["TRANSLATOR_LOG_LEVEL"] = "INFO"
    return out


class LaunchError(RuntimeError):
    """The interpreter could not be started; the message says why and is safe to show."""


class TooManyInterpreters(LaunchError):
    pass


@dataclass
class Interpreter:
    """One bot process for one meeting, as the page sees it."""

    meeting_id: str
    proc: asyncio.subprocess.Process
    started_at: float = field(default_factory=time.time)
    state: State = "starting"
    exit_code: int | None = None
    ended_at: float | None = None
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=_KEEP_LINES))
    task: asyncio.Task[None] | None = None
    error_line: str | None = None  # the CLI's final "translator-bot: ..." line, as it was written
    participants: set[str] = field(default_factory=set)  # the bot's room participant ids, live
    stopping: bool = False  # the server asked it to stop: its exit is no failure

    @property
    def last_line(self) -> str | None:
        return self.lines[-1] if self.lines else None

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {
            "meeting": self.meeting_id,
            "state": self.state,
            "pid": self.proc.pid,
            "started_at": self.started_at,
        }
        if self.state == "exited":
            out["exit_code"] = self.exit_code
            out["ended_at"] = self.ended_at
            out["message"] = describe_exit(self.exit_code, self.reason)
        elif self.state == "running":
            out["message"] = "the interpreter is in the meeting"
            out["participants"] = sorted(self.participants)
        else:
            out["message"] = "the interpreter is joining the meeting"
        return out

    @property
    def reason(self) -> str | None:
        """The CLI's one-line error, the only line of the bot's output a page is shown."""
        return shown_reason(self.error_line) if self.error_line else None

    @property
    def failed(self) -> bool:
        return self.state == "exited" and self.exit_code != 0 and not self.stopping

    def read_line(self, line: str) -> ChildRecord:
        """One line of the bot's stderr: kept for the server's log, and read for what it announces."""
        record = read_record(line)
        message = record.message
        self.lines.append(message)
        if line.startswith(_CLI_ERROR):
            self.error_line = line.removeprefix(_CLI_ERROR)
        if self.state == "starting" and _READY.search(message):
            self.state = "running"
        if record.structured and record.logger == _ROOM_LOGGER:
            if (match := _OWN_PARTICIPANT.match(message) or _FEED_PUBLISHED.match(message)) is not None:
                if len(self.participants) < _MAX_PARTICIPANTS:
                    self.participants.add(match.group("id"))
            elif (match := _FEED_UNPUBLISHED.match(message)) is not None:
                self.participants.discard(match.group("id"))
        return record


def _libc_prctl() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None or not sys.platform.startswith("linux"):
        return None
    prctl: Callable[[int, int], int] = ctypes.CDLL(name, use_errno=True).prctl
    return prctl


class BotLauncher:
    """Starts at most one interpreter per meeting and `max_running` in all; `aclose()` stops them all."""

    def __init__(
        self,
        command: CommandFactory,
        env: Mapping[str, str] | None = None,
        *,
        max_running: int = 8,
        stop_timeout_s: float = 8.0,
        on_exit: Callable[[Interpreter], None] | None = None,
    ) -> None:
        self._command = command
        self.on_exit = on_exit  # how each interpreter ended, for the start limits
        self._env = child_environment(os.environ if env is None else env)
        self.max_running = max_running
        self._stop_timeout = stop_timeout_s
        self._bots: dict[str, Interpreter] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        # Loaded here, in the parent: the child only calls it between fork and exec.
        self._prctl = _libc_prctl()

    def get(self, meeting_id: str) -> Interpreter | None:
        canonical = canonical_meeting_id(meeting_id)
        return None if canonical is None else self._bots.get(canonical)

    def is_running(self, meeting_id: str) -> bool:
        bot = self.get(meeting_id)
        return bot is not None and bot.state != "exited"

    @property
    def running(self) -> list[Interpreter]:
        return [bot for bot in self._bots.values() if bot.state != "exited"]

    async def start(
        self, meeting_id: str, *, may_launch: Callable[[str], None] | None = None
    ) -> tuple[Interpreter, bool]:
        """The meeting's interpreter and whether this call started it (False: one was already running).
        `may_launch(canonical id)` is asked just before a new one is launched and may raise LaunchError."""
        canonical = canonical_meeting_id(meeting_id)
        if canonical is None:
            raise LaunchError(f"not a valid meeting id: {meeting_id[:80]!r}")
        meeting_id = canonical
        async with self._lock:
            if self._closed:
                raise LaunchError("the server is shutting down")
            current = self._bots.get(meeting_id)
            if current is not None and current.state != "exited":
                return current, False
            if len(self.running) >= self.max_running:
                raise TooManyInterpreters(
                    f"{self.max_running} interpreters are already running on this server; try again later"
                )
            if may_launch is not None:
                may_launch(meeting_id)
            argv = list(self._command(meeting_id))
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                    env=self._env,
                    preexec_fn=self._die_with_server,
                )
            except OSError as exc:
                raise LaunchError(f"cannot start the interpreter ({argv[0]}): {exc.strerror}") from None
            bot = Interpreter(meeting_id, proc)
            bot.task = asyncio.create_task(self._watch(bot), name=f"interpreter {meeting_id}")
            self._bots[meeting_id] = bot
            self._forget_old()
            log.info("started the interpreter for meeting %s (pid %d)", meeting_id, proc.pid)
            return bot, True

    def _die_with_server(self) -> None:
        # A server that dies without its shutdown path must not leave bots behind in meetings.
        if self._prctl is not None:
            self._prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def _forget_old(self) -> None:
        exited = [bot for bot in self._bots.values() if bot.state == "exited"]
        for bot in sorted(exited, key=lambda b: b.ended_at or 0.0)[: max(0, len(exited) - _KEEP_EXITED)]:
            del self._bots[bot.meeting_id]

    async def _watch(self, bot: Interpreter) -> None:
        stream = bot.proc.stderr
        assert stream is not None
        lines = LineSplitter()
        try:
            # read(), not readline(): a line over the StreamReader's 64 KiB limit would raise and end
            # the reading, and the child would then block on its next write to the full pipe.
            while chunk := await stream.read(_READ_CHUNK):
                for line in lines.feed(chunk):
                    self._relay(bot, line)
            for line in lines.flush():
                self._relay(bot, line)
            await bot.proc.wait()
        finally:
            # Cancelled with the child still alive: nothing to record; stop() kills and reaps it.
            if bot.proc.returncode is not None:
                bot.exit_code = bot.proc.returncode
                bot.state = "exited"
                bot.ended_at = time.time()
                bot.participants.clear()
                log.info(
                    "the interpreter for meeting %s exited: %s",
                    bot.meeting_id,
                    describe_exit(bot.exit_code, bot.reason),
                )
                if self.on_exit is not None:
                    try:
                        self.on_exit(bot)
                    except Exception:
                        log.exception("cannot record how the interpreter for %s ended", bot.meeting_id)

    @staticmethod
    def _relay(bot: Interpreter, line: str) -> None:
        if not line:
            return
        record = bot.read_line(line)
        if not record.structured:
            log.info("[meeting %s] %s", bot.meeting_id, line[:2000])
        elif record.exc:
            log.log(record.level, "[meeting %s] %s\n%s", bot.meeting_id, record.message, record.exc[:8000])
        else:
            log.log(record.level, "[meeting %s] %s", bot.meeting_id, record.message)

    async def stop(self, bot: Interpreter) -> None:
        """SIGTERM (the bot leaves the room and writes its transcript), SIGKILL if it takes too long."""
        bot.stopping = True
        if bot.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                bot.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self._stop_timeout):
                    await bot.proc.wait()
            except TimeoutError:
                log.warning("the interpreter for meeting %s ignored SIGTERM; killing it", bot.meeting_id)
                with contextlib.suppress(ProcessLookupError):
                    bot.proc.kill()
                await bot.proc.wait()
        if bot.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await bot.task

    async def aclose(self) -> None:
        async with self._lock:
            self._closed = True
        bots = list(self._bots.values())
        await asyncio.gather(*(self.stop(bot) for bot in bots), return_exceptions=True)
