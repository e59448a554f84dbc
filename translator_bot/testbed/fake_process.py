"""The fake model server as a harness needs it: in its own process (`translator-bot fake-realtime`, as a
user runs it) or on the harness's own event loop, behind one small interface.

Why a process: a benchmark's event loop also runs every simulated participant (Opus encode and decode,
DTLS, SRTP, for everyone in the room). A fake sharing that loop sends its translated audio late whenever
the participants keep the loop busy, and the bot's playout then underruns because of the harness, not
because of the bot. In its own process the fake keeps its own pace (the operating system, not our
event loop, shares the cores). It inherits the harness's private network namespace like Janus and the
bot do, and dies with the harness (PR_SET_PDEATHSIG) even if the harness is killed outright.

Both kinds expose `base_url` (for the bot's OPENAI_BASE_URL), `read_state()` (what `GET /_fake/state`
returns, as the fake's own dataclasses) and `control()` (the `POST /_fake/control` commands). Time
marks in the state (`turn_ends_at`, `first_audio_at`) are the fake's `time.monotonic()`, which on Linux
is one clock for every process on the machine, so a harness can compare them with its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import ctypes.util
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal, Protocol

import aiohttp

import translator_bot
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import (
    ErrorRecord,
    FakeOptions,
    FakeState,
    SessionRecord,
    TruncateRecord,
    ViolationRecord,
)
from translator_bot.tasks import TaskSet

FakeKind = Literal["process", "in-process"]
FAKE_KINDS: tuple[FakeKind, ...] = ("process", "in-process")
READY = re.compile(r"fake realtime server ready: OPENAI_BASE_URL=(\S+)")
_PACKAGE_ROOT = Path(translator_bot.__file__).resolve().parents[1]  # the fake runs the harness's own code
_LOG_LINES_KEPT = 200
_PR_SET_PDEATHSIG = 1


class FakeProcessError(RuntimeError):
    """The fake's process did not come up or answered an HTTP request with an error; says why."""


class ModelServer(Protocol):
    """What a harness uses of a fake model server, wherever it runs."""

    @property
    def base_url(self) -> str: ...

    async def read_state(self) -> FakeState: ...

    async def control(self, command: dict[str, Any]) -> dict[str, Any]: ...


