"""Showing that a secret is set without showing the secret."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

# OpenAI key prefixes name the kind of key and are the same for every account, so they say nothing
# about the key itself; they are shown only when the key is long enough that they are a small part.
_PUBLIC_PREFIXES = ("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-")
_MIN_HIDDEN = 16
# Anything shaped like an OpenAI key that ended up in a non-secret setting or an error message.
_KEY_SHAPE = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_HIDDEN = "…(hidden)"


def mask_secret(value: str | None) -> str:
    """`sk-…(set, 51 chars)`, `(set, 32 chars)`, `(set, empty)` or `(not set)`."""
    if value is None:
        return "(not set)"
    if not value:
        return "(set, empty)"
    prefix = next(
        (p for p in _PUBLIC_PREFIXES if value.startswith(p) and len(value) - len(p) >= _MIN_HIDDEN), ""
    )
    return f"{prefix}…(set, {len(value)} chars)" if prefix else f"(set, {len(value)} chars)"


def mask_url(url: str) -> str:
    """The URL with any password in its user info hidden (wss://user:pass@host -> wss://user:***@host)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return url


class Redactor:
    """Last line of defence on the finished output: known secret values and key-shaped strings go."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Also as JSON and repr() would escape them; longest first, so a secret containing another is
        # replaced whole.
        forms = {
            form
            for s in secrets
            if s and len(s) >= 4
            for form in (s, json.dumps(s, ensure_ascii=False)[1:-1], repr(s)[1:-1])
        }
        self._secrets = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _HIDDEN)
        return _KEY_SHAPE.sub(lambda m: "sk-" + _HIDDEN, text)
