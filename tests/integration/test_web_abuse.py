"""Abuse tests: a real `translator-bot web` process on a loopback port, attacked the way a hostile page,
a DNS-rebinding site or a script would. The interpreters it starts are real `translator-bot join`
processes; their Janus is a socket that accepts and never answers (a bot stays "joining"), or a closed
port (a bot fails at once with exit code 3), so no model and no Janus is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from translator_bot.testbed.rig import FAKE_KEY, free_port

pytestmark = pytest.mark.timeout(120)

TOKEN = "web-token-for-abuse-tests-0123456789"
CHECKOUT = Path(__file__).resolve().parents[2]  # the children import this tree's code


@dataclass
class Web:
    proc: asyncio.subprocess.Process
    port: int
    origin: str
    stderr: list[str]

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"


async def silent_janus() -> tuple[asyncio.Server, str]:
    """A TCP socket that accepts and never answers: a bot connecting to it stays 'joining'."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/"


StartWeb = Callable[..., Awaitable[Web]]


@pytest.fixture
async def start_web(tmp_path: Path) -> AsyncIterator[StartWeb]:
    procs: list[asyncio.subprocess.Process] = []
    readers: list[asyncio.Task[None]] = []

    async def start(*flags: str, env: dict[str, str] | None = None, janus_url: str | None = None) -> Web:
        port = free_port()
        (tmp_path / "empty.env").touch()  # not the checkout's .env
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_"))
        }
        environ.update(
            {
                "OPENAI_API_KEY": FAKE_KEY,
                "TRANSLATOR_JANUS_URL": janus_url or f"ws://127.0.0.1:{free_port()}/",
                "TRANSLATOR_TRANSCRIPT_DIR": str(tmp_path / "transcripts"),
                "TRANSLATOR_LOG_LEVEL": "INFO",
                "PYTHONPATH": str(CHECKOUT),
            }
        )
        environ.update(env or {})
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "translator_bot",
            "web",
            "--env-file",
            str(tmp_path / "empty.env"),
            "--port",
            str(port),
            *flags,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=environ,
        )
        procs.append(proc)
        web = Web(proc, port, f"http://127.0.0.1:{port}", [])

        async def read() -> None:
            assert proc.stderr is not None
            while line := await proc.stderr.readline():
                web.stderr.append(line.decode(errors="replace").rstrip())

        readers.append(asyncio.create_task(read()))
        return web

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(15):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
    for reader in readers:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def wait_serving(web: Web) -> None:
    async with asyncio.timeout(20), aiohttp.ClientSession() as http:
        while True:
            if web.proc.returncode is not None:
                raise AssertionError(f"the web server exited {web.proc.returncode}: {web.stderr}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(web.url("/healthz")) as reply:
                    if reply.status == 200:
                        return
            await asyncio.sleep(0.1)


async def start_bot(
    web: Web, meeting: str, *, origin: str | None = "same", host: str | None = None, token: str | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if origin == "same":
        headers["Origin"] = web.origin
    elif origin is not None:
        headers["Origin"] = origin
    if host is not None:
        headers["Host"] = host
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(web.url(f"/api/meetings/{meeting}/interpreter"), data="{}", headers=headers) as reply,
    ):
        body = await reply.json(content_type=None) if reply.content_length != 0 else {}
        return reply.status, body if isinstance(body, dict) else {}, dict(reply.headers)


async def status_of(web: Web, meeting: str) -> dict[str, Any]:
    url = web.url(f"/api/meetings/{meeting}/interpreter")
    async with aiohttp.ClientSession() as http, http.get(url) as reply:
        body: dict[str, Any] = await reply.json()
        return body


async def wait_exited(web: Web, meeting: str, timeout_s: float = 30.0) -> dict[str, Any]:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                body = await status_of(web, meeting)
                if body["state"] == "exited":
                    return body
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(
            f"the web server never saw the bot exit; it says {await status_of(web, meeting)}"
        ) from None


async def running_bots(web: Web) -> int:
    async with aiohttp.ClientSession() as http, http.get(web.url("/healthz")) as reply:
        count: int = (await reply.json())["interpreters"]
        return count


# --- who may start bots ----------------------------------------------------------------------------


async def test_a_post_without_origin_starts_nothing(start_web: StartWeb) -> None:
    server, janus = await silent_janus()
    async with server:
        web = await start_web(janus_url=janus)
        await wait_serving(web)
        status, body, _ = await start_bot(web, "1234", origin=None)
        assert status == 403, body
        assert await running_bots(web) == 0


async def test_a_spoofed_host_with_a_matching_origin_starts_nothing(start_web: StartWeb) -> None:
    """The DNS-rebinding path: evil.example resolves to 127.0.0.1, so its page's requests carry
    Host: evil.example and Origin: http://evil.example, which agree with each other."""
    server, janus = await silent_janus()
    async with server:
        web = await start_web(janus_url=janus)
        await wait_serving(web)
        evil = f"evil.example:{web.port}"
        status, body, _ = await start_bot(web, "1234", origin=f"http://{evil}", host=evil)
        assert status in (403, 421), body
        # The rebinding page cannot read the page's settings either.
        config = web.url("/api/config")
        async with aiohttp.ClientSession() as http, http.get(config, headers={"Host": evil}) as reply:
            assert reply.status == 421
        status, body, _ = await start_bot(web, "1234", origin="http://evil.example")
        assert status == 403, body
        assert await running_bots(web) == 0
        # The page's own origin works, under each loopback name the server answers to.
        assert (await start_bot(web, "1234"))[0] == 202
        local = f"localhost:{web.port}"
        status, body, _ = await start_bot(web, "1234", origin=f"http://{local}", host=local)
        assert status == 200 and body["started"] is False, body


async def test_meeting_id_aliases_share_one_bot(start_web: StartWeb) -> None:
    server, janus = await silent_janus()
    async with server:
        web = await start_web(janus_url=janus)
        await wait_serving(web)
        status, first, _ = await start_bot(web, "1234")
        assert status == 202, first
        for alias in ["01234", "001234"]:
            status, body, _ = await start_bot(web, alias)
            assert status == 200, (alias, body)
            assert body["started"] is False and body["pid"] == first["pid"] and body["meeting"] == "1234"
        for bad in ["1234%0A", "1234%0D", "1234%20", "%201234"]:
            status, body, _ = await start_bot(web, bad)
            assert status == 400, (bad, body)
        assert (await status_of(web, "001234"))["pid"] == first["pid"]
        assert await running_bots(web) == 1


# --- bearer token ----------------------------------------------------------------------------------


async def test_a_configured_token_is_required_to_start_bots(start_web: StartWeb) -> None:
    server, janus = await silent_janus()
    async with server:
        web = await start_web(janus_url=janus, env={"TRANSLATOR_WEB_TOKEN": TOKEN})
        await wait_serving(web)
        status, body, headers = await start_bot(web, "1234")
        assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer"), body
        assert (await start_bot(web, "1234", token="wrong-" + TOKEN))[0] == 401
        assert await running_bots(web) == 0
        assert (await start_bot(web, "1234", token=TOKEN))[0] == 202
        async with aiohttp.ClientSession() as http, http.get(web.url("/api/config")) as reply:
            config = await reply.json()
        assert config["start_needs_token"] is True and TOKEN not in str(config)
    assert not any(TOKEN in line for line in web.stderr)


async def test_a_public_bind_without_a_token_refuses_to_start(start_web: StartWeb) -> None:
    web = await start_web("--host", "0.0.0.0", "--public-url", "https://meet.example.org")
    async with asyncio.timeout(20):
        code = await web.proc.wait()
    assert code == 2, web.stderr
    await asyncio.sleep(0.1)
    assert any("TRANSLATOR_WEB_TOKEN" in line for line in web.stderr), web.stderr


async def test_a_public_bind_with_a_token_serves_its_public_origin_only(start_web: StartWeb) -> None:
    server, janus = await silent_janus()
    async with server:
        web = await start_web(
            "--host",
            "0.0.0.0",
            "--public-url",
            "https://meet.example.org",
            janus_url=janus,
            env={"TRANSLATOR_WEB_TOKEN": TOKEN},
        )
        await wait_serving(web)  # /healthz answers any Host: orchestrators probe by address
        status, body, _ = await start_bot(web, "77", token=TOKEN)
        assert status == 421, body  # 127.0.0.1 is not where this server is published
        status, body, _ = await start_bot(
            web, "77", origin="https://meet.example.org", host="meet.example.org", token=TOKEN
        )
        assert status == 202, body


# --- rate limits and back-off -------------------------------------------------------------------------


async def test_starts_are_rate_limited_per_client(start_web: StartWeb) -> None:
    server, janus = await silent_janus()
    async with server:
        web = await start_web(janus_url=janus)
        await wait_serving(web)
        statuses = [(await start_bot(web, "1234"))[0] for _ in range(40)]
        assert statuses[0] == 202 and 429 in statuses, statuses
        limited = statuses.index(429)
        status, body, headers = await start_bot(web, "1234")
        assert status == 429 and int(headers["Retry-After"]) >= 1, (body, headers)
        assert "too many" in body["error"], body
        assert set(statuses[limited:]) == {429}, statuses
        assert await running_bots(web) == 1


async def test_a_meeting_whose_bot_keeps_failing_backs_off(start_web: StartWeb) -> None:
    web = await start_web()  # Janus is a closed port: every bot exits 3 at once
    await wait_serving(web)
    assert (await start_bot(web, "555"))[0] == 202
    await wait_exited(web, "555")
    status, body, headers = await start_bot(web, "555")
    assert status == 429, body
    assert int(headers["Retry-After"]) >= 1 and "failed" in body["error"], (body, headers)
    assert (await status_of(web, "555"))["state"] == "exited"


# --- what the API shows of a bot ------------------------------------------------------------------------


async def test_a_bot_with_a_huge_log_line_is_still_watched(start_web: StartWeb) -> None:
    """The bot prints its Janus URL in its error: make it longer than the 64 KiB line limit of a
    StreamReader. The watcher must still see the bot exit, and the page gets a short message."""
    huge = f"ws://127.0.0.1:{free_port()}/" + "x" * 100_000
    web = await start_web(janus_url=huge)
    await wait_serving(web)
    assert (await start_bot(web, "4321"))[0] == 202
    body = await wait_exited(web, "4321")
    assert body["exit_code"] == 3, body
    shown = str(body)
    assert len(shown) < 2000 and "x" * 600 not in shown, shown
    assert "last_line" not in body
