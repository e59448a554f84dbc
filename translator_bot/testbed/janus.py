"""A throwaway Janus server (Debian's `janus` binary) with only the VideoRoom plugin and WebSockets.

It must run inside the private network namespace (see netns.py): Janus is bound to the namespace's
non-loopback address for ICE, and its WebSocket API listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import aiohttp

from translator_bot.room import videoroom
from translator_bot.room.janus import JanusSession
from translator_bot.system.janus_install import LIB_DIRS, find_lib_dir
from translator_bot.system.netns import ICE_ADDRESS

_port_ranges = itertools.count()
_PR_SET_PDEATHSIG = 1


class JanusServerError(RuntimeError):
    """The Janus binary is missing or did not come up; the message says why and quotes its log."""


def _lib_dir() -> Path:
    found = find_lib_dir()
    if found is None:
        raise JanusServerError(
            "Janus plugins not found (looked in " + ", ".join(LIB_DIRS) + "): apt-get install janus"
        )
    return found


def _die_with_parent() -> None:
    # A test run that is killed must not leave a Janus behind holding ports.
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _libconfig(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def _section(name: str, entries: dict[str, object]) -> str:
    body = "\n".join(f"\t{key} = {_libconfig(val)}" for key, val in entries.items())
    return f"{name}: {{\n{body}\n}}\n"


class JanusServer:
    """Start with `await server.start()`; `url` is its WebSocket address; `stop()` or `kill()` it."""

    def __init__(
        self,
        *,
        room: int | str = 1234,
        string_ids: bool = False,
        admin_key: str = "testbed-admin-key",
        api_secret: str | None = None,
        ice_address: str = ICE_ADDRESS,
        publishers: int = 16,
        binary: str = "janus",
        debug_level: int = 4,
        session_timeout: int = 60,
        reclaim_session_timeout: int | None = None,
        opus_dtx: bool = False,
    ) -> None:
        found = shutil.which(binary)
        if found is None:
            raise JanusServerError(f"the {binary!r} binary is not installed: apt-get install janus")
        self.binary = found
        self.room: int | str = str(room) if string_ids else int(room)
        self.string_ids = string_ids
        self.admin_key = admin_key
        self.api_secret = api_secret
        self.ice_address = ice_address
        self.publishers = publishers
        self.debug_level = debug_level
        self.session_timeout = session_timeout
        # None: Janus's default (0), a session whose WebSocket goes is destroyed at once; N > 0: a new
        # socket may `claim` it for N seconds (counted from its last request, e.g. a keepalive).
        self.reclaim_session_timeout = reclaim_session_timeout
        # The room negotiates Opus DTX (`usedtx=1` in its answers): silent publishers send almost nothing.
        self.opus_dtx = opus_dtx
        self.port = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _write_config(self, folder: Path) -> None:
        lib = _lib_dir()
        plugins = sorted(p.name for p in (lib / "plugins").glob("*.so") if p.name != "libjanus_videoroom.so")
        transports = sorted(
            p.name for p in (lib / "transports").glob("*.so") if p.name != "libjanus_websockets.so"
        )
        loggers = sorted(p.name for p in (lib / "loggers").glob("*.so"))
        events = sorted(p.name for p in (lib / "events").glob("*.so"))
        base = 20000 + 200 * (next(_port_ranges) % 100)
        general: dict[str, object] = {
            "configs_folder": str(folder),
            "plugins_folder": str(lib / "plugins"),
            "transports_folder": str(lib / "transports"),
            "events_folder": str(lib / "events"),
            "loggers_folder": str(lib / "loggers"),
            "debug_level": self.debug_level,
            "debug_timestamps": True,
            "admin_secret": self.admin_key,
            "interface": self.ice_address,
            "session_timeout": self.session_timeout,
            "server_name": "translator-bot-testbed",
        }
        if self.api_secret is not None:
            general["api_secret"] = self.api_secret
        if self.reclaim_session_timeout is not None:
            general["reclaim_session_timeout"] = self.reclaim_session_timeout
        main = (
            _section("general", general)
            + _section("media", {"rtp_port_range": f"{base}-{base + 199}"})
            + _section(
                "nat", {"nice_debug": False, "ice_enforce_list": self.ice_address, "ignore_mdns": True}
            )
            + _section("plugins", {"disable": ",".join(plugins)})
            + _section("transports", {"disable": ",".join(transports)})
            + _section("loggers", {"disable": ",".join(loggers)})
            + _section("events", {"broadcast": False, "disable": ",".join(events)})
        )
        (folder / "janus.jcfg").write_text(main, encoding="utf-8")
        (folder / "janus.transport.websockets.jcfg").write_text(
            _section(
                "general",
                {"json": "indented", "ws": True, "ws_port": self.port, "ws_ip": "127.0.0.1", "wss": False},
            )
            + _section("admin", {"admin_ws": False, "admin_wss": False}),
            encoding="utf-8",
        )
        room: dict[str, object] = {
            "description": "testbed room",
            "publishers": self.publishers,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "notify_joining": True,
            "opus_dtx": self.opus_dtx,
        }
        (folder / "janus.plugin.videoroom.jcfg").write_text(
            _section("general", {"admin_key": self.admin_key, "string_ids": self.string_ids})
            + _section(f"room-{self.room}", room),
            encoding="utf-8",
        )

    async def create_room(self, room: int | str, *, opus_dtx: bool = False) -> None:
        """A room made through the API, the way a meeting service makes one (a bot given `--create-room`
        then joins it as it is)."""
        session = await JanusSession.connect(self.url, api_secret=self.api_secret)
        try:
            handle = await session.attach(videoroom.PLUGIN)
            await videoroom.create_room(
                handle, room, admin_key=self.admin_key, publishers=self.publishers, opus_dtx=opus_dtx
            )
        finally:
            await session.destroy()

    async def start(self, timeout_s: float = 10.0) -> JanusServer:
        if self._proc is not None:
            raise JanusServerError("this JanusServer is already started")
        self._dir = tempfile.TemporaryDirectory(prefix="janus-testbed-")
        folder = Path(self._dir.name)
        self.port = _free_tcp_port()
        self._write_config(folder)
        self._log_path = folder / "janus.log"
        # Opening a local file and forking Janus take a few milliseconds, once per server.
        log = open(self._log_path, "wb")  # noqa: SIM115, ASYNC230 - the child owns this descriptor
        try:
            self._proc = subprocess.Popen(  # noqa: ASYNC220
                [self.binary, "-C", str(folder / "janus.jcfg"), "-F", str(folder), "--disable-colors"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        try:
            await self._wait_ready(timeout_s)
        except BaseException:
            self.kill()
            raise
        return self

    async def _wait_ready(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        last_error = "no answer"
        async with aiohttp.ClientSession() as http:
            while loop.time() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise JanusServerError(
                        f"janus exited with code {self._proc.returncode} while starting:\n{self.log_tail()}"
                    )
                try:
                    async with http.ws_connect(
                        self.url, protocols=("janus-protocol",), timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
                    ) as ws:
                        await ws.send_json({"janus": "info", "transaction": "ready"})
                        reply = await ws.receive_json(timeout=2.0)
                        if reply.get("janus") == "server_info":
                            return
                        last_error = f"unexpected reply {reply!r}"
                except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                    last_error = repr(exc)
                await asyncio.sleep(0.05)
        raise JanusServerError(
            f"janus did not answer on {self.url} within {timeout_s}s ({last_error}):\n{self.log_tail()}"
        )

    def log_text(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash would: clients see their WebSocket drop."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    async def stop(self, timeout_s: float = 5.0) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            # A Popen offers no awaitable exit; Janus stops within a few polls.
            while proc.poll() is None and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            self.kill()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._dir is not None:
            with contextlib.suppress(OSError):
                self._saved_log = self.log_text()
            self._dir.cleanup()
            self._dir = None
            self._log_path = None

    async def __aenter__(self) -> JanusServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def environ(self) -> dict[str, str]:
        """Environment for a `translator-bot` child pointed at this server."""
        env = dict(os.environ)
        env["TRANSLATOR_JANUS_URL"] = self.url
        env["TRANSLATOR_JANUS_ADMIN_KEY"] = self.admin_key
        if self.api_secret is not None:
            env["TRANSLATOR_JANUS_API_SECRET"] = self.api_secret
        return env
