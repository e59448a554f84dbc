"""`translator-bot join` as a child process, the way a user runs it, with its log lines collected."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from translator_bot.tasks import TaskSet

BOT = Path(sys.executable).with_name("translator-bot")


class BotProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.stdout_lines: list[str] = []  # only with capture_stdout
        self._changed = asyncio.Event()
        self._tasks = TaskSet("bot process")
        self._reader: asyncio.Task[None] | None = None
        self._stdout_reader: asyncio.Task[None] | None = None

    def _start_readers(self) -> None:
        self._reader = self._tasks.spawn(self._read(), name="bot log reader")
        if self.proc.stdout is not None:
            self._stdout_reader = self._tasks.spawn(self._read_stdout(), name="bot stdout reader")

    @classmethod
    async def start(
        cls,
        args: list[str],
        env: Mapping[str, str],
        cwd: str | Path = "/tmp",
        *,
        capture_stdout: bool = False,
    ) -> BotProcess:
        if not BOT.exists():
            raise FileNotFoundError(f"console script missing: {BOT} (install the package: pip install -e .)")
        proc = await asyncio.create_subprocess_exec(
            str(BOT),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if capture_stdout else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            cwd=str(cwd),
        )
        bot = cls(proc)
        bot._start_readers()
        return bot

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self._changed.set()
        self._changed.set()

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.stdout_lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    async def wait_line(self, pattern: str, timeout_s: float = 15.0) -> str:
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    for line in self.lines:
                        if regex.search(line):
                            return line
                    if self._reader is None or self._reader.done():
                        raise AssertionError(
                            f"bot exited ({self.proc.returncode}) before {pattern!r}:\n{self.text}"
                        )
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no line matching {pattern!r} within {timeout_s}s:\n{self.text}") from None

    async def wait(self, timeout_s: float = 15.0) -> int:
        async with asyncio.timeout(timeout_s):
            code = await self.proc.wait()
            await self._readers_done()
        return code

    async def _readers_done(self) -> None:
        """The process has exited: its pipes end, so the readers finish by themselves."""
        for reader in (self._reader, self._stdout_reader):
            if reader is not None:
                await reader
        await self._tasks.close()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self._readers_done()
