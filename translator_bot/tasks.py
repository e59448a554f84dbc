"""One way to own background tasks.

Every object that runs work in the background owns a :class:`TaskSet`: it spawns tasks with a name, the set
keeps a strong reference until each task ends (asyncio itself keeps only a weak one), an exception that ends
a task is logged once with the task's name instead of vanishing into "Task exception was never retrieved",
and ``close()`` cancels whatever is still running and waits for it, so nothing outlives its owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")

_log = logging.getLogger(__name__)


class TaskSet:
    """Background tasks owned by one object; ``close()`` cancels and awaits them all."""

    def __init__(self, owner: str, *, logger: logging.Logger | None = None) -> None:
        self._owner = owner
        self._log = logger or _log
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(
        self,
        coro: Coroutine[Any, Any, _T],
        *,
        name: str,
        on_done: Callable[[asyncio.Task[_T]], None] | None = None,
    ) -> asyncio.Task[_T]:
        """Start ``coro`` as a task named ``name``; it is cancelled by :meth:`close`.

        ``on_done`` runs when the task ends, however it ends (after the set has logged a failure).
        """
        if self._closed:
            coro.close()  # never awaited: close it so Python does not warn about it
            raise RuntimeError(f"{self._owner}: cannot start {name!r} after close()")
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)

        def finished(done: asyncio.Task[_T]) -> None:
            self._tasks.discard(done)
            if not done.cancelled() and (error := done.exception()) is not None:
                self._log.error("%s: task %r failed: %s", self._owner, done.get_name(), error, exc_info=error)
            if on_done is not None:
                on_done(done)

        task.add_done_callback(finished)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def __bool__(self) -> bool:
        # An empty set is still a set that exists: truthiness must not mean "has tasks" by accident.
        return True

    @property
    def names(self) -> list[str]:
        """Names of the tasks still running, for diagnostics."""
        return sorted(task.get_name() for task in self._tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    async def cancel(self, task: asyncio.Task[Any]) -> None:
        """Cancel one task of this set and wait until it has ended."""
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        """Cancel every task still running and wait for all of them; no new task may start after this.

        Safe to call twice. A task that swallows its cancellation is still awaited, so ``close()`` returns
        only once nothing this set started is running.
        """
        self._closed = True
        while self._tasks:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._tasks.difference_update(pending)
