"""Shared fixtures: a private network namespace for WebRTC on loopback addresses, and a real Janus.

The namespace must be entered before any thread exists (a namespace switch applies to the calling
thread only), so it happens in `pytest_configure`, before collection; a failure there is kept and
reported by every test that needs the namespace, which then FAILS with the reason (never skips).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from translator_bot.system.netns import NamespaceError, PrivateNetwork, enter_private_network
from translator_bot.testbed.janus import JanusServer, JanusServerError

_network: PrivateNetwork | None = None
_network_error: str | None = None

StartJanus = Callable[..., Awaitable[JanusServer]]


def pytest_configure(config: pytest.Config) -> None:
    global _network, _network_error
    try:
        _network = enter_private_network()
    except NamespaceError as exc:
        _network_error = str(exc)


@pytest.fixture(scope="session")
def private_network() -> PrivateNetwork:
    if _network is None:
        pytest.fail(f"cannot make the private network namespace the room tests need: {_network_error}")
    return _network


@pytest.fixture
async def start_janus(private_network: PrivateNetwork) -> AsyncIterator[StartJanus]:
    """`await start_janus(**JanusServer options)`; every server started is stopped after the test."""
    servers: list[JanusServer] = []

    async def start(**options: Any) -> JanusServer:
        try:
            server = JanusServer(ice_address=private_network.ice_address, **options)
            servers.append(server)
            return await server.start()
        except JanusServerError as exc:
            pytest.fail(f"cannot start Janus for the room tests: {exc}")

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def janus(start_janus: StartJanus) -> JanusServer:
    return await start_janus()
