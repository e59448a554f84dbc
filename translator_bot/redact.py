"""Secrets out of everything the process writes: one redactor for logs, errors, reports and responses.

Two kinds of protection, applied together by `Redactor`:
- known values: every secret setting and the password inside every URL setting, registered when the
  settings load (`register_settings`), replaced wherever they appear, in every form an escaping
  step may have turned them into (repr, JSON with and without ASCII escapes, percent-encoding);
- shapes: the password of any `scheme://user:password@host` URL, OpenAI-style keys (`sk-...`) and
  `Bearer` tokens, so a secret that was never registered (a key pasted into the wrong setting, a
  URL built at run time) is hidden too.

`redact(text)` applies the process-wide redactor; `Redactor(secrets)` makes a private one (the
doctor's report knows secrets read from files that the process never loaded as settings).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from translator_bot.settings import Settings

MASK = "***"
# Shorter values would match inside ordinary words: a secret this short is not protected by value
# (a URL password still is, by shape).
MIN_SECRET_LENGTH = 4

# A URL's user info up to the password: the password runs to the '@' that ends the authority. Quotes
# and whitespace end it too, so a URL quoted inside a longer text is not over-matched.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:'\"]*):(?P<password>[^\s/?#@'\"]*)@")
# Anything shaped like an OpenAI key, or a bearer token in a header that ended up in a message.
_KEY_SHAPE = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"\b(Bearer\s+)[A-Za-z0-9_.~+/\-]{6,}=*")
# OpenAI key prefixes name the kind of key and are the same for every account, so they say nothing
# about the key itself; they are shown only when the key is long enough that they are a small part.
_PUBLIC_PREFIXES = ("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-")
_MIN_HIDDEN = 16
# RFC 3986 sub-delims: what URL libraries leave unencoded in user info (yarl does).
_USERINFO_SAFE = "!$&'()*+,;="


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


def _authority(url: str) -> tuple[str, str, str, str] | None:
    """(scheme, user info, host[:port], rest) of a URL with user info, split on the text alone."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:end].rpartition("@")
    return (scheme, userinfo, hostport, rest[end:]) if at else None


def mask_url(url: str) -> str:
    """The URL with any password in its user info hidden (wss://user:pass@host -> wss://user:***@host).

    Works on the text, not on a parse, so it holds for URLs a parser refuses (a bad port, no host).
    """
    parts = _authority(url)
    if parts is None or ":" not in parts[1]:
        return url
    scheme, userinfo, hostport, rest = parts
    return f"{scheme}://{userinfo.split(':', 1)[0]}:{MASK}@{hostport}{rest}"


def url_password(url: str) -> str | None:
    """The password in a URL's user info as written (percent-encoded), or None."""
    parts = _authority(url)
    if parts is None or ":" not in parts[1]:
        return None
    return parts[1].split(":", 1)[1] or None


def mask_urls(text: str) -> str:
    """Every `scheme://user:password@` in free text with the password masked (an error message that
    quotes a URL); unlike `redact`, needs no registered secret and touches nothing else."""
    return _USERINFO.sub(rf"\g<head>:{MASK}@", text)


def mask_credentials(text: str) -> str:
    """For echoing a value that should have been a URL: a password is hidden even when the scheme
    is missing or odd (`user:pass@host`, `turn:user:pass@host`): everything before the last '@' goes."""
    if "://" in text:
        return mask_url(text)
    if "@" in text:
        return f"{MASK}@{text.rpartition('@')[2]}"
    return text


def _repr_styles(text: str) -> set[str]:
    """The text as repr() writes it inside a longer string: single-quoted (a ' escaped), or
    double-quoted (nothing escaped but backslashes), which repr() picks when the whole string has a '
    and no ". Which one depends on the whole string, so both."""
    styles = {repr(text + "'\"")[1:-4]}
    if '"' not in text:
        styles.add(repr(text + "'")[1:-2])
    return styles


def _escaped_forms(value: str) -> Iterator[str]:
    """The value as it reads after the escaping steps text goes through on its way out: percent-
    encoding, repr() (also twice: a KeyError's message, an error quoting a message that quoted it),
    bytes repr, then JSON with or without ASCII escapes."""
    plain = {value, unquote(value)}
    for text in list(plain):
        plain |= {quote(text, safe=""), quote(text, safe=_USERINFO_SAFE)}
    for text in plain:
        quoted = {text} | _repr_styles(text)
        quoted |= {twice for once in list(quoted) for twice in _repr_styles(once)}
        quoted.add(repr(text.encode() + b"'\"")[2:-4])
        for form in quoted:
            yield form
            yield json.dumps(form, ensure_ascii=False)[1:-1]
            yield json.dumps(form)[1:-1]


def _literals_pattern(words: Iterable[str]) -> str:
    """One regex for many literals, built as a trie: at each position of the text one branch per next
    character is tried instead of every literal (ten times faster on a /metrics body than a plain
    alternation). Greedy, so where one secret contains another the longer is replaced whole."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


class Redactor:
    """Replaces known secrets (in every escaped form) and secret-shaped text with `***`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._values: set[str] = set()
        self._forms: set[str] = set()
        self._known: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        with self._lock:
            new = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH} - self._values
            if not new:
                return
            self._values |= new
            self._forms |= {f for s in new for f in _escaped_forms(s) if len(f) >= MIN_SECRET_LENGTH}
            # Swapped in whole: a thread redacting meanwhile uses the old pattern or the new one.
            self._known = re.compile(_literals_pattern(self._forms))

    def __call__(self, text: str) -> str:
        known = self._known
        if known is not None:
            text = known.sub(MASK, text)
        # Each shape is looked for only when its fixed part is there: most text has none, and a
        # pattern that starts at a word boundary is tried at every position.
        if "://" in text and "@" in text:
            text = mask_urls(text)
        if "sk-" in text:
            text = _KEY_SHAPE.sub("sk-" + MASK, text)
        if "Bearer" in text:
            text = _BEARER.sub(rf"\g<1>{MASK}", text)
        return text


_PROCESS = Redactor()


def redact(text: str) -> str:
    """`text` with every secret this process knows, and anything shaped like one, masked."""
    return _PROCESS(text)


def register_secrets(values: Iterable[str | None]) -> None:
    """Values registered here are masked in everything the process writes from now on."""
    _PROCESS.add(values)


def register_settings(settings: Settings) -> None:
    """Every secret setting and every URL setting's password, masked from now on."""
    _PROCESS.add(settings.secret_values())
