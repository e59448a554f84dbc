"""A TCP proxy between a client and a server that can cut its connections, as a flaky network does.

Put it between the bot and a server it talks to (Janus's WebSocket port, the model's HTTP/WebSocket
endpoint): `cut()` aborts every connection it carries on both sides at once, with no close frame and
no FIN handshake, while new connections still pass, like a NAT or load balancer dropping its state
(the server keeps running and sees its client go, the bot sees its socket drop), and
`refuse_for(seconds)` turns new connections away for a while, as a proxy being restarted does, and
`stall()` makes the open connections carry nothing more while staying open (a dead NAT mapping or a
half-open TCP connection: neither side is told).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from translator_bot.tasks import TaskSet

_CHUNK = 64 * 1024


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    stalled: bool = False

    def abort(self) -> None:
        # abort(), not close(): a cut network sends nothing more, not even the queued bytes.
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class TcpProxy:
    """`await TcpProxy(host, port).start()`; connect to `proxy.port` on 127.0.0.1; `await stop()`."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.port = 0
        self.accepted = 0  # connections taken since start
        self.refused = 0  # connections turned away while refusing
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._pumps = TaskSet("tcp proxy")
        self._refuse_until = 0.0
        self._stopping = False

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def url(self, scheme: str = "ws", path: str = "/") -> str:
        return f"{scheme}://{self.listen_host}:{self.port}{path}"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, self.listen_host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def cut(self) -> int:
        """Drop every connection now, on both sides; returns how many were cut."""
        links, self._links = list(self._links), set()
        for link in links:
            link.abort()
        self.cuts += 1
        return len(links)

    def stall(self) -> int:
        """From now on the open connections drop what they carry, without closing; returns how many."""
        for link in self._links:
            link.stalled = True
        return len(self._links)

    def refuse_for(self, seconds: float) -> None:
        """Close new connections at once for `seconds` (existing ones are left alone)."""
        self._refuse_until = time.monotonic() + seconds

    async def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        self.cut()
        # Aborted transports end their pumps on their own; cancelling is for any pump still blocked in
        # drain(), so that nothing outlives the proxy.
        await self._pumps.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        if self._stopping:
            # Stopped while the upstream connection was being opened: it is not carried.
            link.abort()
            return
        self.accepted += 1
        self._links.add(link)
        link.pumps = [
            self._pumps.spawn(self._pump(reader, up_writer, link), name="proxy up"),
            self._pumps.spawn(self._pump(up_reader, writer, link), name="proxy down"),
        ]
        # The server callback waits for its pumps: it returns when both are over (stop() cancels them
        # if they are not).
        await asyncio.gather(*link.pumps, return_exceptions=True)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: _Link) -> None:
        try:
            while data := await source.read(_CHUNK):
                if link.stalled:
                    continue
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side ended: end the other, as a TCP relay does.
            self._links.discard(link)
            link.abort()

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
