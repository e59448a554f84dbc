"""Janus core API over WebSocket: one session, its plugin handles, transactions and keepalives.

Janus mixes replies and unsolicited events on one socket, so every request carries a transaction id
and waits for the reply with that id; everything else is routed to the handle it names (`sender`).
A plugin request that Janus processes asynchronously is answered with `ack` first and its real result
later under the same transaction, so `ack` only completes requests that expect nothing more.

A session opened with `on_transport_lost` outlives its WebSocket: Janus keeps a session whose socket
went for `reclaim_session_timeout` seconds (janus.jcfg; 0 by default, destroyed at once), and
`reclaim()` claims it back on a new socket with the same handles. Without it, a lost socket ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from translator_bot import metrics
from translator_bot.room.janus_wire import (
    ERR_SESSION_NOT_FOUND,
    EventListener,
    JanusConnectionLost,
    JanusError,
    JanusSessionGone,
    JsonObject,
    PluginReply,
    describe_error,
    open_socket,
)
from translator_bot.tasks import TaskSet

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0

__all__ = [
    "DEFAULT_TIMEOUT",
    "ERR_SESSION_NOT_FOUND",
    "EventListener",
    "JanusConnectionLost",
    "JanusError",
    "JanusHandle",
    "JanusSession",
    "JanusSessionGone",
    "JsonObject",
    "PluginReply",
]


@dataclass
class _Pending:
    future: asyncio.Future[JsonObject]
    ack_completes: bool


@dataclass
class _Credentials:
    api_secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def apply(self, payload: JsonObject) -> None:
        if self.api_secret:
            payload["apisecret"] = self.api_secret
        if self.token:
            payload["token"] = self.token


@dataclass
class JanusSession:
    """Use `await JanusSession.connect(url)`; close with `await session.destroy()` on every path."""

    url: str = field(repr=False)  # may carry a password
    _http: aiohttp.ClientSession
    _own_http: bool
    _ws: aiohttp.ClientWebSocketResponse
    _credentials: _Credentials
    id: int = 0
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _handles: dict[int, JanusHandle] = field(default_factory=dict)
    # The socket readers, the keepalive and old sockets closing; the shutdown cancels what is left.
    _tasks: TaskSet = field(default_factory=lambda: TaskSet("janus session", logger=log))
    _keepalive: asyncio.Task[None] | None = None
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_reason: str | None = None
    _closer: asyncio.Task[None] | None = None
    _close_listeners: list[Callable[[str], None]] = field(default_factory=list)
    _on_transport_lost: Callable[[str], None] | None = None
    _keepalive_interval: float = 25.0
    _linked: bool = True  # False between a lost socket and a successful reclaim()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        api_secret: str | None = None,
        token: str | None = None,
        keepalive_interval: float = 25.0,
        timeout_s: float = DEFAULT_TIMEOUT,
        on_transport_lost: Callable[[str], None] | None = None,
    ) -> JanusSession:
        """Open a socket and create a session. With `on_transport_lost`, a socket that goes later
        leaves the session waiting for `reclaim()` (the callback says so) instead of closing it."""
        http = aiohttp.ClientSession()
        try:
            ws = await open_socket(http, url, timeout_s)
        except BaseException:
            await http.close()
            raise
        session = cls(
            url=url,
            _http=http,
            _own_http=True,
            _ws=ws,
            _credentials=_Credentials(api_secret, token),
            _on_transport_lost=on_transport_lost,
            _keepalive_interval=keepalive_interval,
        )
        session._tasks.spawn(session._read_loop(ws), name="janus-reader")
        try:
            reply = await session._request({"janus": "create"}, timeout_s=timeout_s)
            session.id = int(reply["data"]["id"])
        except BaseException:
            await session._shutdown("session could not be created")
            raise
        session._start_keepalive()
        log.debug("janus session %s created on %s", session.id, url)
        return session

    @property
    def linked(self) -> bool:
        """A socket carries the session now (False while it waits for `reclaim()`)."""
        return self._linked and not self.closed

    async def reclaim(self, timeout_s: float = DEFAULT_TIMEOUT) -> None:
        """Claim this session on a new socket after the old one went: same handles, events flow on the
        new socket. JanusSessionGone (and the session closes) when Janus no longer has it;
        JanusConnectionLost when the server cannot be reached (call again later)."""
        if self.closed:
            raise JanusSessionGone(self.close_reason or "the Janus session is closed")
        if self._linked:
            return
        ws = await open_socket(self._http, self.url, timeout_s)
        self._ws = ws
        self._tasks.spawn(self._read_loop(ws), name="janus-reader")
        try:
            await self._request({"janus": "claim"}, timeout_s=timeout_s, unlinked=True)
        except JanusError as exc:
            if exc.code == ERR_SESSION_NOT_FOUND:
                await self._shutdown(f"the room server no longer has the session: {exc.reason}")
                raise JanusSessionGone(exc.reason) from None
            # Anything else (a timeout, the new socket dropping too): this socket is no good.
            self._lose_socket(ws, f"claiming the session failed: {exc.reason}", notify=False)
            if isinstance(exc, JanusConnectionLost):
                raise
            raise JanusConnectionLost(exc.reason) from None
        self._linked = True
        self._start_keepalive()
        log.debug("janus session %s reclaimed on a new socket", self.id)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> str:
        await self._closed.wait()
        return self.close_reason or "closed"

    def on_close(self, listener: Callable[[str], None]) -> None:
        """Called once, with a reason, when the session ends for any cause."""
        self._close_listeners.append(listener)

    async def attach(self, plugin: str, listener: EventListener | None = None) -> JanusHandle:
        reply = await self._request({"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(reply["data"]["id"]), plugin, listener)
        self._handles[handle.id] = handle
        return handle

    async def destroy(self) -> None:
        """Tell Janus the session is over (it frees every handle) and close the socket."""
        if not self.closed and self.id and self._linked:
            with contextlib.suppress(JanusError, asyncio.TimeoutError):
                await self._request({"janus": "destroy"}, timeout_s=2.0)
        await self._shutdown("session destroyed")
        if self._closer is not None and self._closer is not asyncio.current_task():
            await self._closer

    # --- plumbing ----------------------------------------------------------------------------------

    async def _request(
        self,
        payload: JsonObject,
        *,
        handle_id: int | None = None,
        ack_completes: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT,
        unlinked: bool = False,
    ) -> JsonObject:
        if self.closed:
            raise JanusConnectionLost(self.close_reason or "the Janus session is closed")
        if not self._linked and not unlinked:
            raise JanusConnectionLost("the connection to the room server is down")
        transaction = secrets.token_hex(8)
        message = dict(payload, transaction=transaction)
        if self.id:
            message["session_id"] = self.id
        if handle_id is not None:
            message["handle_id"] = handle_id
        self._credentials.apply(message)
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = _Pending(future, ack_completes)
        try:
            await self._send(message)
            async with asyncio.timeout(timeout_s):
                reply = await future
        except TimeoutError:
            raise JanusError(0, f"no answer to {payload.get('janus')!r} within {timeout_s:.0f}s") from None
        finally:
            self._pending.pop(transaction, None)
        if reply.get("janus") == "error":
            error = reply.get("error") or {}
            raise JanusError(int(error.get("code", 0)), str(error.get("reason", "unknown error")))
        return reply

    async def _send(self, message: JsonObject) -> None:
        ws = self._ws
        try:
            async with self._send_lock:
                await ws.send_str(json.dumps(message))
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            reason = f"lost the connection to the room server: {describe_error(exc)}"
            self._lose_socket(ws, reason)
            raise JanusConnectionLost(reason) from None

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        reason = "the room server closed the connection"
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(msg.data)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    reason = f"room server connection failed: {describe_error(ws.exception())}"
                    break
        except (aiohttp.ClientError, ConnectionError) as exc:
            reason = f"room server connection failed: {describe_error(exc)}"
        self._lose_socket(ws, reason)

    def _lose_socket(self, ws: aiohttp.ClientWebSocketResponse, reason: str, *, notify: bool = True) -> None:
        """The socket `ws` is gone. A reclaimable session waits for `reclaim()`; others close.
        Never awaits: it runs inside the reader, whose cancellation the shutdown awaits."""
        if self.closed or ws is not self._ws:
            return  # an old socket, or the session ended already
        if self._on_transport_lost is None or not self.id:
            self._mark_closed(reason)
            self._spawn_shutdown(reason)
            return
        was_linked, self._linked = self._linked, False
        self._fail_pending(reason)
        if self._keepalive is not None and self._keepalive is not asyncio.current_task():
            self._keepalive.cancel()
        self._tasks.spawn(ws.close(), name="janus-socket-close")
        if was_linked and notify:
            log.debug("janus session %s lost its socket: %s", self.id, reason)
            try:
                self._on_transport_lost(reason)
            except Exception:
                log.exception("janus transport-lost listener failed")

    def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            log.warning("ignoring a message from Janus that is not JSON (%d bytes)", len(text))
            metrics.ROOM_MALFORMED_EVENTS.labels(reason="not_json").inc()
            return
        if not isinstance(message, dict):
            metrics.ROOM_MALFORMED_EVENTS.labels(reason="not_object").inc()
            return
        kind = message.get("janus")
        transaction = message.get("transaction")
        pending = self._pending.get(transaction) if isinstance(transaction, str) else None
        if pending is not None and not pending.future.done():
            if kind != "ack" or pending.ack_completes:
                pending.future.set_result(message)
            return
        if kind == "timeout":
            self._mark_closed("the room server timed the session out")
            self._spawn_shutdown(self.close_reason or "timeout")
            return
        if kind in ("ack", "keepalive", "server_info"):
            return
        sender = message.get("sender")
        handle = self._handles.get(sender) if isinstance(sender, int) else None
        if handle is None:
            log.debug("janus message for no known handle: %s", kind)
            return
        if kind == "detached":
            self._handles.pop(handle.id, None)
        handle._deliver(message)

    def _start_keepalive(self) -> None:
        self._keepalive = self._tasks.spawn(
            self._keepalive_loop(self._keepalive_interval), name="janus-keepalive"
        )

    async def _keepalive_loop(self, interval: float) -> None:
        while self.linked:
            await asyncio.sleep(interval)
            try:
                await self._request({"janus": "keepalive"}, ack_completes=True, timeout_s=interval)
            except JanusConnectionLost:
                return
            except JanusError as exc:
                if exc.code == 0 and self._on_transport_lost is not None:
                    # No answer: a socket that stopped carrying anything is as lost as a closed one.
                    self._lose_socket(self._ws, f"the room server stopped answering: {exc.reason}")
                    return
                # A session Janus no longer knows is as dead as a closed socket. The shutdown runs in
                # its own task: it cancels and awaits this one.
                self._mark_closed(f"the room server stopped answering keepalives: {exc.reason}")
                self._spawn_shutdown(self.close_reason or "keepalive failed")
                return

    def _spawn_shutdown(self, reason: str) -> None:
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self._shutdown(reason), name="janus-close")

    def _fail_pending(self, reason: str) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(JanusConnectionLost(reason))

    def _mark_closed(self, reason: str) -> None:
        if self.closed:
            return
        self.close_reason = reason
        self._closed.set()
        self._fail_pending(reason)
        for listener in self._close_listeners:
            try:
                listener(reason)
            except Exception:
                log.exception("janus close listener failed")

    async def _shutdown(self, reason: str) -> None:
        self._mark_closed(reason)
        await self._tasks.close()  # never called from one of them: the reader and keepalive spawn it
        await self._ws.close()
        if self._own_http:
            await self._http.close()


class JanusHandle:
    """One plugin handle; unsolicited messages for it go to `listener` (set it before they matter)."""

    def __init__(
        self, session: JanusSession, handle_id: int, plugin: str, listener: EventListener | None
    ) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.listener = listener
        self.detached = False

    def _deliver(self, message: JsonObject) -> None:
        if message.get("janus") == "detached":
            self.detached = True
        if self.listener is None:
            return
        try:
            self.listener(message)
        except Exception:
            # A bug in one listener must not stop the socket reader that serves every handle.
            log.exception("handling a Janus event failed")

    async def message(
        self, body: JsonObject, jsep: JsonObject | None = None, *, timeout_s: float = DEFAULT_TIMEOUT
    ) -> PluginReply:
        """Send a plugin request; a plugin-level error (e.g. 426 No such room) raises JanusError."""
        payload: JsonObject = {"janus": "message", "body": body}
        if jsep is not None:
            payload["jsep"] = jsep
        reply = await self.session._request(payload, handle_id=self.id, timeout_s=timeout_s)
        plugindata = reply.get("plugindata")
        data = plugindata.get("data") if isinstance(plugindata, dict) else None
        if not isinstance(data, dict):
            raise JanusError(0, f"Janus answered {body.get('request')!r} without plugin data")
        if "error_code" in data or "error" in data:
            raise JanusError(int(data.get("error_code") or 0), str(data.get("error", "plugin error")))
        reply_jsep = reply.get("jsep")
        return PluginReply(data, reply_jsep if isinstance(reply_jsep, dict) else None)

    async def trickle_completed(self) -> None:
        await self.session._request(
            {"janus": "trickle", "candidate": {"completed": True}}, handle_id=self.id, ack_completes=True
        )

    async def detach(self) -> None:
        """Free the handle in Janus; quiet if the session or handle is already gone."""
        self.session._handles.pop(self.id, None)
        if self.detached or self.session.closed:
            self.detached = True
            return
        self.detached = True
        with contextlib.suppress(JanusError, asyncio.TimeoutError):
            await self.session._request({"janus": "detach"}, handle_id=self.id, timeout_s=3.0)
