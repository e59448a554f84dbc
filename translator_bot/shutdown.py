"""Stop a long-running command on SIGTERM or SIGINT, and tell the two apart afterwards.

SIGTERM is how a service manager or `docker stop` ends a server: a clean stop, exit 0. SIGINT is
Ctrl-C: the command was interrupted, and like any interrupted command it exits 130 (128 + SIGINT),
which scripts and CI read as "did not finish". `join` is the exception and keeps 0 for both (its
clean leave writes the transcript); it does not use this.
"""

from __future__ import annotations

import asyncio
import signal
from types import TracebackType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ShutdownSignals:
    """`with ShutdownSignals() as stop: ... await stop.wait()`; after the cleanup that follows,
    `stop.raise_if_interrupted()` turns a Ctrl-C into KeyboardInterrupt for the CLI's exit code."""

    def __init__(self) -> None:
        self._stopped = asyncio.Event()
        self.received: signal.Signals | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> ShutdownSignals:
        self._loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._loop is not None:
            for sig in STOP_SIGNALS:
                self._loop.remove_signal_handler(sig)
            self._loop = None

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.received is None:  # the first signal says why; a second is impatience, not a new reason
            self.received = sig
        self._stopped.set()

    async def wait(self) -> signal.Signals:
        await self._stopped.wait()
        assert self.received is not None
        return self.received

    @property
    def interrupted(self) -> bool:
        return self.received == signal.SIGINT

    def raise_if_interrupted(self) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
