"""Ctrl-C (SIGINT) on the commands that are not `join` exits 130, as any interrupted command does,
so a script cannot take an interrupted demo for one that delivered every sentence; SIGTERM (how a
service manager stops the servers) stays a clean 0. Real processes, real signals. `join`'s clean
leave on SIGINT (exit 0) is tested in test_room_cli.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from translator_bot.system.netns import PrivateNetwork

pytestmark = pytest.mark.timeout(300)


def environ(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "TRANSLATOR_"))
    }
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Command:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.output = ""

    async def wait_for(self, pattern: str, timeout_s: float = 120) -> None:
        """Reads the merged stdout/stderr until `pattern` shows (the command is up)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout_s):
            while not re.search(pattern, self.output):
                line = await self.proc.stdout.readline()
                if not line:
                    pytest.fail(f"exited ({await self.proc.wait()}) before {pattern!r}:\n{self.output}")
                self.output += line.decode(errors="replace")

    async def stop(self, sig: signal.Signals, timeout_s: float = 60) -> int:
        assert self.proc.stdout is not None
        self.proc.send_signal(sig)
        async with asyncio.timeout(timeout_s):
            self.output += (await self.proc.stdout.read()).decode(errors="replace")
            return await self.proc.wait()


def _interruptible() -> None:
    """Runs in the child before exec: SIGINT at its default, as for a command started from a terminal.

    A test run started in the background of a non-interactive shell (`.ci/run &`, nohup) inherits SIGINT
    ignored, and Python keeps an ignored SIGINT ignored: without this, Ctrl-C would never reach the
    command and the test would measure the runner, not the command."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.asynccontextmanager
async def command(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> AsyncIterator[Command]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "translator_bot",
        *argv,
        cwd=cwd,
        env=env or environ(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_interruptible,
    )
    try:
        yield Command(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
async def test_fake_realtime(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    async with command("fake-realtime", "--port", str(free_port()), cwd=tmp_path) as fake:
        await fake.wait_for(r"fake realtime server ready")
        assert await fake.stop(sig) == code, fake.output


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
async def test_web(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    async with command("web", "--port", str(free_port()), cwd=tmp_path) as web:
        await web.wait_for(r"meeting page on http://")
        assert await web.stop(sig) == code, web.output
        assert "Traceback" not in web.output, web.output


async def test_doctor(tmp_path: Path) -> None:
    """`doctor --online` waiting on a room server that accepts and never answers, then Ctrl-C."""
    connected = asyncio.Event()
    silent = await asyncio.start_server(lambda _r, _w: connected.set(), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    env = environ(TRANSLATOR_JANUS_URL=f"ws://127.0.0.1:{port}/", PYTHONUNBUFFERED="1")
    try:
        async with command("doctor", "--online", cwd=tmp_path, env=env) as doctor:
            async with asyncio.timeout(60):  # the doctor is connected and waits for an answer
                await connected.wait()
            assert await doctor.stop(signal.SIGINT) == 130, doctor.output
            assert "Traceback" not in doctor.output, doctor.output
    finally:
        silent.close()


@pytest.mark.janus
async def test_demo(private_network: PrivateNetwork, tmp_path: Path) -> None:
    async with command("demo", cwd=tmp_path, env=environ(PYTHONUNBUFFERED="1")) as demo:
        await demo.wait_for(r"starting the bot", timeout_s=180)  # Janus is up, the meeting begins
        assert await demo.stop(signal.SIGINT, timeout_s=120) == 130, demo.output
        assert "Traceback" not in demo.output, demo.output
