"""What the meeting page needs to know, from the bot's settings plus a few web-only options.

The Janus address a browser must use can differ from the bot's (the bot may reach Janus on an
internal name or on loopback), so it is a separate option; when it is not given and the bot's URL
points at this machine's loopback, the browser is sent to the same port on the host it loaded the
page from, which is right whenever Janus and the web server share a host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import langcodes
from pydantic import SecretStr

from translator_bot.addresses import is_loopback_host
from translator_bot.languages import Language, UnknownLanguageError, parse_language
from translator_bot.settings import Settings
from translator_bot.web.turn import BrowserTurn, browser_ice_servers

# Languages both engines interpret well; `--languages` / TRANSLATOR_WEB_LANGUAGES replaces the list.
DEFAULT_LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "it", "pt", "nl", "pl", "ru", "uk", "tr", "ar", "he", "hi",
    "ja", "ko", "zh", "sv", "da", "nb", "fi", "cs", "el", "ro", "hu", "id", "vi", "th",
)  # fmt: skip


@dataclass(frozen=True)
class LanguageChoice:
    tag: str
    name: str  # English name, e.g. "Spanish"
    native: str  # the language's own name, e.g. "español"

    def to_json(self) -> dict[str, str]:
        return {"tag": self.tag, "name": self.name, "native": self.native}


def language_choices(tags: Sequence[str]) -> list[LanguageChoice]:
    """Normalised, de-duplicated choices; an unknown tag raises UnknownLanguageError naming it."""
    out: list[LanguageChoice] = []
    seen: set[str] = set()
    for raw in tags:
        lang: Language = parse_language(raw)
        if lang.tag in seen:
            continue
        seen.add(lang.tag)
        out.append(LanguageChoice(lang.tag, lang.display, _autonym(lang.tag) or lang.display))
    return out


def _autonym(tag: str) -> str | None:
    try:
        return str(langcodes.Language.get(tag).autonym())
    except (LookupError, ValueError):
        return None


def parse_language_list(text: str) -> list[str]:
    tags = [part.strip() for part in text.split(",") if part.strip()]
    if not tags:
        raise UnknownLanguageError("the language list is empty")
    return tags


@dataclass(frozen=True)
class WebConfig:
    janus_url: str  # the bot's
    public_janus_url: str | None = None  # the browser's, when it differs
    languages: tuple[LanguageChoice, ...] = ()
    ice_servers: tuple[dict[str, object], ...] = ()  # given to every page as they are (STUN)
    default_language: str = "en"
    turn: BrowserTurn | None = None  # the browsers' TURN, with credentials made per page load
    display_name: str = "Interpreter"  # the name the interpreters this server starts join under

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        public_janus_url: str | None = None,
        languages: Sequence[str] | None = None,
    ) -> WebConfig:
        """ValueError (UnknownLanguageError for --languages) names the setting that is wrong."""
        public = public_janus_url or settings.web_janus_url or None
        if public is not None:
            check_ws_url(public)
        if languages is None:
            configured = settings.web_languages
            languages = parse_language_list(configured) if configured else DEFAULT_LANGUAGES
        return cls(
            janus_url=settings.janus_url,
            public_janus_url=public,
            languages=tuple(language_choices(languages)),
            ice_servers=tuple(browser_ice_servers(settings.ice_servers, None, 0.0)),
            default_language=settings.default_language,
            turn=browser_turn(settings),
            display_name=settings.display_name,
        )

    def ice_servers_at(self, now: float) -> list[dict[str, object]]:
        """The RTCIceServers for a page loaded at `now` (TURN credentials may expire)."""
        servers = list(self.ice_servers)
        if self.turn is not None:
            servers.append(self.turn.entry(now))
        return servers

    def browser_janus_url(self, page_host: str | None) -> str:
        """The Janus URL for a browser that loaded the page from `page_host` (a Host header); never
        with the bot's user and password, which would go to every visitor."""
        if self.public_janus_url is not None:
            return self.public_janus_url
        parts = urlsplit(self.janus_url)
        host = parts.hostname or ""
        bots = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        if not page_host or not is_loopback_host(host):
            return bots
        page_name = urlsplit(f"//{page_host}").hostname or ""
        if not page_name:
            return bots
        shown = f"[{page_name}]" if ":" in page_name else page_name
        netloc = f"{shown}:{parts.port}" if parts.port else shown
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_ws_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.netloc:
        # Not echoed: a URL may carry a password.
        scheme = parts.scheme or "schemeless"
        raise ValueError(f"expected a ws(s):// or http(s):// Janus URL, got a {scheme} one")
    return url


def browser_turn(settings: Settings) -> BrowserTurn | None:
    """TRANSLATOR_WEB_TURN_*; the bot's own TURN account (TRANSLATOR_TURN_*) is never given to pages."""
    if not settings.web_turn_urls:
        if settings.web_turn_password or settings.web_turn_secret:
            raise ValueError(
                "TRANSLATOR_WEB_TURN_URLS is not set: the browsers' TURN credential has no server"
            )
        return None

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    return BrowserTurn(
        urls=tuple(part.strip() for part in settings.web_turn_urls.split(",") if part.strip()),
        username=settings.web_turn_username or None,
        password=secret(settings.web_turn_password),
        secret=secret(settings.web_turn_secret),
        ttl_s=settings.web_turn_ttl,
    )
