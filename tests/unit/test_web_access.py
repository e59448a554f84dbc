"""The meeting page's access decisions as pure functions: allowed origins and hosts, the access token,
canonical meeting ids, the start rate limits and back-off (with an injected clock), the browsers'
TURN credentials, and reading a child's stderr in bounded pieces."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from translator_bot.web.access import AccessConfigError, AccessPolicy, normalise_host, normalise_origin
from translator_bot.web.childlog import LineSplitter, shown_reason
from translator_bot.web.launcher import canonical_meeting_id
from translator_bot.web.ratelimit import StartLimiter, StartLimits
from translator_bot.web.turn import BrowserTurn, browser_ice_servers, rest_credential

# --- origins and hosts ---------------------------------------------------------------------------


def test_origins_are_normalised() -> None:
    assert normalise_origin("HTTPS://Meet.Example.org:443/path?q") == "https://meet.example.org"
    assert normalise_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert normalise_origin("http://[::1]:8080") == "http://[::1]:8080"
    for bad in ["null", "", "file:///etc", "ws://x", "http://", "http://x:99999"]:
        assert normalise_origin(bad) is None, bad
    assert normalise_host("Meet.example.org:80") == "meet.example.org"
    for bad in ["evil@127.0.0.1:8080", "127.0.0.1:8080/x", "a b", "127.0.0.1:8080\n"]:
        assert normalise_host(bad) is None, bad


def test_a_loopback_server_allows_its_loopback_names_on_its_port_only() -> None:
    policy = AccessPolicy.for_server("127.0.0.1", 8080)
    for origin in ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]:
        assert policy.origin_allowed(origin), origin
        assert policy.host_allowed(origin.split("://")[1]), origin
    for refused in [
        None,
        "",
        "null",
        "http://127.0.0.1:9090",
        "https://127.0.0.1:8080",
        "http://evil.example",
    ]:
        assert not policy.origin_allowed(refused), refused
    for host in [None, "", "evil.example:8080", "127.0.0.1:9090", "evil.example"]:
        assert not policy.host_allowed(host), host
    assert policy.token is None and policy.token_accepted(None)


def test_public_urls_add_their_origins_and_default_ports() -> None:
    policy = AccessPolicy.for_server(
        "127.0.0.1", 8080, ["https://meet.example.org/", "http://10.0.0.5:8080"], token=None
    )
    assert policy.origin_allowed("https://meet.example.org")
    assert policy.host_allowed("meet.example.org") and policy.host_allowed("meet.example.org:443")
    assert policy.host_allowed("10.0.0.5:8080") and not policy.host_allowed("10.0.0.5:8081")
    assert not policy.origin_allowed("http://meet.example.org")  # the scheme is part of the origin


def test_a_non_loopback_server_needs_a_token_and_a_wildcard_one_a_public_url() -> None:
    with pytest.raises(AccessConfigError, match="TRANSLATOR_WEB_TOKEN"):
        AccessPolicy.for_server("0.0.0.0", 8080, ["https://meet.example.org"])
    with pytest.raises(AccessConfigError, match="TRANSLATOR_WEB_TOKEN"):
        AccessPolicy.for_server("10.0.0.5", 8080)
    with pytest.raises(AccessConfigError, match="--public-url"):
        AccessPolicy.for_server("::", 8080, token="t0ken-value")
    with pytest.raises(AccessConfigError, match="not an http"):
        AccessPolicy.for_server("127.0.0.1", 8080, ["meet.example.org"])
    specific = AccessPolicy.for_server("10.0.0.5", 8080, token="t0ken-value")
    assert specific.origins == frozenset({"http://10.0.0.5:8080"})
    wildcard = AccessPolicy.for_server("0.0.0.0", 8080, ["https://meet.example.org"], token="t0ken-value")
    assert wildcard.origins == frozenset({"https://meet.example.org"})


def test_the_token_is_a_bearer_token() -> None:
    policy = AccessPolicy(origins=frozenset(), token="s3cret-code")
    assert policy.token_accepted("Bearer s3cret-code") and policy.token_accepted("bearer s3cret-code")
    for bad in [None, "", "s3cret-code", "Bearer s3cret-cod", "Basic s3cret-code", "Bearer s3cret-code2"]:
        assert not policy.token_accepted(bad), bad


# --- meeting ids -----------------------------------------------------------------------------------------


def test_meeting_ids_are_canonical() -> None:
    for alias in ["1234", "01234", "001234"]:
        assert canonical_meeting_id(alias) == "1234"
    assert canonical_meeting_id("room-7") == "room-7" and canonical_meeting_id("Room-7") == "Room-7"
    assert canonical_meeting_id("0") == "0" and canonical_meeting_id("00") == "00"  # not a Janus number
    for bad in ["1234\n", "1234\r\n", " 1234", "1234 ", "", "-1", "١٢٣", "a" * 65, "a/b", "x\n"]:
        assert canonical_meeting_id(bad) is None, repr(bad)


# --- start rate limits -----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_start_requests_are_limited_per_client() -> None:
    clock = Clock()
    limiter = StartLimiter(StartLimits(client_starts=3, window_s=60), clock=clock)
    assert [limiter.request("a") for _ in range(3)] == [None, None, None]
    refused = limiter.request("a")
    assert refused is not None and refused.retry_after_s == 60
    assert limiter.request("b") is None  # another client is not slowed down
    clock.now += 30
    refused = limiter.request("a")
    assert refused is not None and refused.retry_after_s == 30
    clock.now += 30
    assert limiter.request("a") is None


def test_launches_are_limited_per_meeting() -> None:
    clock = Clock()
    limiter = StartLimiter(StartLimits(meeting_starts=2, window_s=100), clock=clock)
    assert limiter.launch("1") is None and limiter.launch("1") is None
    refused = limiter.launch("1")
    assert refused is not None and refused.retry_after_s == 100 and "this meeting" in refused.reason
    assert limiter.launch("2") is None
    clock.now += 100
    assert limiter.launch("1") is None


def test_a_failing_meeting_backs_off_exponentially_and_success_resets_it() -> None:
    clock = Clock()
    limits = StartLimits(meeting_starts=100, backoff_first_s=10, backoff_max_s=60)
    limiter = StartLimiter(limits, clock=clock)
    waits = []
    for _ in range(5):
        assert limiter.launch("9") is None
        limiter.ended("9", failed=True)
        refused = limiter.launch("9")
        assert refused is not None and "failed" in refused.reason
        waits.append(refused.retry_after_s)
        clock.now += refused.retry_after_s
    assert waits == [10, 20, 40, 60, 60]
    assert limiter.launch("9") is None
    limiter.ended("9", failed=False)
    assert limiter.launch("9") is None  # a success clears the back-off


def test_the_limiter_remembers_a_bounded_number_of_clients() -> None:
    limiter = StartLimiter(StartLimits(client_starts=1, max_tracked=100), clock=Clock())
    for n in range(1000):
        limiter.request(f"client-{n}")
    assert len(limiter._clients) == 100
    assert limiter.request("client-999") is not None  # the most recent are the ones kept


# --- TURN for browsers -------------------------------------------------------------------------------


def test_rest_credentials_follow_the_turn_rest_convention() -> None:
    username, password = rest_credential("shared-secret", now=1_700_000_000.5, ttl_s=3600, user="page")
    assert username == "1700003600:page"
    expected = hmac.new(b"shared-secret", b"1700003600:page", hashlib.sha1).digest()
    assert base64.b64decode(password) == expected and len(expected) == 20


def test_browsers_get_stun_and_their_own_turn_only() -> None:
    turn = BrowserTurn(urls=("turns:turn.example.org:443",), secret="shared-secret", ttl_s=600)
    servers = browser_ice_servers(["stun:stun.example.org", "turn:bot-turn.internal:3478"], turn, 1000.0)
    assert servers[0] == {"urls": "stun:stun.example.org"}
    assert servers[1]["urls"] == ["turns:turn.example.org:443"]
    assert servers[1]["username"] == "1600:meeting-page"
    assert "bot-turn.internal" not in str(servers)
    static = BrowserTurn(urls=("turn:t.example.org",), username="pages", password="pw-for-pages")
    assert static.entry(0.0) == {
        "urls": ["turn:t.example.org"],
        "username": "pages",
        "credential": "pw-for-pages",
    }
    with pytest.raises(ValueError, match="not both"):
        BrowserTurn(urls=("turn:t",), username="u", password="p", secret="s")
    with pytest.raises(ValueError, match="TRANSLATOR_WEB_TURN_SECRET"):
        BrowserTurn(urls=("turn:t",), username="u")
    with pytest.raises(ValueError, match="turn:/turns:"):
        BrowserTurn(urls=("stun:t",), secret="s")


# --- a child's stderr ----------------------------------------------------------------------------------


def test_lines_of_any_length_cost_bounded_memory() -> None:
    splitter = LineSplitter(max_bytes=100)
    assert splitter.feed(b"first\nsec") == ["first"]
    assert splitter.feed(b"ond\n") == ["second"]
    for _ in range(1000):  # 10 MB of one line, in pieces
        assert splitter.feed(b"x" * 10_000) == []
        assert len(splitter._partial) <= 100
    assert splitter.feed(b"y\nafter\n") == ["x" * 100, "after"]
    assert splitter.feed(b"no newline") == [] and splitter.flush() == ["no newline"]
    assert splitter.feed(b"\xff\xfe broken utf-8\n") == ["\ufffd\ufffd broken utf-8"]


def test_what_the_page_is_shown_of_an_error_is_scrubbed_and_short() -> None:
    shown = shown_reason("cannot use key sk-abcdefghijklmnop1234 at " + "z" * 5000)
    assert "sk-abcdefghijklmnop1234" not in shown and "***" in shown
    assert len(shown) <= 300
