"""TaskSet: every background task has an owner that names it, logs its failure and cancels it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from translator_bot.tasks import TaskSet


async def test_close_cancels_and_waits_for_every_task() -> None:
    tasks = TaskSet("owner")
    ended: list[str] = []

    async def sleeper(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append(name)

    first = tasks.spawn(sleeper("a"), name="a")
    tasks.spawn(sleeper("b"), name="b")
    await asyncio.sleep(0)
    assert tasks.names == ["a", "b"]
    await tasks.close()
    assert sorted(ended) == ["a", "b"]
    assert first.cancelled()
    assert len(tasks) == 0


async def test_close_waits_for_a_task_that_cleans_up_slowly() -> None:
    tasks = TaskSet("owner")
    cleaned = asyncio.Event()

    async def slow_cleanup() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.05)  # an awaited close, e.g. of a socket
            cleaned.set()

    tasks.spawn(slow_cleanup(), name="slow")
    await asyncio.sleep(0)
    await tasks.close()
    assert cleaned.is_set()


async def test_a_failure_is_logged_with_the_task_name(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet("meeting")

    async def boom() -> None:
        raise ValueError("bad frame")

    done = asyncio.Event()
    tasks.spawn(boom(), name="pump 7", on_done=lambda _t: done.set())
    with caplog.at_level(logging.ERROR):
        await done.wait()
    messages = [r.getMessage() for r in caplog.records]
    assert any("meeting" in m and "pump 7" in m and "bad frame" in m for m in messages), messages
    assert len(tasks) == 0
    await tasks.close()


async def test_a_finished_task_leaves_the_set_and_on_done_sees_it() -> None:
    tasks = TaskSet("owner")
    seen: list[int] = []

    async def answer() -> int:
        return 42

    done = asyncio.Event()

    def record(task: asyncio.Task[int]) -> None:
        seen.append(task.result())
        done.set()

    tasks.spawn(answer(), name="answer", on_done=record)
    await done.wait()
    assert seen == [42]
    assert len(tasks) == 0
    await tasks.close()


async def test_cancelling_one_task_leaves_the_others() -> None:
    tasks = TaskSet("owner")
    one = tasks.spawn(asyncio.sleep(3600), name="one")
    other = tasks.spawn(asyncio.sleep(3600), name="other")
    await tasks.cancel(one)
    assert one.cancelled() and not other.done()
    assert tasks.names == ["other"]
    await tasks.close()


async def test_no_task_starts_after_close() -> None:
    tasks = TaskSet("owner")
    await tasks.close()
    coro = asyncio.sleep(1)
    with pytest.raises(RuntimeError, match="after close"):
        tasks.spawn(coro, name="late")
    await tasks.close()  # twice is fine
