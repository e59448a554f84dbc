"""Who may use the meeting page's API: the origins the server is published at, and an optional token.

Starting an interpreter costs money, so a request that starts one must come from the page itself, as
served at an address the operator configured. Comparing `Origin` with the request's own `Host` is not
enough: both are chosen by whoever sends the request, and a DNS-rebinding site (evil.example resolving
to 127.0.0.1) sends a matching pair. So both are checked against a list fixed at start-up: the
`--public-url`s, and the loopback names when the server listens on loopback.

A shared token (TRANSLATOR_WEB_TOKEN) adds "and knows the access code": anyone who can load the page
can otherwise start bots, which is fine on a laptop and not on a public address.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from translator_bot.addresses import is_loopback_host

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# A name or an IP literal and a port: no userinfo, path or whitespace for urlsplit to read around.
_HOST_HEADER = re.compile(r"[A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


class AccessConfigError(ValueError):
    """The server's address settings cannot be served safely; the message says what to set."""


def normalise_origin(text: str) -> str | None:
    """`scheme://host[:port]` in lower case, without a default port; None if `text` is not an
    http(s) origin or URL (e.g. the string "null" a sandboxed page sends)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{shown}"
    return f"{parts.scheme}://{shown}:{port}"


def host_of(origin: str) -> str:
    """The Host header a browser sends for `origin` (a normalised origin)."""
    return origin.split("://", 1)[1]


def normalise_host(header: str) -> str | None:
    """A Host header as `host[:port]` in lower case (port 80 dropped); None if it is not one."""
    if not _HOST_HEADER.fullmatch(header):
        return None
    origin = normalise_origin(f"http://{header}")
    return None if origin is None else host_of(origin)


def is_wildcard(bind_host: str) -> bool:
    try:
        return ipaddress.ip_address(bind_host).is_unspecified
    except ValueError:
        return bind_host in ("", "*")


def binds_publicly(bind_host: str) -> bool:
    """Anything but a loopback address is reachable from other machines (a name may resolve anywhere)."""
    return not is_loopback_host(bind_host)


@dataclass(frozen=True)
class AccessPolicy:
    """The origins allowed to use the API, the Host headers that go with them, and the token."""

    origins: frozenset[str]
    token: str | None = None

    @property
    def hosts(self) -> frozenset[str]:
        hosts: set[str] = set()
        for origin in self.origins:
            scheme = origin.split("://", 1)[0]
            host = host_of(origin)
            hosts.add(host)
            if ":" not in host.rsplit("]", 1)[-1]:  # no port: browsers may send the default one
                hosts.add(f"{host}:{_DEFAULT_PORTS[scheme]}")
        return frozenset(hosts)

    def host_allowed(self, header: str | None) -> bool:
        if not header:
            return False
        return normalise_host(header) in self.hosts

    def origin_allowed(self, header: str | None) -> bool:
        """A request without Origin is refused: every browser sends it on a POST, so only a script
        leaves it out."""
        if not header:
            return False
        return normalise_origin(header) in self.origins

    def token_accepted(self, authorization: str | None) -> bool:
        if self.token is None:
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self.token.encode())

    @classmethod
    def for_server(
        cls, bind_host: str, port: int, public_urls: Iterable[str] = (), token: str | None = None
    ) -> AccessPolicy:
        """The allowlist for a server listening on `bind_host:port`: its public URLs, plus the loopback
        names when it listens on loopback, plus the address itself when it is a specific address.
        A server on a non-loopback address must have a token, and a wildcard address a public URL
        (nothing else says which name browsers use)."""
        origins: set[str] = set()
        for url in public_urls:
            origin = normalise_origin(url)
            if origin is None:
                raise AccessConfigError(f"not an http(s) URL: {url[:200]!r}")
            origins.add(origin)
        if is_loopback_host(bind_host):
            origins.update(f"http://{name}:{port}" for name in _LOOPBACK_NAMES)
        elif is_wildcard(bind_host):
            if not origins:
                raise AccessConfigError(
                    f"listening on {bind_host or 'every address'} needs --public-url "
                    "(TRANSLATOR_WEB_PUBLIC_URL): the address browsers open the page at, "
                    "e.g. https://meet.example.org"
                )
        else:
            shown = f"[{bind_host}]" if ":" in bind_host else bind_host
            origins.add(f"http://{shown.lower()}:{port}")
        if binds_publicly(bind_host) and not token:
            raise AccessConfigError(
                f"listening on {bind_host or 'every address'} lets other machines start interpreters: "
                "set TRANSLATOR_WEB_TOKEN (in the environment or .env) to an access code the page "
                "will ask for, or listen on 127.0.0.1 behind your own proxy"
            )
        return cls(origins=frozenset(origins), token=token or None)
