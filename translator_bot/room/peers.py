"""aiortc PeerConnections configured from settings.

aiortc asks a public STUN server when it is given no configuration at all; an explicit empty server
list keeps every candidate local, which is what a bot next to its room server (or a test) wants.
TURN/STUN come only from settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from translator_bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IceConfig:
    servers: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> IceConfig:
        password = settings.turn_password.get_secret_value() if settings.turn_password is not None else None
        return cls(tuple(settings.ice_servers), settings.turn_username, password)

    def __repr__(self) -> str:
        return f"IceConfig(servers={self.servers!r}, username={self.username!r}, password=***)"


def rtc_configuration(ice: IceConfig) -> RTCConfiguration:
    servers: list[RTCIceServer] = []
    for url in ice.servers:
        if url.startswith(("turn:", "turns:")):
            servers.append(RTCIceServer(urls=url, username=ice.username, credential=ice.password))
        else:
            servers.append(RTCIceServer(urls=url))
    return RTCConfiguration(iceServers=servers)


def new_peer_connection(ice: IceConfig) -> RTCPeerConnection:
    return RTCPeerConnection(configuration=rtc_configuration(ice))


def to_jsep(description: RTCSessionDescription) -> dict[str, Any]:
    # aiortc gathers every candidate before setLocalDescription returns, so the SDP is complete.
    return {"type": description.type, "sdp": description.sdp, "trickle": False}


def from_jsep(jsep: dict[str, Any]) -> RTCSessionDescription:
    return RTCSessionDescription(sdp=str(jsep["sdp"]), type=str(jsep["type"]))


async def close_quietly(pc: RTCPeerConnection, timeout_s: float = 5.0) -> None:
    """Close a PeerConnection on a shutdown path: never raises, never hangs the caller."""
    try:
        async with asyncio.timeout(timeout_s):
            await pc.close()
    except (TimeoutError, Exception):
        log.debug("closing a peer connection failed", exc_info=True)
    with contextlib.suppress(Exception):
        pc.remove_all_listeners()
