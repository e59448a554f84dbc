"""Move this process into a private network namespace where WebRTC can run on loopback addresses.

Janus never gathers ICE candidates on a loopback interface and aiortc drops 127.0.0.1, so a room on
`lo` alone never connects. A fresh namespace with `lo` plus a non-loopback link (`ifb`: the `dummy`
type is missing on some kernels) carrying 127.0.0.2 gives both sides a usable host candidate while
all traffic stays inside this machine. Children started afterwards inherit the namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

ICE_ADDRESS = "127.0.0.2"
LINK_NAME = "t0"


class NamespaceError(RuntimeError):
    """The private network namespace could not be made; the message names what is missing."""


@dataclass(frozen=True)
class PrivateNetwork:
    ice_address: str
    link: str
    pid: int


_entered: PrivateNetwork | None = None


def enter_private_network(ice_address: str = ICE_ADDRESS, link: str = LINK_NAME) -> PrivateNetwork:
    """Put the calling process in a new network namespace with lo up and `link` holding `ice_address`.

    Must run before any other thread starts: a namespace change applies to the calling thread only,
    and threads started earlier would stay outside. Calling it again in the same process is a no-op.
    """
    global _entered
    if _entered is not None and _entered.pid == os.getpid():
        return _entered
    if threading.active_count() > 1:
        raise NamespaceError(
            f"enter_private_network() must run before any thread starts ({threading.active_count()} running)"
        )
    ip = shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.access(p, os.X_OK)), None
    )
    if ip is None:
        raise NamespaceError("the 'ip' command (iproute2) is not installed: apt-get install iproute2")
    _unshare()
    _run(ip, "link", "set", "lo", "up")
    _run(ip, "link", "add", link, "type", "ifb", hint="the kernel needs the ifb module (modprobe ifb)")
    _run(ip, "addr", "add", f"{ice_address}/32", "dev", link)
    _run(ip, "link", "set", link, "up")
    _entered = PrivateNetwork(ice_address=ice_address, link=link, pid=os.getpid())
    return _entered


def _unshare() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if os.geteuid() == 0:
        if libc.unshare(CLONE_NEWNET) == 0:
            return
        err = ctypes.get_errno()
        raise NamespaceError(
            f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}; a container needs CAP_SYS_ADMIN "
            "(e.g. docker run --cap-add SYS_ADMIN) to make network namespaces"
        )
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(
            f"unshare(CLONE_NEWUSER|CLONE_NEWNET) failed: {os.strerror(err)}; unprivileged user "
            "namespaces are off (sysctl kernel.unprivileged_userns_clone=1) or blocked by the sandbox"
        )
    # Map ourselves to root inside the new user namespace so `ip` may configure links there.
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(text)
    except OSError as exc:
        raise NamespaceError(f"cannot write {path} to map the user namespace: {exc}") from exc


def _run(*argv: str, hint: str = "") -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit code {done.returncode}"
        raise NamespaceError(
            f"`{' '.join(argv)}` failed in the private namespace: {detail}" + (f" ({hint})" if hint else "")
        )
