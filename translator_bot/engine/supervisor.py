"""The lifetime of a lane's model session, for any engine: connect, serve, reconnect, recycle.

`SupervisedSession` is the one class that does the model engines' I/O: it owns the sockets
("links"), their reader and writer tasks, the backoff and the recycle timer, and drives an `Engine`
(`engine.step`) that turns server events into lane events and client events. One owner task per
lane supervises everything; all sends to a socket go through its writer, so events keep their order
and a slow socket never blocks the caller of `send_audio`.

Drops: the link is closed and every item it was streaming is ended toward the lane (nothing un-ended
blocks a listener's queue); a new link is opened with backoff (`engine.health`), configured from the
current spec, and hears the input again from the engine's resume point (bounded: `engine.intake`).
A refused key or no quota ends the lane at once (ProviderFatalError, exit 4).

Recycle: before the provider's session cap (`session_max_seconds` after the link opened), a second
link is opened and configured while the first keeps serving; the input switches to it at the
engine's clean point (forced after `recycle_grace_s`: then at the engine's switch point); the old
link gets no more audio, finishes what it was producing, and is then closed.

Rest: once the engine owes nothing that needs more input and enough quiet was sent
(`engine.silence_gate`), the lane sends no appends until the next sound, then sends the pre-roll
ahead of it. The socket stays open meanwhile (the connection's WebSocket pings keep it alive, and a
lane's health is judged by what its links deliver and how long they stay up, never by its appends);
the link's `timeline` maps the server's audio clock, which skips the rest, back to the input.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

import aiohttp
from pydantic import BaseModel

from translator_bot.audio.formats import BYTES_PER_SAMPLE
from translator_bot.audio.vad import SharedChunk
from translator_bot.engine.base import (
    Clock,
    EngineEvent,
    EngineSession,
    EngineState,
    LaneSpec,
    Outage,
    TranslatedAudio,
    Usage,
)
from translator_bot.engine.connection import Connection, describe, keep_refusal_body, open_socket
from translator_bot.engine.endpoint import Endpoint
from translator_bot.engine.feed import samples_to_ms
from translator_bot.engine.health import LaneHealth
from translator_bot.engine.intake import MAX_REPLAY_MS, Intake
from translator_bot.engine.lifetime import RetryableError, fatal_message
from translator_bot.engine.link import Link, configure, drain, read_link, stop_link, write_link
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.outlet import EventOutlet
from translator_bot.engine.silence_gate import may_rest, preroll_ms
from translator_bot.engine.step import At, Engine, Step
from translator_bot.engine.timeline import InputTimeline
from translator_bot.errors import ProviderError, ProviderFatalError
from translator_bot.metrics import ENGINE_RECONNECTS
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)

S = TypeVar("S")

HEALTHY_AFTER_S = 30.0  # a link up this long shows the provider is back (backoff reset, outage over)


class SupervisedSession(EngineSession, Generic[S]):
    """A lane's model session: the sockets and tasks around one engine's protocol."""

    def __init__(
        self,
        engine: Engine[S],
        endpoint: Endpoint,
        spec: LaneSpec,
        options: EngineOptions,
        *,
        clock: Clock = time.monotonic,
        give_up_after_s: float | None = None,
        recycle_grace_s: float = 20.0,
        # Input kept for a new link to hear again: more could never be sent (the replay's bound).
        history_seconds: float = MAX_REPLAY_MS / 1000,
        healthy_after_s: float = HEALTHY_AFTER_S,
    ) -> None:
        self._engine = engine
        self._endpoint = endpoint
        self._spec = spec
        self._session_max_s = options.session_max_seconds
        self._clock = clock
        self._where = describe(endpoint)
        # The longest outage survived; None: the operator's TRANSLATOR_PROVIDER_OUTAGE_SECONDS.
        self._health = LaneHealth(
            self._where,
            give_up_after_s=options.provider_outage_seconds if give_up_after_s is None else give_up_after_s,
            healthy_after_s=healthy_after_s,
        )
        self._recycle_grace_s = recycle_grace_s
        self._input = Intake(
            engine.name,
            engine.chunk_ms,
            history_seconds,
            self._local_speech_start,
            preroll_ms=preroll_ms(options.vad_prefix_padding_ms),
        )
        self._gate_on = options.silence_gate
        self._rest_after_ms = engine.rest_after_ms()
        self._feed = self._input.feed
        self._outlet = EventOutlet(engine.name)
        self._tasks = TaskSet(f"engine {spec.lane_id}", logger=log)
        self._lane = spec.lane_id  # a lane keeps its id when its spec changes
        self._http: aiohttp.ClientSession | None = None
        self._owner: asyncio.Task[None] | None = None
        self._active: Link[S] | None = None
        self._links: set[Link[S]] = set()
        self._ready: asyncio.Future[None] | None = None
        self._closing = False
        self._serial = 0
        self.reconnects = 0
        self.recycles = 0
        self.usage_total = Usage()
        self.audio_sent_samples = 0  # input audio on the wire, replays included (duration pricing)
        self.state = EngineState.CONNECTING
        self.outage: Outage | None = None  # the lane health's outage, for /healthz

    @property
    def replayed_ms(self) -> int:
        """Input sent a second time after drops (paid for twice)."""
        return self._input.replayed_ms

    @property
    def kept_input_ms(self) -> int:
        """Input history the lane holds now (sent or not): what a new link could be sent again."""
        feed = self._feed
        return samples_to_ms(feed.end - feed.start)

    @property
    def rested_samples(self) -> int:
        """Input silence never sent because the lane rested (`engine.silence_gate`)."""
        return self._input.rested_samples

    @property
    def resting(self) -> bool:
        return self._input.resting

    # --- public interface ------------------------------------------------------------------------
    @property
    def spec(self) -> LaneSpec:
        return self._spec

    async def start(self) -> None:
        if self._owner is not None:
            return
        self._http = aiohttp.ClientSession(middlewares=(keep_refusal_body,))
        self._ready = asyncio.get_running_loop().create_future()
        self._owner = self._tasks.spawn(self._run(), name=f"engine-{self._lane}", on_done=self._owner_ended)
        try:
            await asyncio.shield(self._ready)
        except BaseException:
            await self.aclose()
            raise

    def send_audio(self, pcm: bytes, shared: SharedChunk | None = None) -> None:
        if self._closing or not pcm:
            return
        try:
            ready = self._input.push(pcm, shared)
        except (TypeError, ValueError):
            log.warning("lane %s: ignored audio that is not bytes", self._lane)
            return
        if ready and self._active is not None:
            self._active.wake.set()

    def events(self) -> AsyncIterator[EngineEvent]:
        return self._outlet.events()

    def update_spec(self, spec: LaneSpec) -> None:
        self._spec = spec
        # Links not yet configured pick the spec up when they configure; a link waiting to take over
        # at a recycle gets the update queued and sends it when its writer starts.
        for link in self._links:
            if not link.retiring and link.reader is not None:
                self._serial += 1
                link.queue(self._engine.session_update(spec, f"upd_{self._serial}"))

    def report_cut_short(self, item_id: str, heard_samples: int) -> None:
        try:
            link = next((lk for lk in self._links if self._engine.owns_item(lk.state, item_id)), None)
            if link is None:
                # Unknown here, or it lives in a server session that is gone (drop, recycle): nothing to fix.
                log.debug("lane %s: cut short of unknown item %s skipped", self._lane, item_id)
                return
            self._apply(link, self._engine.on_cut_short(link.state, item_id, heard_samples))
        except Exception:
            log.exception("lane %s: could not truncate %s", self._lane, item_id)

    async def aclose(self) -> None:
        if self._closing and self._owner is None:
            return
        self._closing = True
        await self._tasks.close()
        self._owner = None
        for link in list(self._links):
            await self._close_link(link)
        if self._http is not None:
            await self._http.close()
            self._http = None
        self.state = EngineState.CLOSED
        self._outlet.end()

    # --- the engine's steps ----------------------------------------------------------------------
    def _at(self, link: Link[S] | None) -> At:
        serial, origin = (link.serial, link.origin) if link is not None else (0, 0)
        now = asyncio.get_running_loop().time()
        to_input = link.timeline.to_input if link is not None else None
        return At(now, self._clock, self._spec.lane_id, serial, origin, self._feed, to_input)

    def _apply(self, link: Link[S], step: Step) -> None:
        """Carry out what the engine decided for `link`: lane events, client events, expiry, refusal."""
        if step.fatal is not None:
            raise ProviderFatalError(fatal_message(*step.fatal, self._where))
        for event in step.events:
            if isinstance(event, Usage):
                self.usage_total = self.usage_total + event
            self._emit(event)
        for client_event in step.sends:
            link.queue(client_event)
        if step.expired:
            link.expired = True
            log.info("lane %s: the provider ended session #%d at its time cap", self._lane, link.serial)

    def _handle(self, link: Link[S], event: BaseModel) -> None:
        self._apply(link, self._engine.on_server_event(link.state, event, self._at(link)))
        if self._input.resting and link is self._active:
            link.wake.set()  # the writer checks whether the engine needs input again

    def _local_speech_start(self) -> None:
        """The input gate heard speech begin (engines without server VAD report it)."""
        for event in self._engine.on_local_speech_start(self._at(self._active)).events:
            self._emit(event)

    def _emit(self, event: EngineEvent) -> None:
        active = self._active
        if isinstance(event, TranslatedAudio) and active is not None and not active.proven:
            self._recovered(active)  # a translation arrived: this link works
        self._outlet.put(event)

    def _owner_ended(self, task: asyncio.Task[None]) -> None:
        # A defect (not a ProviderError, which _run reports itself); the task set has logged it.
        if not task.cancelled() and isinstance(error := task.exception(), Exception):
            self._report(error)

    def _report(self, error: Exception) -> None:
        """Tell start() (while it waits) or else the events consumer that the session is over."""
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()  # retrieved here; start() re-raises it
        self._outlet.fail(error)

    def _fail(self, error: ProviderError) -> None:
        """The session is over for good: tell start() or the events consumer, stop the owner."""
        log.error("lane %s: %s", self._lane, error)
        self._report(error)
        self._closing = True
        if self._owner is not None and self._owner is not asyncio.current_task():
            self._owner.cancel()

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
        health = self._health
        recycle_at = link.opened_at + self._session_max_s
        while True:
            wake = recycle_at
            if health.recovering and not link.proven:
                wake = min(wake, link.activated_at + health.healthy_after_s)
            await asyncio.wait({link.reader}, timeout=max(0.0, wake - loop.time()))
            if link.reader.done():
                return await self._replace_dropped(link)
            now = loop.time()
            if health.recovering and not link.proven and health.proven_by_time(link.activated_at, now):
                self._recovered(link)
            if now >= recycle_at:
                return await self._recycle(link)

    def _recovered(self, link: Link[S]) -> None:
        """`link` proved the provider works: any outage is over and the backoff starts afresh."""
        link.proven = True
        outage, self.outage = self._health.recovered(), None
        if outage is not None:
            back = asyncio.get_running_loop().time() - outage.since
            log.warning(
                "lane %s: the model provider is back after %.0f s; interpreting again", self._lane, back
            )

    async def _replace_dropped(self, link: Link[S]) -> Link[S]:
        now = asyncio.get_running_loop().time()
        resume = self._engine.resume_point(link.state, self._feed)
        expired = link.expired
        healthy = link.proven or self._health.proven_by_time(link.activated_at, now)
        await self._close_link(link)
        self._active = None
        self.reconnects += 1
        reason = "expired" if expired else "drop"
        ENGINE_RECONNECTS.labels(engine=self._engine.name, reason=reason).inc()
        ended = f"session #{link.serial} ended after {now - link.activated_at:.1f} s"
        self._health.lost(now, healthy=healthy, reason=ended, wall=time.time())
        self.outage = self._health.outage
        self.state = EngineState.CONNECTING if healthy else EngineState.DEGRADED
        log.warning("lane %s: session #%d ended (%s); reconnecting", self._lane, link.serial, reason)
        # The provider's routine end of a healthy session is answered at once; anything else waits.
        delay = 0.0 if expired and healthy else self._health.backoff.next_delay()
        new = await self._open_with_retry(delay)
        self._activate(new, resume)
        return new

    async def _recycle(self, old: Link[S]) -> Link[S]:
        log.info("lane %s: recycling session #%d before the provider's cap", self._lane, old.serial)
        new = await self._open_with_retry(0.0, serving=old)
        assert old.reader is not None
        engine, feed = self._engine, self._feed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._recycle_grace_s
        while not old.reader.done() and not engine.clean_point(old.state, feed) and loop.time() < deadline:
            await asyncio.wait({old.reader}, timeout=0.05)
        if old.reader.done():
            resume = engine.resume_point(old.state, feed)
            await self._close_link(old)
            self._activate(new, resume)
            self.reconnects += 1
            ENGINE_RECONNECTS.labels(engine=self._engine.name, reason="drop").inc()
            return new
        # At a quiet moment nothing is cut. Forced in mid-speech: the engine says whether the new link
        # hears that speech again (and the old one then must not answer it) or the old one finishes it.
        resume = None if engine.clean_point(old.state, feed) else engine.switch_point(old.state, feed)
        self._activate(new, resume)
        self.recycles += 1
        ENGINE_RECONNECTS.labels(engine=self._engine.name, reason="recycle").inc()
        old.retiring = True
        self._apply(old, engine.on_retire(old.state, feed))
        self._tasks.spawn(self._retire(old), name=f"engine-retire-{self._lane}")
        return new

    async def _retire(self, link: Link[S], limit_s: float = 30.0) -> None:
        """Let a replaced link deliver what it still owes, then close it."""
        try:
            if not await drain(link, lambda: self._engine.has_pending_output(link.state), limit_s):
                log.info("lane %s: retired session #%d still busy; closing it", self._lane, link.serial)
        finally:
            await self._close_link(link)

    def _activate(self, link: Link[S], resume: int | None) -> None:
        replayed = self._input.switch(resume)
        if replayed:
            log.info("lane %s: session #%d hears the last %d ms again", self._lane, link.serial, replayed)
        link.origin = self._feed.sent_upto
        link.timeline = InputTimeline(link.origin)
        link.activated_at = asyncio.get_running_loop().time()
        self._active = link
        self.state = EngineState.CONNECTED
        link.writer = self._tasks.spawn(self._write(link), name=f"engine-write-{self._lane}")
        link.wake.set()

    # --- one link --------------------------------------------------------------------------------
    async def _open_with_retry(self, delay: float, *, serving: Link[S] | None = None) -> Link[S]:
        """Open and configure a link, retrying with the lane's backoff; raises ProviderFatalError
        (refused) or ProviderUnavailableError (an outage longer than the limit). `serving`: a link
        that still serves meanwhile (a recycle), so failures are no outage while it lives."""
        loop = asyncio.get_running_loop()
        health = self._health
        while True:
            if delay > 0:
                left = health.time_left(loop.time())
                await asyncio.sleep(min(delay, math.inf if left is None else left))
            health.check(loop.time())
            try:
                return await self._open_once()
            except RetryableError as exc:
                covered = serving is not None and serving.reader is not None and not serving.reader.done()
                if not covered:
                    self.state = EngineState.DEGRADED
                delay = health.attempt_failed(
                    loop.time(), str(exc), time.time(), covered=covered, after_serving=serving is not None
                )
                self.outage = health.outage
                log.warning("lane %s: %s; retrying in %.1f s", self._lane, exc, delay)

    async def _open_once(self) -> Link[S]:
        assert self._http is not None
        ws = await open_socket(self._http, self._endpoint)
        self._serial += 1
        conn = Connection(ws, self._engine.parse, self._engine.name)
        link: Link[S] = Link(conn, self._serial, self._engine.new_state(), asyncio.get_running_loop().time())
        self._links.add(link)
        try:
            event_id = f"cfg_{link.serial}_0"
            update = self._engine.session_update(self._spec, event_id)
            await configure(conn, update, event_id, self._where, lambda event: self._handle(link, event))
        except BaseException:
            await self._close_link(link)
            raise
        link.reader = self._tasks.spawn(self._read(link), name=f"engine-read-{self._lane}")
        return link

    async def _read(self, link: Link[S]) -> None:
        engine = self._engine

        def tick(finished: bool) -> None:
            self._apply(link, engine.on_tick(link.state, self._at(link), finished=finished))

        await read_link(link, lambda event: self._handle(link, event), tick, self._fail, self._lane)

    async def _write(self, link: Link[S]) -> None:
        feed = self._feed

        def next_audio() -> BaseModel | None:
            if self._active is not link:
                return None
            if self._gate_on:
                self._gate(link)
            start = feed.sent_upto
            pcm = self._input.next_chunk()
            if pcm is None:
                return None
            samples = len(pcm) // BYTES_PER_SAMPLE
            link.timeline.sent(start, samples)
            self.audio_sent_samples += samples  # replays included: what is billed
            return self._engine.append(pcm)

        await write_link(link, next_audio)

    def _gate(self, link: Link[S]) -> None:
        """Rest the lane once the model gains nothing from more silence; wake it if the engine
        needs input again (a turn the server opened late)."""
        intake, feed = self._input, self._feed
        settled = self._engine.input_settled(link.state, feed)
        if intake.resting:
            if not settled:
                intake.wake()
        elif may_rest(feed.sent_upto - feed.quiet_since, self._rest_after_ms, settled):
            intake.rest()
            log.debug("lane %s: resting (silence)", self._lane)

    async def _close_link(self, link: Link[S]) -> None:
        await stop_link(link)
        self._apply(link, self._engine.end_items(link.state, self._at(link)))
        self._links.discard(link)
        if self._active is link:
            self._active = None
