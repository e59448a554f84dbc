"""The `join` command: the embeddable Interpreter (translator_bot.api) run as a process.

What is the process's own is here: signals (SIGTERM/SIGINT leave the meeting), the ops HTTP server
(/metrics, /livez, /readyz, /healthz), the heap trim (system/malloc.py) and the exit code. The meeting
itself, its shutdown order and the transcript are the Interpreter's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from translator_bot.api import Interpreter, Result
from translator_bot.errors import ExitCode
from translator_bot.ops import OpsServer
from translator_bot.settings import Settings
from translator_bot.system.malloc import keep_heap_trimmed
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)


def run_join(settings: Settings, meeting_id: str, *, create_room: bool = False) -> ExitCode:
    """Join and interpret until SIGTERM/SIGINT or the meeting ends (room destroyed, nobody left):
    exit 0. RoomError (including a room server unreachable for TRANSLATOR_ROOM_RECONNECT_SECONDS) and
    ProviderError propagate to the CLI, which turns them into exit codes 3, 4 and 5."""
    return asyncio.run(_join(settings, meeting_id, create_room))


async def _join(settings: Settings, meeting_id: str, create_room: bool) -> ExitCode:
    loop = asyncio.get_running_loop()
    bot = Interpreter(settings, meeting_id, create_room=create_room)
    ops: OpsServer | None = None
    process_tasks = TaskSet("join process", logger=log)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, bot.stop)
    try:
        process_tasks.spawn(keep_heap_trimmed(), name="heap trim")
        if settings.metrics_port:
            ops = OpsServer(settings.metrics_host, settings.metrics_port, lambda: _health(bot))
            await ops.start()
        async with bot:
            result = await bot.wait()
    finally:
        await process_tasks.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if ops is not None:
            with contextlib.suppress(Exception):
                await ops.stop()
    return exit_code(result)


def exit_code(result: Result) -> ExitCode:
    """A clean leave is 0; an error is raised for the CLI, which prints it and exits with its code
    (the same as `result.exit_code`)."""
    if result.error is not None:
        raise result.error
    return result.exit_code


def _health(bot: Interpreter) -> tuple[bool, dict[str, Any]]:
    health = bot.health()
    return health.ready, health.details
