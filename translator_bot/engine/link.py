"""One socket of a lane (a "link"): its configuration handshake, its reader and its writer.

A link is one server-side session: its own conversation, its own audio clock, its own items. The
supervisor owns it and runs `read_link` and `write_link` as its two tasks; the engine keeps its
protocol state in `state`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

from translator_bot.engine.connection import Connection, ConnectionClosed
from translator_bot.engine.lifetime import RetryableError, fatal_message, is_fatal, is_retryable
from translator_bot.engine.timeline import InputTimeline
from translator_bot.errors import ProviderFatalError

S = TypeVar("S")

CONFIGURE_TIMEOUT_S = 10.0
TICK_S = 0.25  # reader wake-up for engine timers when no event arrives

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Link(Generic[S]):
    """One socket = one server-side session (its conversation, its clock, its items)."""

    conn: Connection
    serial: int
    state: S
    opened_at: float  # loop time
    activated_at: float = 0.0  # loop time the link got the input
    proven: bool = False  # delivered a translation, or stayed up long enough: the provider works
    origin: int = 0  # absolute input sample that was this server session's audio time 0
    timeline: InputTimeline = field(default_factory=lambda: InputTimeline(0))  # its audio clock -> input
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    outbox: deque[BaseModel] = field(default_factory=deque)
    reader: asyncio.Task[None] | None = None
    writer: asyncio.Task[None] | None = None
    expired: bool = False
    retiring: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # nothing more to deliver

    def queue(self, event: BaseModel) -> None:
        self.outbox.append(event)
        self.wake.set()


async def configure(
    conn: Connection, update: BaseModel, event_id: str, where: str, on_event: Callable[[BaseModel], None]
) -> None:
    """Send the configuration `update` (whose id is `event_id`) and wait for the server to confirm it.

    Other events that arrive meanwhile go to `on_event`. Raises ProviderFatalError when the provider
    refuses the key or the configuration, RetryableError when it does not answer or drops the socket.
    """
    try:
        async with asyncio.timeout(CONFIGURE_TIMEOUT_S):
            await conn.send(update)
            while True:
                event = await conn.receive()
                kind = getattr(event, "type", "")
                if kind == "session.updated":
                    return
                if kind == "error":
                    err = event.error  # type: ignore[union-attr]
                    if is_fatal(err.type, err.code):
                        raise ProviderFatalError(fatal_message(err.type, err.code, where))
                    if getattr(err, "event_id", None) == event_id:
                        raise ProviderFatalError(
                            f"the model provider at {where} rejected the session configuration "
                            f"({err.code or err.type}: {str(err.message)[:200]})"
                        )
                    if is_retryable(err.type, err.code):
                        raise RetryableError(f"provider error while configuring ({err.code or err.type})")
                if event is not None:
                    on_event(event)
    except TimeoutError:
        raise RetryableError(f"{where} did not confirm the session configuration") from None
    except ConnectionClosed as exc:
        raise RetryableError(f"{where} closed the socket while configuring ({exc})") from None


async def read_link(
    link: Link[S],
    handle: Callable[[BaseModel], None],
    tick: Callable[[bool], None],
    fail: Callable[[ProviderFatalError], None],
    lane_id: str,
) -> None:
    """Hand every server event to `handle`, and `tick(False)` after `TICK_S` without one, until the
    socket closes; then `tick(True)`. A ProviderFatalError from `handle` goes to `fail`."""
    try:
        while True:
            event = await link.conn.receive(TICK_S)
            if event is None:
                tick(False)
                continue
            try:
                handle(event)
            except ProviderFatalError:
                raise
            except Exception:
                # A well-formed event we could not make sense of must not end the session.
                log.exception("lane %s: failed to handle %s", lane_id, getattr(event, "type", "?"))
    except ConnectionClosed as exc:
        log.info("lane %s: session #%d socket closed: %s", lane_id, link.serial, exc)
    except ProviderFatalError as exc:
        fail(exc)
    finally:
        link.finished.set()
        tick(True)


async def write_link(link: Link[S], next_audio: Callable[[], BaseModel | None]) -> None:
    """Send the link's queued client events first, then input audio as `next_audio` yields it;
    sleep on `link.wake` when there is neither."""
    try:
        while True:
            if link.outbox:
                await link.conn.send(link.outbox.popleft())
                continue
            append = next_audio()
            if append is not None:
                await link.conn.send(append)
                continue
            link.wake.clear()
            await link.wake.wait()
    except ConnectionClosed:
        # The reader sees the same close and the owner replaces the link; closing here makes
        # sure a half-open socket cannot leave the reader waiting.
        await link.conn.close()


async def drain(link: Link[S], owes: Callable[[], bool], limit_s: float) -> bool:
    """Wait while the link's reader runs and `owes()` (output still due); False after `limit_s`."""
    assert link.reader is not None
    try:
        async with asyncio.timeout(limit_s):
            while not link.reader.done() and owes():
                await asyncio.wait({link.reader}, timeout=0.1)
    except TimeoutError:
        return False
    return True


async def stop_link(link: Link[S]) -> None:
    """Cancel the link's reader and writer (unless called from one of them) and close its socket."""
    current = asyncio.current_task()
    tasks = [t for t in (link.reader, link.writer) if t is not None and t is not current and not t.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await link.conn.close()
    link.finished.set()
