"""Interpreters as local processes: one `translator-bot join <id>` child per meeting, owned by the web
server (its log relayed, its exit reaped, its state reported) and stopped with SIGTERM (then SIGKILL)
when the server shuts down.

The child's stderr is read in bounded chunks, whatever its line lengths and volume: a pipe nobody
reads would block the bot on its next log write, inside its event loop.

Each child gets an ops port of its own (its /metrics, /livez, /readyz; the server's API lists them):
they would all bind the same configured port otherwise, and every one after the first would fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from translator_bot.web.childlog import LineSplitter
from translator_bot.web.launcher import Interpreter, Launcher, LaunchError

log = logging.getLogger(__name__)

CommandFactory = Callable[[str], Sequence[str]]

_READ_CHUNK = 64 * 1024
_PR_SET_PDEATHSIG = 1
_ANY_ADDRESS = "0.0.0.0"


def default_command(extra_args: Sequence[str] = ()) -> CommandFactory:
    """`python -m translator_bot join [extra args] -- <id>` with this interpreter, so the child runs the
    same installation as the server whatever PATH says."""

    def command(meeting_id: str) -> list[str]:
        return [sys.executable, "-m", "translator_bot", "join", *extra_args, "--", meeting_id]

    return command


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The bot's environment as the launcher needs it: JSON log records (the participant ids it
    announces are read from their fields) at INFO at least (where it announces them); this server's
    own log level still decides what is relayed."""
    out = dict(env)
    out["TRANSLATOR_LOG_FORMAT"] = "json"
    if out.get("TRANSLATOR_LOG_LEVEL", "INFO").upper() != "DEBUG":
        out["TRANSLATOR_LOG_LEVEL"] = "INFO"
    return out


def free_port(host: str, taken: Collection[int] = ()) -> int:
    """A TCP port nothing listens on at `host` now, and not one already given to another bot. The
    child binds it a moment later: another program could take it in between, and the bot then stops
    with its bind error, shown like any other start failure."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port
    raise LaunchError("no free port for the interpreter's metrics")


@dataclass(kw_only=True)
class ProcessInterpreter(Interpreter):
    """One bot process for one meeting."""

    proc: asyncio.subprocess.Process

    def identity(self) -> dict[str, object]:
        return {"pid": self.proc.pid}


def _libc_prctl() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None or not sys.platform.startswith("linux"):
        return None
    prctl: Callable[[int, int], int] = ctypes.CDLL(name, use_errno=True).prctl
    return prctl


class BotLauncher(Launcher):
    """Interpreters as child processes of this server; `aclose()` stops them all."""

    kind = "process"

    def __init__(
        self,
        command: CommandFactory,
        env: Mapping[str, str] | None = None,
        *,
        max_running: int = 8,
        stop_timeout_s: float = 8.0,
        on_exit: Callable[[Interpreter], None] | None = None,
        metrics: bool = True,
    ) -> None:
        super().__init__(max_running=max_running, on_exit=on_exit, owner="process launcher")
        self._command = command
        self._env = child_environment(os.environ if env is None else env)
        self._metrics_host = self._env.get("TRANSLATOR_METRICS_HOST") or _ANY_ADDRESS
        self._metrics = metrics
        self._stop_timeout = stop_timeout_s
        # Loaded here, in the parent: the child only calls it between fork and exec.
        self._prctl = _libc_prctl()

    async def _launch(self, meeting_id: str) -> ProcessInterpreter:
        argv = list(self._command(meeting_id))
        env = self._env
        port: int | None = None
        if self._metrics:
            taken = {bot.metrics_port for bot in self.running if bot.metrics_port is not None}
            try:
                port = free_port(self._metrics_host, taken)
            except OSError as exc:
                raise LaunchError(f"no port for the interpreter's metrics: {exc.strerror}") from None
            env = {**env, "TRANSLATOR_METRICS_PORT": str(port)}
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                preexec_fn=self._die_with_server,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start the interpreter ({argv[0]}): {exc.strerror}") from None
        log.info(
            "started the interpreter for meeting %s (pid %d%s)",
            meeting_id,
            proc.pid,
            f", metrics on port {port}" if port is not None else "",
        )
        return ProcessInterpreter(meeting_id=meeting_id, proc=proc, metrics_port=port)

    def _die_with_server(self) -> None:
        # A server that dies without its shutdown path must not leave bots behind in meetings.
        if self._prctl is not None:
            self._prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    async def _watch(self, bot: Interpreter) -> None:
        assert isinstance(bot, ProcessInterpreter)
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
                bot.finish(bot.proc.returncode)

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
        assert isinstance(bot, ProcessInterpreter)
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
