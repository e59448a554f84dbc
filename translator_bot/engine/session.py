"""The lifetime of a lane's model session, shared by both engines: connect, serve, reconnect, recycle.

One owner task per lane supervises everything; each socket ("link") has a reader task and a writer
task that the owner starts and cancels. All sends to a socket go through its writer, so events keep
their order and a slow socket never blocks the caller of `send_audio`.

Drops: the link is closed and every item it was streaming is ended toward the lane (what arrived
stays playable; nothing un-ended blocks a listener's queue). A new link is opened with backoff and
configured from the current spec; the input is replayed from the start of the speech whose
translation had not started, so an utterance cut before its translation began is translated whole,
and one whose translation was already being heard is not heard a second time. The replay is bounded
(`MAX_REPLAY_MS`): every replayed second is paid for again.

Outages: the lane has one backoff (0.5 s doubling to 8 s, with jitter) that persists across drops
and is reset only by a link that proved healthy (delivered a translation or stayed up
`healthy_after_s`), so a server that accepts and then closes at once is retried ever more slowly
instead of in a storm. While no link serves, the session is DEGRADED with an `outage` (since, reason)
for /healthz, and keeps retrying; only an outage longer than `provider_outage_seconds` ends it with
ProviderUnavailableError (exit 5). A refused key or no quota is ProviderFatalError (exit 4) at once.

Recycle: before the provider's session cap (`session_max_seconds` after the link opened), a second
link is opened and configured while the first keeps serving; the input switches to it at a quiet
moment (forced after `recycle_grace_s`); the old link gets no more audio, finishes what it was
producing, and is then closed. Nothing is lost or cut at a quiet switch. A forced switch in
mid-speech either moves that speech whole to the new link (realtime: the old one is told to forget
it) or leaves it to the old link, which translates what it received (translate): never both, so
nothing is heard twice.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import aiohttp
from pydantic import BaseModel

from translator_bot.audio.formats import BYTES_PER_SAMPLE
from translator_bot.engine.base import (
    Clock,
    EngineEvent,
    EngineSession,
    EngineState,
    LaneSpec,
    Outage,
    SpeechStarted,
    TranslatedAudio,
    Usage,
)
from translator_bot.engine.connection import (
    Connection,
    ConnectionClosed,
    Parser,
    describe,
    keep_refusal_body,
    open_socket,
)
from translator_bot.engine.endpoint import Endpoint
from translator_bot.engine.feed import AudioFeed, ms_to_samples, samples_to_ms
from translator_bot.engine.lifetime import (
    EXPIRED_CODES,
    Backoff,
    RetryableError,
    fatal_message,
    is_fatal,
    is_retryable,
)
from translator_bot.errors import ProviderError, ProviderFatalError, ProviderUnavailableError
from translator_bot.metrics import ENGINE_AUDIO_DROPPED_MS, ENGINE_EVENTS_DROPPED, ENGINE_RECONNECTS
from translator_bot.settings import Settings

log = logging.getLogger(__name__)

S = TypeVar("S")

EVENT_QUEUE_MAX = 4096  # ~7 minutes of 100 ms audio chunks: only a stalled consumer fills it
CONFIGURE_TIMEOUT_S = 10.0
_TICK_S = 0.25  # reader wake-up for engine timers when no event arrives
_REPLAY_PAD_MS = 300  # audio kept before a speech start, like the server VAD's prefix padding
MAX_REPLAY_MS = 10_000  # most input a new link is sent again (or late) at once: a long sentence
HEALTHY_AFTER_S = 30.0  # a link up this long shows the provider is back (backoff reset, outage over)


class _End:
    pass


@dataclass(frozen=True)
class _Failure:
    error: Exception  # a ProviderError, or a defect that ended the owner task


_QueueItem = EngineEvent | _End | _Failure


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


class ManagedSession(EngineSession, Generic[S]):
    """Everything but the protocol: engines supply configuration, parsing and event handling."""

    engine_name: str = ""
    chunk_ms: int = 100

    def __init__(
        self,
        endpoint: Endpoint,
        spec: LaneSpec,
        settings: Settings,
        *,
        clock: Clock = time.monotonic,
        give_up_after_s: float | None = None,
        recycle_grace_s: float = 20.0,
        history_seconds: float = 20.0,
        healthy_after_s: float = HEALTHY_AFTER_S,
    ) -> None:
        self._endpoint = endpoint
        self._spec = spec
        self._settings = settings
        self._clock = clock
        # The longest outage survived; None: the operator's TRANSLATOR_PROVIDER_OUTAGE_SECONDS.
        self._give_up_after_s = (
            settings.provider_outage_seconds if give_up_after_s is None else give_up_after_s
        )
        self._healthy_after_s = healthy_after_s
        self._backoff = Backoff()  # one per lane: kept across drops, reset only by a healthy link
        self._lost_since: float | None = None  # loop time the lane last lost a working link
        self._recycle_grace_s = recycle_grace_s
        self._where = describe(endpoint)
        self._feed = AudioFeed(history_seconds, on_speech_start=self._local_speech_start)
        self._queue: asyncio.Queue[_QueueItem] = asyncio.Queue(EVENT_QUEUE_MAX)
        self._http: aiohttp.ClientSession | None = None
        self._owner: asyncio.Task[None] | None = None
        self._active: Link[S] | None = None
        self._links: set[Link[S]] = set()
        self._retirers: set[asyncio.Task[None]] = set()
        self._ready: asyncio.Future[None] | None = None
        self._closing = False
        self._serial = 0
        self._dropped_reported = 0
        self.reconnects = 0
        self.recycles = 0
        self.replayed_ms = 0  # input sent a second time after drops (paid for twice)
        self.usage_total = Usage()
        self.audio_sent_samples = 0  # input audio on the wire, replays included: what duration pricing bills
        self.state = EngineState.CONNECTING
        self.outage: Outage | None = None

    # --- engine hooks ----------------------------------------------------------------------------
    @abc.abstractmethod
    def _parser(self) -> Parser: ...

    @abc.abstractmethod
    def _new_link_state(self) -> S: ...

    @abc.abstractmethod
    def _session_update(self, event_id: str) -> BaseModel:
        """The full configuration for the current spec (sent on every connect and spec change)."""

    @abc.abstractmethod
    def _audio_event(self, b64: str) -> BaseModel: ...

    @abc.abstractmethod
    def _handle(self, link: Link[S], event: BaseModel) -> None:
        """Turn one server event into lane events; raise ProviderFatalError for a fatal error."""

    def _tick(self, link: Link[S]) -> None:
        """Called when a link has been quiet for a while (engine timers)."""

    def _resume_point(self, link: Link[S]) -> int | None:
        """Absolute sample from which a new link must hear the input again, if any."""
        return self._feed.recent_speech_start(ms_to_samples(2000), ms_to_samples(_REPLAY_PAD_MS))

    def _clean_point(self, link: Link[S]) -> bool:
        """True when switching the input to a new link now cuts no speech."""
        return not self._feed.voiced

    def _switch_point(self, link: Link[S]) -> int | None:
        """At a forced recycle in mid-speech: absolute sample from which the new link hears the input
        again, None when the old link translates what it already received (it gets no more)."""
        return None

    def _end_items(self, link: Link[S]) -> None:
        """The link is gone: end toward the lane every item it was streaming (TranslationDone)."""

    def _has_pending_output(self, link: Link[S]) -> bool:
        """True while a retiring link still owes output for input it received."""
        return False

    def _on_retire(self, link: Link[S]) -> None:
        """The link gets no more input from now on (e.g. ask the server to flush and close)."""

    def _local_speech_start(self) -> None:
        """The input gate heard speech begin (used by engines without server VAD)."""

    # --- public interface ------------------------------------------------------------------------
    @property
    def spec(self) -> LaneSpec:
        return self._spec

    async def start(self) -> None:
        if self._owner is not None:
            return
        loop = asyncio.get_running_loop()
        self._http = aiohttp.ClientSession(middlewares=(keep_refusal_body,))
        self._ready = loop.create_future()
        self._owner = asyncio.create_task(self._run(), name=f"engine-{self._spec.lane_id}")
        self._owner.add_done_callback(self._owner_ended)
        try:
            await asyncio.shield(self._ready)
        except BaseException:
            await self.aclose()
            raise

    def send_audio(self, pcm: bytes) -> None:
        if self._closing or not pcm:
            return
        try:
            self._feed.push(bytes(pcm))
        except (TypeError, ValueError):
            log.warning("lane %s: ignored audio that is not bytes", self._spec.lane_id)
            return
        if self._feed.dropped_samples > self._dropped_reported:
            lost = self._feed.dropped_samples - self._dropped_reported
            self._dropped_reported = self._feed.dropped_samples
            ENGINE_AUDIO_DROPPED_MS.labels(engine=self.engine_name).inc(lost * 1000 / 24000)
        active = self._active
        if active is not None and self._feed.available() >= ms_to_samples(self.chunk_ms):
            active.wake.set()

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

    def update_spec(self, spec: LaneSpec) -> None:
        self._spec = spec
        # Links not yet configured pick the spec up in _configure; a link waiting to take over at a
        # recycle gets the update queued and sends it when its writer starts.
        for link in self._links:
            if not link.retiring and link.reader is not None:
                self._serial += 1
                link.queue(self._session_update(f"upd_{self._serial}"))

    async def aclose(self) -> None:
        if self._closing and self._owner is None:
            return
        self._closing = True
        tasks = [t for t in (self._owner, *self._retirers) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._owner = None
        for link in list(self._links):
            await self._close_link(link)
        if self._http is not None:
            await self._http.close()
            self._http = None
        self.state = EngineState.CLOSED
        self._push_control(_End())

    # --- lane events -----------------------------------------------------------------------------
    def _emit(self, event: EngineEvent) -> None:
        active = self._active
        if isinstance(event, TranslatedAudio) and active is not None and not active.proven:
            self._recovered(active)  # a translation arrived: this link works
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            ENGINE_EVENTS_DROPPED.labels(engine=self.engine_name).inc()
        self._queue.put_nowait(event)

    def _push_control(self, item: _End | _Failure) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(item)

    def _owner_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        if not isinstance(error, Exception):
            return
        log.error("lane %s: engine stopped by an unexpected error", self._spec.lane_id, exc_info=error)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        self._push_control(_Failure(error))

    def _speech_started_now(self) -> None:
        self._emit(SpeechStarted(self._clock()))

    def _add_usage(self, usage: Usage) -> None:
        self.usage_total = self.usage_total + usage
        self._emit(usage)

    def _fail(self, error: ProviderError) -> None:
        """A fatal error anywhere ends the session: tell the consumer, stop the owner."""
        log.error("lane %s: %s", self._spec.lane_id, error)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()  # retrieved here; start() re-raises it
        self._push_control(_Failure(error))
        self._closing = True
        if self._owner is not None and self._owner is not asyncio.current_task():
            self._owner.cancel()

    def _error_event(self, link: Link[S], error_type: str | None, code: str | None, message: str) -> None:
        """Shared handling of the `error` server event."""
        if is_fatal(error_type, code):
            raise ProviderFatalError(fatal_message(error_type, code, self._where))
        if code in EXPIRED_CODES:
            link.expired = True
            log.info(
                "lane %s: the provider ended session #%d at its time cap", self._spec.lane_id, link.serial
            )
            return
        level = logging.WARNING if is_retryable(error_type, code) else logging.INFO
        log.log(
            level, "lane %s: provider error %s/%s: %s", self._spec.lane_id, error_type, code, message[:200]
        )

    # --- owner task ------------------------------------------------------------------------------
    async def _run(self) -> None:
        link: Link[S] | None = None
        try:
            link = await self._open_with_retry(0.0)
            self._activate(link, None)
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            while True:
                link = await self._serve(link)
        except ProviderError as exc:
            self._fail(exc)
        finally:
            self.state = EngineState.CLOSED if self._closing else self.state
            for open_link in list(self._links):
                if not open_link.retiring:
                    await self._close_link(open_link)

    async def _serve(self, link: Link[S]) -> Link[S]:
        """Serve `link` until it drops or is recycled; return the link that replaces it."""
        assert link.reader is not None
        loop = asyncio.get_running_loop()
        recycle_at = link.opened_at + self._settings.session_max_seconds
        while True:
            wake = recycle_at
            recovering = self.outage is not None or self._lost_since is not None
            if recovering and not link.proven:
                wake = min(wake, link.activated_at + self._healthy_after_s)
            await asyncio.wait({link.reader}, timeout=max(0.0, wake - loop.time()))
            if link.reader.done():
                return await self._replace_dropped(link)
            now = loop.time()
            if recovering and not link.proven and now - link.activated_at >= self._healthy_after_s:
                self._recovered(link)
            if now >= recycle_at:
                return await self._recycle(link)

    def _healthy(self, link: Link[S], now: float) -> bool:
        return link.proven or now - link.activated_at >= self._healthy_after_s

    def _recovered(self, link: Link[S]) -> None:
        """`link` proved the provider works: any outage is over and the backoff starts afresh."""
        link.proven = True
        self._backoff.reset()
        self._lost_since = None
        outage, self.outage = self.outage, None
        if outage is not None:
            log.warning(
                "lane %s: the model provider is back after %.0f s; interpreting again",
                self._spec.lane_id,
                asyncio.get_running_loop().time() - outage.since,
            )

    def _degraded(self, now: float, reason: str) -> None:
        """A connection attempt failed or a link did not stay up: the lane is in an outage."""
        if self.outage is None:
            since = self._lost_since if self._lost_since is not None else now
            self.outage = Outage(since, time.time() - (now - since), reason)
        else:
            self.outage.reason = reason
        self.outage.attempts += 1
        self.state = EngineState.DEGRADED

    def _check_outage(self, now: float) -> None:
        outage = self.outage
        if outage is not None and now - outage.since >= self._give_up_after_s:
            raise ProviderUnavailableError(
                f"the model provider at {self._where} has been unavailable for "
                f"{now - outage.since:.0f} s, longer than the {self._give_up_after_s:.0f} s allowed "
                f"(TRANSLATOR_PROVIDER_OUTAGE_SECONDS); last error: {outage.reason}"
            )

    async def _replace_dropped(self, link: Link[S]) -> Link[S]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        resume = self._resume_point(link)
        expired = link.expired
        healthy = self._healthy(link, now)
        await self._close_link(link)
        self._active = None
        self.reconnects += 1
        reason = "expired" if expired else "drop"
        ENGINE_RECONNECTS.labels(engine=self.engine_name, reason=reason).inc()
        if healthy:
            self._backoff.reset()
            self._lost_since = now
            self.state = EngineState.CONNECTING
        else:
            if self._lost_since is None:
                self._lost_since = now
            # Up and gone again before it proved anything: the provider is not really back.
            self._degraded(now, f"session #{link.serial} ended after {now - link.activated_at:.1f} s")
        log.warning("lane %s: session #%d ended (%s); reconnecting", self._spec.lane_id, link.serial, reason)
        # The provider's routine end of a healthy session is answered at once; anything else waits.
        delay = 0.0 if expired and healthy else self._backoff.next_delay()
        new = await self._open_with_retry(delay)
        self._activate(new, resume)
        return new

    async def _recycle(self, old: Link[S]) -> Link[S]:
        log.info("lane %s: recycling session #%d before the provider's cap", self._spec.lane_id, old.serial)
        new = await self._open_with_retry(0.0, serving=old)
        assert old.reader is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._recycle_grace_s
        while not old.reader.done() and not self._clean_point(old) and loop.time() < deadline:
            await asyncio.wait({old.reader}, timeout=0.05)
        if old.reader.done():
            resume = self._resume_point(old)
            await self._close_link(old)
            self._activate(new, resume)
            self.reconnects += 1
            ENGINE_RECONNECTS.labels(engine=self.engine_name, reason="drop").inc()
            return new
        # At a quiet moment nothing is cut. Forced in mid-speech: the engine says whether the new link
        # hears that speech again (and the old one then must not answer it) or the old one finishes it.
        resume = None if self._clean_point(old) else self._switch_point(old)
        self._activate(new, resume)
        self.recycles += 1
        ENGINE_RECONNECTS.labels(engine=self.engine_name, reason="recycle").inc()
        old.retiring = True
        self._on_retire(old)
        task = asyncio.create_task(self._retire(old), name=f"engine-retire-{self._spec.lane_id}")
        self._retirers.add(task)
        task.add_done_callback(self._retirers.discard)
        return new

    async def _retire(self, link: Link[S], limit_s: float = 30.0) -> None:
        """Let a replaced link deliver what it still owes, then close it."""
        try:
            assert link.reader is not None
            async with asyncio.timeout(limit_s):
                while not link.reader.done() and self._has_pending_output(link):
                    await asyncio.wait({link.reader}, timeout=0.1)
        except TimeoutError:
            log.info("lane %s: retired session #%d still busy; closing it", self._spec.lane_id, link.serial)
        finally:
            await self._close_link(link)

    def _activate(self, link: Link[S], resume: int | None) -> None:
        feed = self._feed
        before = feed.sent_upto
        position = before if resume is None else min(before, resume)
        # Bounded: after a long outage the new link gets the recent past, not a costly backlog.
        feed.seek(max(position, feed.end - ms_to_samples(MAX_REPLAY_MS)))
        if feed.sent_upto < before:
            replayed = samples_to_ms(before - feed.sent_upto)
            self.replayed_ms += replayed
            log.info(
                "lane %s: session #%d hears the last %d ms again", self._spec.lane_id, link.serial, replayed
            )
        link.origin = feed.sent_upto
        link.activated_at = asyncio.get_running_loop().time()
        self._active = link
        self.state = EngineState.CONNECTED
        link.writer = asyncio.create_task(self._write(link), name=f"engine-write-{self._spec.lane_id}")
        link.wake.set()

    # --- one link --------------------------------------------------------------------------------
    async def _open_with_retry(self, delay: float, *, serving: Link[S] | None = None) -> Link[S]:
        """Open and configure a link, retrying with the lane's backoff; raises ProviderFatalError
        (refused) or ProviderUnavailableError (an outage longer than the limit). `serving`: a link
        that still serves meanwhile (a recycle), so failures are no outage while it lives."""
        loop = asyncio.get_running_loop()
        while True:
            if delay > 0:
                limit = math.inf
                if self.outage is not None:
                    limit = max(0.0, self.outage.since + self._give_up_after_s - loop.time())
                await asyncio.sleep(min(delay, limit))
            self._check_outage(loop.time())
            try:
                return await self._open_once()
            except RetryableError as exc:
                now = loop.time()
                if serving is None or serving.reader is None or serving.reader.done():
                    if self._lost_since is None and serving is not None:
                        self._lost_since = now
                    self._degraded(now, str(exc))
                    self._check_outage(now)
                delay = self._backoff.next_delay()
                log.warning("lane %s: %s; retrying in %.1f s", self._spec.lane_id, exc, delay)

    async def _open_once(self) -> Link[S]:
        assert self._http is not None
        ws = await open_socket(self._http, self._endpoint)
        self._serial += 1
        conn = Connection(ws, self._parser(), self.engine_name)
        link: Link[S] = Link(conn, self._serial, self._new_link_state(), asyncio.get_running_loop().time())
        self._links.add(link)
        try:
            await self._configure(link)
        except BaseException:
            await self._close_link(link)
            raise
        link.reader = asyncio.create_task(self._read(link), name=f"engine-read-{self._spec.lane_id}")
        return link

    async def _configure(self, link: Link[S]) -> None:
        """Send the configuration and wait for the server to confirm it."""
        event_id = f"cfg_{link.serial}_0"
        try:
            async with asyncio.timeout(CONFIGURE_TIMEOUT_S):
                await link.conn.send(self._session_update(event_id))
                while True:
                    event = await link.conn.receive()
                    kind = getattr(event, "type", "")
                    if kind == "session.updated":
                        return
                    if kind == "error":
                        err = event.error  # type: ignore[union-attr]
                        if is_fatal(err.type, err.code):
                            raise ProviderFatalError(fatal_message(err.type, err.code, self._where))
                        if getattr(err, "event_id", None) == event_id:
                            raise ProviderFatalError(
                                f"the model provider at {self._where} rejected the session configuration "
                                f"({err.code or err.type}: {str(err.message)[:200]})"
                            )
                        if is_retryable(err.type, err.code):
                            raise RetryableError(f"provider error while configuring ({err.code or err.type})")
                        self._handle(link, event)  # type: ignore[arg-type]
        except TimeoutError:
            raise RetryableError(f"{self._where} did not confirm the session configuration") from None
        except ConnectionClosed as exc:
            raise RetryableError(f"{self._where} closed the socket while configuring ({exc})") from None

    async def _read(self, link: Link[S]) -> None:
        try:
            while True:
                event = await link.conn.receive(_TICK_S)
                if event is None:
                    self._tick(link)
                    continue
                try:
                    self._handle(link, event)
                except ProviderFatalError:
                    raise
                except Exception:
                    # A well-formed event we could not make sense of must not end the session.
                    log.exception(
                        "lane %s: failed to handle %s", self._spec.lane_id, getattr(event, "type", "?")
                    )
        except ConnectionClosed as exc:
            log.info("lane %s: session #%d socket closed: %s", self._spec.lane_id, link.serial, exc)
        except ProviderFatalError as exc:
            self._fail(exc)
        finally:
            link.finished.set()
            self._tick(link)

    async def _write(self, link: Link[S]) -> None:
        chunk = ms_to_samples(self.chunk_ms)
        try:
            while True:
                if link.outbox:
                    await link.conn.send(link.outbox.popleft())
                    continue
                if self._active is link and self._feed.available() >= chunk:
                    pcm = self._feed.take(chunk)
                    await link.conn.send(self._audio_event(base64.b64encode(pcm).decode("ascii")))
                    self.audio_sent_samples += len(pcm) // BYTES_PER_SAMPLE
                    continue
                link.wake.clear()
                await link.wake.wait()
        except ConnectionClosed:
            # The reader sees the same close and the owner replaces the link; closing here makes
            # sure a half-open socket cannot leave the reader waiting.
            await link.conn.close()

    async def _close_link(self, link: Link[S]) -> None:
        current = asyncio.current_task()
        tasks = [t for t in (link.reader, link.writer) if t is not None and t is not current and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await link.conn.close()
        link.finished.set()
        self._end_items(link)
        self._links.discard(link)
        if self._active is link:
            self._active = None
