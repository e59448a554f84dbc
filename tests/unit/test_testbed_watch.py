"""The room watcher starts following the room only when told to, and stops when closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from translator_bot.room.session import RoomSession
from translator_bot.testbed.watch import RoomWatcher


class ScriptedRoom:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.following = 0

    async def events(self) -> AsyncIterator[Any]:
        self.following += 1
        while True:
            yield await self.queue.get()


def test_constructing_a_watcher_starts_nothing() -> None:
    RoomWatcher(cast(RoomSession, ScriptedRoom()))  # no running loop: starting a task here would raise


async def test_a_started_watcher_records_events_until_closed() -> None:
    room = ScriptedRoom()
    watch = RoomWatcher(cast(RoomSession, room))
    await asyncio.sleep(0)
    assert room.following == 0
    watch.start()
    await room.queue.put("joined")
    assert await watch.wait_for(str, timeout_s=5) == "joined"
    await watch.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "room-watcher"]
