"""The browsers' TURN credentials against a real coturn (Debian's `coturn` package) configured with
`use-auth-secret`: what /api/config hands a page allocates a relay; a wrong secret or an expired
credential is refused. The client is aioice's TURN client, the one aiortc uses."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aioice import turn
from aioice.stun import TransactionFailed

from translator_bot.settings import load_settings
from translator_bot.testbed.rig import free_port
from translator_bot.web.config import WebConfig
from translator_bot.web.process_launcher import BotLauncher
from translator_bot.web.server import create_app
from translator_bot.web.turn import rest_credential

pytestmark = pytest.mark.timeout(60)

SECRET = "coturn-static-auth-secret-for-tests"
TURNSERVER = shutil.which("turnserver")


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[int]:
    if TURNSERVER is None:
        pytest.fail("turnserver is missing: apt-get install coturn")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        TURNSERVER,
        "-n",
        "--listening-ip=127.0.0.1",
        f"--listening-port={port}",
        "--use-auth-secret",
        f"--static-auth-secret={SECRET}",
        "--realm=translator.test",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--log-file=stdout",
        f"--userdb={tmp_path / 'turndb'}",
        f"--pidfile={tmp_path / 'turn.pid'}",
        "--min-port=49152",
        "--max-port=49300",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    drain = asyncio.create_task(proc.stdout.read())  # its log must not fill the pipe
    try:
        async with asyncio.timeout(15):
            # Listening once it answers (401) an allocation with a made-up credential.
            while not await refuses(port, "probe", "probe"):
                if proc.returncode is not None:
                    pytest.fail(f"turnserver exited {proc.returncode}")
        yield port
    finally:
        proc.terminate()
        await proc.wait()
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain


async def refuses(port: int, username: str, password: str) -> bool:
    """True when the server answers an allocation with 401; False when it does not answer in time."""
    try:
        return await asyncio.wait_for(allocate(port, username, password), 1.0) is None
    except TimeoutError:
        return False


async def allocate(port: int, username: str, password: str) -> str | None:
    """A relay address, or None when the server refuses the credential."""
    try:
        transport, _ = await asyncio.wait_for(
            turn.create_turn_endpoint(
                asyncio.DatagramProtocol,
                server_addr=("127.0.0.1", port),
                username=username,
                password=password,
                lifetime=600,
            ),
            5,
        )
    except TransactionFailed:
        return None
    relayed: Any = transport.get_extra_info("sockname")
    transport.close()
    return f"{relayed[0]}:{relayed[1]}"


async def page_ice_servers(monkeypatch: pytest.MonkeyPatch, port: int, secret: str) -> list[Any]:
    monkeypatch.setenv("TRANSLATOR_WEB_TURN_URLS", f"turn:127.0.0.1:{port}?transport=udp")
    monkeypatch.setenv("TRANSLATOR_WEB_TURN_SECRET", secret)
    monkeypatch.setenv("TRANSLATOR_WEB_TURN_TTL", "600")
    monkeypatch.setenv("TRANSLATOR_TURN_USERNAME", "bot-account")
    monkeypatch.setenv("TRANSLATOR_TURN_PASSWORD", "bot-password-never-for-pages")
    config = WebConfig.from_settings(load_settings({}))
    launcher = BotLauncher(lambda meeting: ["true"])
    async with TestClient(TestServer(create_app(config, launcher))) as client:
        body = await (await client.get("/api/config")).json()
    assert "bot-password-never-for-pages" not in str(body) and "bot-account" not in str(body)
    servers: list[Any] = body["ice_servers"]
    return servers


async def test_the_pages_turn_credential_allocates_a_relay(
    coturn: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers = await page_ice_servers(monkeypatch, coturn, SECRET)
    (entry,) = [s for s in servers if any(str(u).startswith("turn:") for u in s["urls"])]
    expiry, _, user = entry["username"].partition(":")
    assert user == "meeting-page" and 590 <= int(expiry) - time.time() <= 600
    assert await allocate(coturn, entry["username"], entry["credential"]) is not None


async def test_a_wrong_secret_or_an_expired_credential_is_refused(
    coturn: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    (entry,) = await page_ice_servers(monkeypatch, coturn, "not-the-servers-secret")
    assert await allocate(coturn, entry["username"], entry["credential"]) is None
    username, password = rest_credential(SECRET, time.time() - 1200, 600)
    assert await allocate(coturn, username, password) is None