def state_from_snapshot(data: dict[str, Any]) -> FakeState:
    """`FakeState.snapshot()` (the JSON of `GET /_fake/state`) back into the fake's dataclasses."""
    sessions = []
    for raw in data["sessions"]:
        fields = {k: v for k, v in raw.items() if k != "live"}  # derived from closed_at
        fields["truncates"] = [TruncateRecord(**t) for t in raw["truncates"]]
        fields["errors_sent"] = [ErrorRecord(**e) for e in raw["errors_sent"]]
        fields["contract_violations"] = [ViolationRecord(**v) for v in raw["contract_violations"]]
        sessions.append(SessionRecord(**fields))
    return FakeState(sessions=sessions, internal_errors=list(data["internal_errors"]))


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: a harness killed outright takes its fake along.
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class FakeProcess:
    """`translator-bot fake-realtime` as a child process on a free port of 127.0.0.1.

    Use as `async with FakeProcess() as fake:`, or `await start()` and then `await stop()` on every
    path: stop() asks with SIGTERM (the fake closes its sessions and exits 0), kills after
    `stop_timeout_s`, and reaps the process either way."""

    def __init__(
        self,
        options: FakeOptions | None = None,
        *,
        session_max_seconds: float = 3600.0,
        first_audio_delay_ms: int = 0,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        if options is not None and options != FakeOptions():
            # The command serves with the default options; a bench that needs others needs the command
            # to take them first, not a fake that silently differs from what it asked for.
            raise ValueError(f"`translator-bot fake-realtime` runs with FakeOptions(), not {options}")
        self.session_max_seconds = session_max_seconds
        self.first_audio_delay_ms = first_audio_delay_ms
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.proc: asyncio.subprocess.Process | None = None
        self.log: collections.deque[str] = collections.deque(maxlen=_LOG_LINES_KEPT)
        self._base_url: str | None = None
        self._ready: asyncio.Future[str] | None = None
        self._tasks = TaskSet("fake model server process")

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the fake's process is not started")
        return self._base_url

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "translator_bot",
            "fake-realtime",
            "--host",
            "127.0.0.1",
            "--port",
            "0",  # the OS picks a free one; the ready line names it (no race with another process)
            "--session-max-seconds",
            str(self.session_max_seconds),
            "--first-audio-delay-ms",
            str(self.first_audio_delay_ms),
            "--log-level",
            "WARNING",
        ]
        env = {**os.environ, "PYTHONPATH": str(_PACKAGE_ROOT)}
        self._ready = asyncio.get_running_loop().create_future()
        self.proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd="/tmp",
            preexec_fn=_die_with_parent,  # only prctl between fork and exec, as for Janus
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        # Both pipes are read until the process ends: a full pipe would stall the fake mid-session.
        self._tasks.spawn(self._read(self.proc.stdout), name="fake stdout reader")
        self._tasks.spawn(self._read(self.proc.stderr), name="fake log reader")
        try:
            async with asyncio.timeout(self.start_timeout_s):
                self._base_url = await self._ready
        except BaseException as exc:
            await self.kill()
            if isinstance(exc, TimeoutError):
                raise FakeProcessError(
                    f"the fake printed no ready line within {self.start_timeout_s:.0f} s:\n{self.log_text}"
                ) from None
            raise

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            match = READY.search(line)
            if match and self._ready is not None and not self._ready.done():
                self._ready.set_result(match.group(1))
        if self._ready is not None and not self._ready.done():
            assert self.proc is not None
            code = await self.proc.wait()
            if self._ready.done():  # the other pipe's reader got here first
                return
            self._ready.set_exception(
                FakeProcessError(f"the fake exited ({code}) before it was ready:\n{self.log_text}")
            )

    @property
    def log_text(self) -> str:
        return "\n".join(self.log)

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; its exit status (None: never started)."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self.stop_timeout_s):
                    await self.proc.wait()
            except TimeoutError:
                pass
            except BaseException:
                await self.kill()
                raise
        await self.kill()
        return self.proc.returncode

    async def kill(self) -> None:
        """Kill at once if still running, reap, and stop the readers (idempotent)."""
        if self.proc is not None:
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
            await self.proc.wait()
        await self._tasks.close()
        if self._ready is not None and self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # seen: an exit before ready that start() no longer waits for

    async def __aenter__(self) -> FakeProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _url(self, path: str) -> str:
        return self.base_url.removesuffix("/v1") + path

    async def read_state(self) -> FakeState:
        async with aiohttp.ClientSession() as http, http.get(self._url("/_fake/state")) as reply:
            if reply.status != 200:
                raise FakeProcessError(f"GET /_fake/state: HTTP {reply.status}: {await reply.text()}")
            return state_from_snapshot(await reply.json())

    async def control(self, command: dict[str, Any]) -> dict[str, Any]:
        url = self._url("/_fake/control")
        async with aiohttp.ClientSession() as http, http.post(url, json=command) as reply:
            body: dict[str, Any] = await reply.json()
            if reply.status != 200:
                raise FakeProcessError(f"POST /_fake/control {command}: HTTP {reply.status}: {body}")
            return body


class InProcessFake:
    """The fake on the harness's own event loop, behind the same interface as FakeProcess: what the
    benches did before, kept to compare with."""

    def __init__(self, options: FakeOptions | None = None) -> None:
        self.server = FakeRealtimeServer(options=options)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    async def read_state(self) -> FakeState:
        # A copy, as the process gives: a caller holding it does not see later changes either.
        return state_from_snapshot(self.server.state.snapshot())

    async def control(self, command: dict[str, Any]) -> dict[str, Any]:
        return await self.server.control(command)


@contextlib.asynccontextmanager
async def running_fake(kind: FakeKind, options: FakeOptions | None = None) -> AsyncIterator[ModelServer]:
    """A started fake of `kind`, stopped (the process reaped) however the body ends."""
    fake: FakeProcess | InProcessFake = FakeProcess(options) if kind == "process" else InProcessFake(options)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
