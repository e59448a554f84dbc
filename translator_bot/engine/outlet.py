"""The bounded queue of events from a lane's model session to the lane's one consumer task.

Bounded because nothing may queue without a bound: only a stalled consumer fills it, and then the
oldest event goes (counted), never the session's end or its failure, which the consumer must see.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from translator_bot.engine.base import EngineEvent
from translator_bot.metrics import ENGINE_EVENTS_DROPPED

EVENT_QUEUE_MAX = 4096  # ~7 minutes of 100 ms audio chunks: only a stalled consumer fills it


class _End:
    pass


@dataclass(frozen=True)
class _Failure:
    error: Exception  # a ProviderError, or a defect that ended the session's owner task


class EventOutlet:
    def __init__(self, engine_name: str, maxsize: int = EVENT_QUEUE_MAX) -> None:
        self._engine_name = engine_name
        self._queue: asyncio.Queue[EngineEvent | _End | _Failure] = asyncio.Queue(maxsize)

    def put(self, event: EngineEvent) -> None:
        if self._make_room():
            ENGINE_EVENTS_DROPPED.labels(engine=self._engine_name).inc()
        self._queue.put_nowait(event)

    def end(self) -> None:
        """No more events: the consumer's iteration ends."""
        self._make_room()
        self._queue.put_nowait(_End())

    def fail(self, error: Exception) -> None:
        """The session died for good: the consumer's iteration raises `error`."""
        self._make_room()
        self._queue.put_nowait(_Failure(error))

    def _make_room(self) -> bool:
        if not self._queue.full():
            return False
        with contextlib.suppress(asyncio.QueueEmpty):
            self._queue.get_nowait()
        return True

    async def events(self) -> AsyncIterator[EngineEvent]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                self._queue.put_nowait(item)  # a second consumer ends too
                return
            if isinstance(item, _Failure):
                self._queue.put_nowait(item)
                raise item.error
            yield item
