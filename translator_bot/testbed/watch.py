"""Follow a RoomSession's events from tests and demos: keep them all, wait for the one you expect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from translator_bot.room.session import FeedId, FeedTrackArrived, FeedTrackGone, RoomEvent, RoomSession
from translator_bot.tasks import TaskSet
from translator_bot.testbed.participant import Recorder

E = TypeVar("E")


class RoomWatcher:
    """Consumes `room.events()`, records every event with its monotonic time, records every feed.

    `watch = RoomWatcher(room).start()`; `await watch.close()`."""

    def __init__(self, room: RoomSession, *, record: bool = True) -> None:
        self.room = room
        self.record = record
        self.events: list[tuple[float, RoomEvent]] = []
        self.recorders: dict[FeedId, Recorder] = {}
        self._changed = asyncio.Event()
        self._tasks = TaskSet("room watcher")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> RoomWatcher:
        self._task = self._tasks.spawn(self._run(), name="room-watcher")
        return self

    async def _run(self) -> None:
        async for event in self.room.events():
            self.events.append((time.monotonic(), event))
            if self.record and isinstance(event, FeedTrackArrived):
                self.recorders[event.feed] = Recorder(event.track).start()
            elif isinstance(event, FeedTrackGone) and event.feed in self.recorders:
                await self.recorders[event.feed].stop()
            self._changed.set()

    def of_type(self, kind: type[E]) -> list[E]:
        return [e for _, e in self.events if isinstance(e, kind)]

    async def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda e: True,
        timeout_s: float = 10.0,
        after: int = 0,
    ) -> E:
        """The first event of `kind` matching `predicate` among events[after:], waiting if needed."""
        async with asyncio.timeout(timeout_s):
            while True:
                for _, event in self.events[after:]:
                    if isinstance(event, kind) and predicate(event):
                        return event
                if self._task is None or self._task.done():
                    raise AssertionError(f"the room closed before a {kind.__name__} came: {self.events[-1:]}")
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        await self._tasks.close()
        for recorder in self.recorders.values():
            await recorder.stop()
