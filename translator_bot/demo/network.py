"""Where the demo's WebRTC runs: a private network namespace, or this machine's own address.

Janus and aiortc both refuse loopback interfaces, so a meeting on one machine needs a non-loopback
address. A private namespace (system/netns.py) keeps everything invisible from outside but has no
route to the internet, so the real model API needs the machine's own network instead.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

from translator_bot.system.netns import NamespaceError, enter_private_network

NetworkMode = Literal["auto", "private", "host"]


class NetworkError(RuntimeError):
    """No usable network for the demo; the message says what to run or install."""


@dataclass(frozen=True)
class DemoNetwork:
    mode: Literal["private", "host"]
    ice_address: str

    def describe(self) -> str:
        if self.mode == "private":
            return f"private network namespace (ICE on {self.ice_address}, nothing reachable from outside)"
        return f"this machine's address {self.ice_address}"


def first_global_ipv4(ip_output: str) -> str | None:
    """The first non-loopback IPv4 address in `ip -4 -o addr show up` output."""
    for line in ip_output.splitlines():
        fields = line.split()
        if "inet" not in fields:
            continue
        address = fields[fields.index("inet") + 1].split("/")[0]
        try:
            parsed = ipaddress.IPv4Address(address)
        except ValueError:
            continue
        if not parsed.is_loopback and not parsed.is_link_local:
            return address
    return None


def host_ipv4() -> str | None:
    ip = shutil.which("ip")
    if ip is None:
        return None
    done = subprocess.run([ip, "-4", "-o", "addr", "show", "up"], capture_output=True, text=True, check=False)
    return first_global_ipv4(done.stdout) if done.returncode == 0 else None


def wanted_mode(requested: NetworkMode, *, needs_internet: bool) -> Literal["private", "host"]:
    if requested != "auto":
        return requested
    return "host" if needs_internet else "private"


def prepare_network(requested: NetworkMode, *, needs_internet: bool) -> DemoNetwork:
    """Enter the namespace or pick the host address. Must run before any thread starts.

    `auto` keeps a demo on the local fake model fully private, falling back to the machine's address
    when namespaces are not allowed; a demo on the real API needs the machine's network.
    """
    mode = wanted_mode(requested, needs_internet=needs_internet)
    if mode == "private":
        try:
            return DemoNetwork("private", enter_private_network().ice_address)
        except NamespaceError as exc:
            fallback = host_ipv4() if requested == "auto" else None
            if fallback is None:
                raise NetworkError(
                    f"cannot make a private network namespace: {exc}. Run as root, or pass "
                    "--network host on a machine with a non-loopback IPv4 address"
                ) from exc
            return DemoNetwork("host", fallback)
    address = host_ipv4()
    if address is None:
        raise NetworkError(
            "--network host needs a non-loopback IPv4 address on this machine and none is up "
            "(WebRTC in Janus and aiortc refuses loopback); use --network private instead"
        )
    return DemoNetwork("host", address)
