"""The redactor's rules: URL passwords by shape, known secrets in every escaped form, key shapes."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from translator_bot.redact import Redactor, mask_credentials, mask_url, mask_urls, url_password
from translator_bot.settings import Settings


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("wss://bot:pw@janus.example.org:8989/x?y#z", "wss://bot:***@janus.example.org:8989/x?y#z"),
        ("ws://bot:p%40ss@host/", "ws://bot:***@host/"),
        ("ws://:pw@host", "ws://:***@host"),
        ("ws://bot:pw@host:notaport/", "ws://bot:***@host:notaport/"),  # a parser would refuse it
        ("ws://bot:pw@[::1]:8188/", "ws://bot:***@[::1]:8188/"),
        ("ws://a:b@c@host/", "ws://a:***@host/"),  # the last '@' ends the user info
        ("ws://user@host/", "ws://user@host/"),  # a user alone is not a secret
        ("ws://host/path@x:y", "ws://host/path@x:y"),  # '@' after the authority is not user info
        ("wss://janus.example.org/", "wss://janus.example.org/"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_url_password_is_the_password_as_written() -> None:
    assert url_password("ws://bot:p%40ss@host/") == "p%40ss"
    assert url_password("ws://bot@host/") is None
    assert url_password("ws://bot:@host/") is None
    assert url_password("ws://host/a:b@c") is None


def test_mask_credentials_covers_values_that_are_not_urls() -> None:
    assert mask_credentials("bot:pw@host/v1") == "***@host/v1"
    assert mask_credentials("turn:bot:pw@turn.example.org") == "***@turn.example.org"
    assert mask_credentials("ftp://bot:pw@h/") == "ftp://bot:***@h/"
    assert mask_credentials("en") == "en"


def test_urls_in_free_text_lose_their_passwords() -> None:
    text = "cannot reach ws://bot:pw1@h1/ nor 'https://u:pw2@h2:1/v1', url='wss://x:pw3@h3'"
    assert (
        mask_urls(text) == "cannot reach ws://bot:***@h1/ nor 'https://u:***@h2:1/v1', url='wss://x:***@h3'"
    )


SECRET = "pa'ss\"wo\\rd-é"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        repr(SECRET),
        json.dumps(SECRET),
        json.dumps(SECRET, ensure_ascii=False),
        json.dumps(repr(SECRET)),
        repr(SECRET.encode()),
        quote(SECRET, safe=""),
        repr({"nested": [SECRET]}),
        repr([SECRET, "'"]),  # repr() picks its quotes for the whole string
        str(KeyError(f"no {SECRET!r}")),  # a KeyError's message is a repr of a repr
        repr(repr(SECRET)),
        json.dumps({"exc": str(KeyError(SECRET))}),
        repr(SECRET.encode()),
        repr([SECRET.encode(), b"'"]),
    ],
)
def test_a_known_secret_goes_in_every_escaped_form(form: str) -> None:
    out = Redactor([SECRET])(f"before {form} after")
    assert "ss" not in out.replace("***", ""), out
    assert out.startswith("before ") and out.endswith(" after")


def test_a_percent_encoded_url_password_goes_decoded_and_reencoded() -> None:
    redact = Redactor(["p%40ss%22w'rd"])
    assert "ss" not in redact("pw p@ss\"w'rd, as yarl writes it p%40ss%22w'rd, quoted p%40ss%22w%27rd")


def test_longer_secrets_first_and_short_values_ignored() -> None:
    redact = Redactor(["abcd", "abcdefgh", "ab", None, ""])
    assert redact("x abcdefgh y abcd z ab") == "x *** y *** z ab"


def test_key_and_token_shapes_go_without_being_registered() -> None:
    redact = Redactor()
    text = redact(
        "key sk-proj-abcdefgh12345 header Authorization: Bearer eyJhbGciOi.J9.x-y_z= task-list-entries"
    )
    assert text == "key sk-*** header Authorization: Bearer *** task-list-entries"


def test_json_stays_json() -> None:
    redact = Redactor([SECRET])
    line = json.dumps({"msg": f"x {SECRET} y", "url": "ws://a:b@c/"}, ensure_ascii=False)
    assert json.loads(redact(line)) == {"msg": "x *** y", "url": "ws://a:***@c/"}


def test_settings_name_every_secret_and_url_password() -> None:
    settings = Settings(
        openai_api_key=SecretStr("k-openai"),
        azure_openai_api_key=SecretStr("k-azure"),
        janus_api_secret=SecretStr("k-apisecret"),
        janus_token=SecretStr("k-token"),
        janus_admin_key=SecretStr("k-admin"),
        turn_password=SecretStr("k-turn"),
        openai_base_url="https://u:p-base@api.example.org/v1",
        janus_url="wss://u:p-janus@janus.example.org/",
        web_janus_url="wss://u:p-web@janus.example.org/",
    )
    assert sorted(settings.secret_values()) == sorted(
        ["k-openai", "k-azure", "k-apisecret", "k-token", "k-admin", "k-turn", "p-base", "p-janus", "p-web"]
    )
    azure = Settings(
        azure_openai_endpoint="https://u:p-azure@r.openai.azure.com", azure_openai_api_key=SecretStr("k")
    )
    assert "p-azure" in azure.secret_values()
