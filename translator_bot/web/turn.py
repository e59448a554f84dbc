"""The ICE servers a browser gets: STUN from the bot's list, and TURN only from settings meant for
browsers (TRANSLATOR_WEB_TURN_*), never the bot's own TURN account.

A TURN credential given to a page is given to every visitor. A static one (TRANSLATOR_WEB_TURN_USERNAME
and _PASSWORD) should be an account for clients only; better is a shared secret with the TURN server
(TRANSLATOR_WEB_TURN_SECRET, coturn's `use-auth-secret` / `static-auth-secret`): each page then gets a
credential that expires (the TURN REST API convention: username "<expiry unix time>:<user>", password
base64(HMAC-SHA1(secret, username))).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TTL_S = 3600
REST_USER = "meeting-page"


def rest_credential(secret: str, now: float, ttl_s: int, user: str = REST_USER) -> tuple[str, str]:
    """A time-limited TURN username and password, as coturn's use-auth-secret checks them."""
    username = f"{int(now) + ttl_s}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class BrowserTurn:
    """TURN for browsers: URLs plus either a static user/password or a REST shared secret."""

    urls: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    secret: str | None = None
    ttl_s: int = DEFAULT_TTL_S

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("TRANSLATOR_WEB_TURN_URLS is empty")
        for url in self.urls:
            if url.split(":", 1)[0] not in ("turn", "turns") or ":" not in url:
                raise ValueError(f"TRANSLATOR_WEB_TURN_URLS: expected turn:/turns: URLs, got {url[:200]!r}")
        if self.secret and self.password:
            raise ValueError(
                "set TRANSLATOR_WEB_TURN_SECRET (time-limited credentials) or TRANSLATOR_WEB_TURN_PASSWORD "
                "(a static one), not both"
            )
        if not self.secret and not (self.username and self.password):
            raise ValueError(
                "TRANSLATOR_WEB_TURN_URLS needs TRANSLATOR_WEB_TURN_SECRET (coturn use-auth-secret) or "
                "TRANSLATOR_WEB_TURN_USERNAME and TRANSLATOR_WEB_TURN_PASSWORD"
            )
        if self.ttl_s < 60:
            raise ValueError("TRANSLATOR_WEB_TURN_TTL: at least 60 seconds")

    def entry(self, now: float) -> dict[str, object]:
        """One RTCIceServer for a page loaded at `now`."""
        if self.secret:
            username, credential = rest_credential(self.secret, now, self.ttl_s, self.username or REST_USER)
        else:
            username, credential = self.username or "", self.password or ""
        return {"urls": list(self.urls), "username": username, "credential": credential}


def browser_ice_servers(
    bot_ice_urls: Sequence[str], turn: BrowserTurn | None, now: float
) -> list[dict[str, object]]:
    """STUN servers from the bot's list (they need no credential), then the browsers' own TURN."""
    servers: list[dict[str, object]] = [
        {"urls": url} for url in bot_ice_urls if url.startswith(("stun:", "stuns:"))
    ]
    if turn is not None:
        servers.append(turn.entry(now))
    return servers
