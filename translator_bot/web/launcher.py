"""What the meeting page's server starts and watches: one interpreter per meeting, whatever runs it.

`Launcher` is the shared part: canonical meeting ids (`01234` is meeting 1234, so one meeting has at
most one interpreter), the limit on interpreters running at once, the start hook the server's rate
limits use, and how an end is reported. Its subclasses say how an interpreter is run: a local
`translator-bot join` process (process_launcher.py) or a Kubernetes Job (kube_launcher.py).

No shell is ever involved: the meeting id is checked against a conservative pattern and reaches the
bot as one argument, after `--`, so it can never become an option or a command.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from translator_bot.errors import ExitCode
from translator_bot.tasks import TaskSet
from translator_bot.web.childlog import (
    CLI_ERROR,
    FEED_PUBLISHED,
    FEED_UNPUBLISHED,
    OWN_PARTICIPANT,
    READY,
    ROOM_LOGGER,
    ChildRecord,
    read_record,
    shown_reason,
)

log = logging.getLogger(__name__)

State = Literal["starting", "running", "exited"]

# Numeric room ids and the string ids Janus accepts with `string_ids`, nothing a shell or argparse
# could read as anything but one plain word. fullmatch: "1234\n" is not "1234".
_MEETING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NUMERIC_ID = re.compile(r"[0-9]+")
_KEEP_LINES = 40
_MAX_PARTICIPANTS = 256
_KEEP_EXITED = 200

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


class LaunchError(RuntimeError):
    """The interpreter could not be started; the message says why and is safe to show."""


class TooManyInterpreters(LaunchError):
    pass


@dataclass(kw_only=True)
class Interpreter:
    """One meeting's interpreter as the page sees it, however it runs."""

    meeting_id: str
    started_at: float = field(default_factory=time.time)
    state: State = "starting"
    exit_code: int | None = None
    ended_at: float | None = None
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=_KEEP_LINES))
    task: asyncio.Task[None] | None = None  # the launcher's watcher of this interpreter
    error_line: str | None = None  # the CLI's final "translator-bot: ..." line, as it was written
    participants: set[str] = field(default_factory=set)  # the bot's room participant ids, live
    stopping: bool = False  # the server asked it to stop: its exit is no failure
    end_message: str | None = None  # how it ended, when no exit code says it (a deleted Job)
    metrics_port: int | None = None  # its /metrics, /livez and /readyz on this host, if any

    @property
    def last_line(self) -> str | None:
        return self.lines[-1] if self.lines else None

    def identity(self) -> dict[str, object]:
        """What names the running interpreter for an operator (a pid, a Job)."""
        return {}

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {
            "meeting": self.meeting_id,
            "state": self.state,
            **self.identity(),
            "started_at": self.started_at,
        }
        if self.state == "exited":
            out["exit_code"] = self.exit_code
            out["ended_at"] = self.ended_at
            out["message"] = self.end_message or describe_exit(self.exit_code, self.reason)
            return out
        if self.metrics_port is not None:
            out["metrics_port"] = self.metrics_port
        if self.state == "running":
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
        """One line of the bot's log: kept for the server's log, and read for what it announces."""
        record = read_record(line)
        message = record.message
        self.lines.append(message)
        if line.startswith(CLI_ERROR):
            self.error_line = line.removeprefix(CLI_ERROR)
        if self.state == "starting" and READY.search(message):
            self.state = "running"
        if record.structured and record.logger == ROOM_LOGGER:
            if (match := OWN_PARTICIPANT.match(message) or FEED_PUBLISHED.match(message)) is not None:
                if len(self.participants) < _MAX_PARTICIPANTS:
                    self.participants.add(match.group("id"))
            elif (match := FEED_UNPUBLISHED.match(message)) is not None:
                self.participants.discard(match.group("id"))
        return record

    def finish(self, exit_code: int | None, *, message: str | None = None) -> None:
        self.exit_code = exit_code
        self.end_message = message
        self.state = "exited"
        self.ended_at = time.time()
        self.participants.clear()


class Launcher(ABC):
    """Starts at most one interpreter per meeting and `max_running` in all; `aclose()` ends its part."""

    kind: str = "interpreters"

    def __init__(
        self, *, max_running: int, on_exit: Callable[[Interpreter], None] | None = None, owner: str
    ) -> None:
        self.on_exit = on_exit  # how each interpreter ended, for the start limits
        self.max_running = max_running
        self._bots: dict[str, Interpreter] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        self._tasks = TaskSet(owner, logger=log)

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
            adopted = await self._adopt(meeting_id)
            if adopted is not None:
                self._keep(adopted)
                return adopted, False
            if len(self.running) >= self.max_running:
                raise TooManyInterpreters(
                    f"{self.max_running} interpreters are already running on this server; try again later"
                )
            if may_launch is not None:
                may_launch(meeting_id)
            bot = await self._launch(meeting_id)
            self._keep(bot)
            return bot, True

    def _keep(self, bot: Interpreter) -> None:
        bot.task = self._tasks.spawn(self._watch_then_report(bot), name=f"interpreter {bot.meeting_id}")
        self._bots[bot.meeting_id] = bot
        exited = [old for old in self._bots.values() if old.state == "exited"]
        for old in sorted(exited, key=lambda b: b.ended_at or 0.0)[: max(0, len(exited) - _KEEP_EXITED)]:
            del self._bots[old.meeting_id]

    async def _watch_then_report(self, bot: Interpreter) -> None:
        try:
            await self._watch(bot)
        finally:
            # Cancelled while it still runs (shutdown): nothing to report; stop() settles it.
            if bot.state == "exited":
                log.info(
                    "the interpreter for meeting %s exited: %s",
                    bot.meeting_id,
                    bot.end_message or describe_exit(bot.exit_code, bot.reason),
                )
                if self.on_exit is not None:
                    try:
                        self.on_exit(bot)
                    except Exception:
                        log.exception("cannot record how the interpreter for %s ended", bot.meeting_id)

    async def _adopt(self, meeting_id: str) -> Interpreter | None:
        """An interpreter for the meeting that runs already without this server knowing it."""
        return None

    @abstractmethod
    async def _launch(self, meeting_id: str) -> Interpreter:
        """Start the meeting's interpreter; LaunchError with a message a page may show if it cannot."""

    @abstractmethod
    async def _watch(self, bot: Interpreter) -> None:
        """Follow the interpreter until it has ended (then `bot.state` is "exited")."""

    @abstractmethod
    async def stop(self, bot: Interpreter) -> None:
        """Make the interpreter leave its meeting and wait until it has."""

    async def aclose(self) -> None:
        async with self._lock:
            self._closed = True
        await self._close_interpreters(list(self._bots.values()))
        await self._tasks.close()

    async def _close_interpreters(self, bots: list[Interpreter]) -> None:
        """What shutting the server down does to its interpreters: by default, stop them."""
        await asyncio.gather(*(self.stop(bot) for bot in bots), return_exceptions=True)
