"""`translator-bot healthcheck` (the image's HEALTHCHECK) against the bot's real ops server: it
follows the configured port, passes on 200, fails on 503, on a closed port and with the health
endpoints turned off."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from translator_bot.healthcheck import health_url
from translator_bot.ops import OpsServer


async def healthcheck(env: dict[str, str], *args: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSLATOR_", "OPENAI_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "translator_bot",
        "healthcheck",
        *args,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the subprocess inherits the cwd: no stray ./.env


@pytest.mark.usefixtures("no_dotenv")
async def test_follows_the_configured_port_and_the_bots_readiness() -> None:
    ready = {"ok": True}
    ops = OpsServer("127.0.0.1", 0, lambda: (ready["ok"], {"status": "ok" if ready["ok"] else "degraded"}))
    await ops.start()
    try:
        assert ops.port is not None and ops.port != 9464
        env = {"TRANSLATOR_METRICS_PORT": str(ops.port), "TRANSLATOR_METRICS_HOST": "0.0.0.0"}
        code, out = await healthcheck(env)
        assert code == 0, out
        assert f"healthy: http://127.0.0.1:{ops.port}/readyz answered 200" in out
        ready["ok"] = False
        code, out = await healthcheck(env)
        assert code == 1 and "answered 503" in out and "degraded" in out, out
        code, out = await healthcheck(env, "--path", "/livez")
        assert code == 0, out
    finally:
        await ops.stop()


@pytest.mark.usefixtures("no_dotenv")
async def test_fails_when_nothing_listens_or_the_endpoints_are_off() -> None:
    port = free_port()
    code, out = await healthcheck({"TRANSLATOR_METRICS_PORT": str(port)})
    assert code == 1 and f"127.0.0.1:{port}" in out and "refused" in out.lower(), out
    code, out = await healthcheck({"TRANSLATOR_METRICS_PORT": "0"})
    assert code == 1 and "TRANSLATOR_METRICS_PORT=0" in out, out
    # Docker reserves exit 2: a settings error is "unhealthy" too.
    code, out = await healthcheck({"TRANSLATOR_METRICS_PORT": "not-a-port"})
    assert code == 1 and "cannot read the settings" in out, out


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0.0.0.0", "http://127.0.0.1:9464/readyz"),
        ("::", "http://[::1]:9464/readyz"),
        ("10.0.0.5", "http://10.0.0.5:9464/readyz"),
        ("fd00::5", "http://[fd00::5]:9464/readyz"),
    ],
)
def test_health_url_reaches_wildcard_listeners_through_loopback(host: str, expected: str) -> None:
    assert health_url(host, 9464, "readyz") == expected
