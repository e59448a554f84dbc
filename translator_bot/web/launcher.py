"""Interpreter bots started on demand from the meeting page: one `translator-bot join <id>` child
process per meeting, owned by the web server (its log relayed, its exit reaped, its state reported)
and stopped with SIGTERM (then SIGKILL) when the server shuts down.

No shell is involved: the meeting id is checked against a conservative pattern and passed as one
argument, after `--`, so it can never become an option or a command.
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
# could read as anything but one plain word.
_MEETING_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The bot says this once it is in the room (app.py); JSON log lines carry it in "msg".
_READY = re.compile(r"joined meeting")
# "2025-01-02 10:11:12,345 INFO    translator_bot.app: joined meeting ..." -> the message part.
_TEXT_LOG = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+)\s+(?P<name>[\w.]+): (?P<msg>.*)$"
)
_MAX_LINE = 500
_KEEP_LINES = 40
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
    return bool(_MEETING_ID.match(text))


def default_command(extra_args: Sequence[str] = ()) -> CommandFactory:
    """`python -m translator_bot join [extra args] -- <id>` with this interpreter, so the child runs the
    same installation as the server whatever PATH says."""

    def command(meeting_id: str) -> list[str]:
        return [sys.executable, "-m", "translator_bot", "join", *extra_args, "--", meeting_id]

    return command


def describe_exit(code: int | None, last_line: str | None) -> str:
    if code is None:
        return "the interpreter is still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the interpreter was stopped by {name}"
    text = EXIT_MESSAGES.get(code, f"the interpreter exited with code {code}")
    if (
        code in (ExitCode.USAGE, ExitCode.ROOM, ExitCode.PROVIDER, ExitCode.PROVIDER_UNAVAILABLE)
        and last_line
    ):
        text = f"{text}. The interpreter said: {last_line}"
    return text


def log_message(line: str) -> str:
    """The readable part of one of the bot's log lines (text or JSON format), bounded."""
    text = line.strip()
    if text.startswith("{"):
        with contextlib.suppress(ValueError):
            record = json.loads(text)
            if isinstance(record, dict) and isinstance(record.get("msg"), str):
                text = record["msg"]
    else:
        match = _TEXT_LOG.match(text)
        if match is not None:
            text = match.group("msg")
    text = text.removeprefix("translator-bot: ")
    return text[:_MAX_LINE]


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

    @property
    def last_line(self) -> str | None:
        return self.lines[-1] if self.lines else None

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {
            "meeting": self.meeting_id,
            "state": self.state,
            "pid": self.proc.pid,
            "started_at": self.started_at,
            "last_line": self.last_line,
        }
        if self.state == "exited":
            out["exit_code"] = self.exit_code
            out["ended_at"] = self.ended_at
            out["message"] = describe_exit(self.exit_code, self._reason())
        elif self.state == "running":
            out["message"] = "the interpreter is in the meeting"
        else:
            out["message"] = "the interpreter is joining the meeting"
        return out

    def _reason(self) -> str | None:
        # The CLI's one-line error ("translator-bot: ...") is the most useful reason; it comes last.
        for line in reversed(self.lines):
            if line:
                return line
        return None


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
    ) -> None:
        self._command = command
        self._env = dict(os.environ if env is None else env)
        self.max_running = max_running
        self._stop_timeout = stop_timeout_s
        self._bots: dict[str, Interpreter] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        # Loaded here, in the parent: the child only calls it between fork and exec.
        self._prctl = _libc_prctl()

    def get(self, meeting_id: str) -> Interpreter | None:
        return self._bots.get(meeting_id)

    @property
    def running(self) -> list[Interpreter]:
        return [bot for bot in self._bots.values() if bot.state != "exited"]

    async def start(self, meeting_id: str) -> tuple[Interpreter, bool]:
        """The meeting's interpreter and whether this call started it (False: one was already running)."""
        if not valid_meeting_id(meeting_id):
            raise LaunchError(f"not a valid meeting id: {meeting_id[:80]!r}")
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
        assert bot.proc.stderr is not None
        try:
            async for raw in bot.proc.stderr:
                line = redact(raw.decode(errors="replace").rstrip())
                if not line:
                    continue
                log.info("[meeting %s] %s", bot.meeting_id, line[:2000])
                bot.lines.append(log_message(line))
                if bot.state == "starting" and _READY.search(line):
                    bot.state = "running"
            await bot.proc.wait()
        finally:
            # Cancelled with the child still alive: nothing to record; stop() kills and reaps it.
            if bot.proc.returncode is not None:
                bot.exit_code = bot.proc.returncode
                bot.state = "exited"
                bot.ended_at = time.time()
                log.info(
                    "the interpreter for meeting %s exited: %s",
                    bot.meeting_id,
                    describe_exit(bot.exit_code, bot.last_line),
                )

    async def stop(self, bot: Interpreter) -> None:
        """SIGTERM (the bot leaves the room and writes its transcript), SIGKILL if it takes too long."""
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
