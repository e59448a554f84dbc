"""How long to wait before reconnecting, and which provider errors retrying cannot fix.

Fatal: the key is refused or the account cannot pay; every retry would fail the same way and burn
time while the meeting hears nothing, so the bot stops with exit code 4 and says why. Everything
else (drops, rate limits, server errors, a session that reached its time cap) is retried, for as long
as the operator allows an outage to last (then exit 5, see engine/health.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from translator_bot.errors import ProviderFatalError

FATAL_CODES = frozenset(
    {
        "invalid_api_key",
        "invalid_authentication",
        "insufficient_quota",
        "account_deactivated",
        "billing_hard_limit_reached",
        "unsupported_country_region_territory",
        "model_not_found",
        "DeploymentNotFound",
    }
)
FATAL_TYPES = frozenset({"authentication_error", "insufficient_quota", "permission_error"})
RETRY_TYPES = frozenset({"server_error", "rate_limit_error", "rate_limit_exceeded"})
RETRY_CODES = frozenset({"rate_limit_exceeded", "server_error", "server_is_overloaded"})
EXPIRED_CODES = frozenset({"session_expired"})

_FATAL_STATUS_MEANING = {
    400: "rejected the connection request (HTTP 400): check the model name",
    401: "rejected the API key (HTTP 401)",
    403: "refused access (HTTP 403): the key has no access to this model or region",
    404: "does not know this model or deployment (HTTP 404)",
}


class RetryableError(Exception):
    """A connection attempt failed in a way that may pass on a later try."""


@dataclass
class Backoff:
    """Exponential backoff with jitter: 0.5 s doubling to 8 s; `reset()` once a session proved healthy
    (not merely opened: a server that accepts and then closes must not restart the sequence)."""

    first: float = 0.5
    cap: float = 8.0
    jitter: float = 0.25  # +- fraction, so many lanes dropped at once do not reconnect in lockstep
    _attempt: int = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.first * (2**self._attempt))
        self._attempt += 1
        return float(base * (1.0 + random.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        self._attempt = 0


def error_for_status(status: int, where: str) -> Exception:
    """Map an HTTP status of a refused WebSocket handshake to a fatal or a retryable error."""
    meaning = _FATAL_STATUS_MEANING.get(status)
    if meaning is not None:
        return ProviderFatalError(f"the model provider at {where} {meaning}")
    return RetryableError(f"handshake refused with HTTP {status} by {where}")


def is_fatal(error_type: str | None, code: str | None) -> bool:
    return (code or "") in FATAL_CODES or (error_type or "") in FATAL_TYPES


def is_retryable(error_type: str | None, code: str | None) -> bool:
    return (code or "") in RETRY_CODES or (error_type or "") in RETRY_TYPES


def fatal_message(error_type: str | None, code: str | None, where: str) -> str:
    """A user-facing line; the server's own message is left out because it may quote part of the key."""
    what = code or error_type or "error"
    if what in ("insufficient_quota", "billing_hard_limit_reached"):
        return f"the model provider at {where} reports no quota left ({what}): check the account's billing"
    if what in ("invalid_api_key", "invalid_authentication", "authentication_error"):
        return f"the model provider at {where} rejected the API key ({what})"
    return f"the model provider at {where} refused the session ({what})"
