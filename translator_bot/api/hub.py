"""Hands the interpreter's events to its owner's handlers and iterators, so that nothing the owner
does can harm the meeting.

- A plain function is called at once, in order; if it raises, the error is logged and the meeting
  goes on. It runs on the event loop, so it must not block (hand slow work to a coroutine).
- A coroutine function gets its own task that runs it for one event after the other, in order,
  from a bounded queue: a handler that falls behind by `BACKLOG` events loses the oldest.
- `events()` is an async iterator with the same bounded queue, ending after the `Ended` event.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import UnionType
from typing import Any

from translator_bot.api.events import Ended, Event
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)

BACKLOG = 1000  # events kept for a handler or iterator that falls behind; beyond that the oldest go

Handler = Callable[[Any], object]


class _Backlog:
    """A bounded queue that drops its oldest event when full, and says so once per overflow."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._items: collections.deque[Event] = collections.deque(maxlen=BACKLOG)
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, event: Event) -> None:
        if len(self._items) == BACKLOG:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % BACKLOG == 0:
                log.warning("%s is %d events behind: %d dropped so far", self._owner, BACKLOG, self.dropped)
        self._items.append(event)
        self._ready.set()

    async def get(self) -> Event:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


@dataclass(eq=False)
class _Subscription:
    kind: type[Any] | UnionType  # an event class, or a union of them (`Event`: all)
    handler: Handler
    backlog: _Backlog | None  # coroutine handlers only: delivered by their own task
    task: asyncio.Task[None] | None = None


class EventHub:
    def __init__(self) -> None:
        self._handlers: list[_Subscription] = []
        self._iterators: set[_Backlog] = set()
        self._tasks = TaskSet("interpreter events", logger=log)
        self._started = False
        self._ended: Ended | None = None

    def start(self) -> None:
        """Start the tasks of the coroutine handlers (those subscribed before the loop ran)."""
        self._started = True
        for subscription in self._handlers:
            self._start_delivery(subscription)

    def subscribe(self, kind: type[Any] | UnionType, handler: Handler) -> Callable[[], None]:
        backlog = (
            _Backlog(f"event handler {_name(handler)}") if inspect.iscoroutinefunction(handler) else None
        )
        subscription = _Subscription(kind, handler, backlog)
        self._handlers.append(subscription)
        if self._started:
            self._start_delivery(subscription)

        def unsubscribe() -> None:
            if subscription in self._handlers:
                self._handlers.remove(subscription)
            if subscription.task is not None:
                subscription.task.cancel()

        return unsubscribe

    def _start_delivery(self, subscription: _Subscription) -> None:
        if subscription.backlog is not None and subscription.task is None and self._ended is None:
            subscription.task = self._tasks.spawn(
                self._deliver(subscription.backlog, subscription.handler),
                name=f"interpreter events: {_name(subscription.handler)}",
            )

    def emit(self, event: Event) -> None:
        if self._ended is not None:
            return
        if isinstance(event, Ended):
            self._ended = event
        for backlog in self._iterators:
            backlog.put(event)
        for subscription in list(self._handlers):
            if not isinstance(event, subscription.kind):
                continue
            if subscription.backlog is not None:
                subscription.backlog.put(event)
                continue
            try:
                subscription.handler(event)
            except Exception:
                log.exception(
                    "the %s handler %s failed; the meeting goes on",
                    type(event).__name__,
                    _name(subscription.handler),
                )

    async def events(self) -> AsyncIterator[Event]:
        if self._ended is not None:
            yield self._ended
            return
        backlog = _Backlog("an events() iterator")
        self._iterators.add(backlog)
        try:
            while True:
                event = await backlog.get()
                yield event
                if isinstance(event, Ended):
                    return
        finally:
            self._iterators.discard(backlog)

    async def _deliver(self, backlog: _Backlog, handler: Callable[[Any], object]) -> None:
        while True:
            event = await backlog.get()
            try:
                result = handler(event)
                if isinstance(result, Awaitable):
                    await result
            except Exception:
                log.exception(
                    "the %s handler %s failed; the meeting goes on", type(event).__name__, _name(handler)
                )
            if isinstance(event, Ended):
                return

    async def aclose(self, grace_s: float) -> None:
        """Let coroutine handlers finish what they were given (up to `grace_s`), then cancel them."""
        pending = [s.task for s in self._handlers if s.task is not None and not s.task.done()]
        if pending:
            await asyncio.wait(pending, timeout=grace_s)
        await self._tasks.close()


def _name(handler: Callable[..., object]) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
