"""OPENAI_ORG_ID / OPENAI_PROJECT_ID and Azure Entra ID tokens, sent as the openai SDK sends them.

The reference is the installed SDK itself: for each combination of settings, the SDK's own client
connects to the fake server, then the bot's engine connection does, from the same environment, and
the fake's record of each handshake (which credential header, which organization and project)
must be the same. The fake is then made to refuse as the real services do, and the bot must say
which setting to fix without showing a credential.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from pydantic import SecretStr

from tests.unit.test_fake_faults import handshake_status
from translator_bot.engine.connection import keep_refusal_body, open_socket
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.errors import ProviderFatalError, SettingsError
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.settings import Settings, load_settings

KEY = "sk-test-key-0123456789abcdef"
AZURE_KEY = "azure-resource-key-0123456789"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra-token-body.signature"
ORG = "org-AbCdEf0123456789"
PROJECT = "proj_0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in list(os.environ):
        if name.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./.env


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    fake = FakeRealtimeServer(options=FakeOptions(heartbeat_ms=0))
    await fake.start()
    yield fake
    await fake.stop()
    assert fake.state.internal_errors == []


def handshake(server: FakeRealtimeServer, index: int = -1) -> tuple[str, str | None, str | None, str]:
    record = server.state.sessions[index]
    return record.auth, record.organization, record.project, record.path


async def bot_connects(server: FakeRealtimeServer, engine: str) -> None:
    settings = load_settings()
    endpoint = endpoint_for(settings, engine)  # type: ignore[arg-type]
    async with aiohttp.ClientSession(middlewares=(keep_refusal_body,)) as http:  # as the engine's
        ws = await open_socket(http, endpoint)
        await ws.receive(timeout=5)  # session.created
        await ws.close()


# --- OpenAI: the SDK's client and the bot, from the same environment ----------------------------------------

OPENAI_SCOPES = [
    {},
    {"OPENAI_ORG_ID": ORG},
    {"OPENAI_PROJECT_ID": PROJECT},
    {"OPENAI_ORG_ID": ORG, "OPENAI_PROJECT_ID": PROJECT},
]


@pytest.mark.parametrize("scope", OPENAI_SCOPES, ids=["key", "org", "project", "org+project"])
@pytest.mark.parametrize("engine", ["realtime", "translate"])
async def test_openai_handshake_matches_the_sdk(
    server: FakeRealtimeServer, monkeypatch: pytest.MonkeyPatch, scope: dict[str, str], engine: str
) -> None:
    for name, value in {"OPENAI_API_KEY": KEY, **scope}.items():
        monkeypatch.setenv(name, value)
    client = openai.AsyncOpenAI(websocket_base_url=server.websocket_base_url)  # reads the same variables
    if engine == "realtime":
        async with client.realtime.connect(model="gpt-realtime") as connection:
            await connection.recv()
    else:
        async with client.realtime.translations.connect(model="gpt-realtime-translate") as translation:
            await translation.recv()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    await bot_connects(server, engine)

    sdk, bot = handshake(server, 0), handshake(server, 1)
    assert bot == sdk
    assert bot[:3] == ("bearer", scope.get("OPENAI_ORG_ID"), scope.get("OPENAI_PROJECT_ID"))


# --- Azure OpenAI: api-key, or an Entra ID token as Bearer, never both --------------------------------------

AZURE_CASES = {
    "api-key": ({"AZURE_OPENAI_API_KEY": AZURE_KEY}, "api-key"),
    "entra token": ({"AZURE_OPENAI_AD_TOKEN": TOKEN}, "bearer"),
    "both: the token wins": ({"AZURE_OPENAI_API_KEY": AZURE_KEY, "AZURE_OPENAI_AD_TOKEN": TOKEN}, "bearer"),
    "token with org and project": (
        {"AZURE_OPENAI_AD_TOKEN": TOKEN, "OPENAI_ORG_ID": ORG, "OPENAI_PROJECT_ID": PROJECT},
        "bearer",
    ),
}


@pytest.mark.parametrize("case", list(AZURE_CASES))
async def test_azure_handshake_matches_the_sdk(
    server: FakeRealtimeServer, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    env, expected_auth = AZURE_CASES[case]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The SDK's AzureOpenAI client reads AZURE_OPENAI_AD_TOKEN / _API_KEY and OPENAI_ORG_ID /
    # _PROJECT_ID itself. Its URL is Azure's older preview path (deployment=, api-version=); the
    # fake serves the GA path, which wants model=, so that is added: the headers are what is compared.
    client = openai.AsyncAzureOpenAI(
        api_version="2025-04-01-preview",
        azure_endpoint=f"http://127.0.0.1:{server.port}",
        websocket_base_url=f"ws://127.0.0.1:{server.port}/openai/v1",
    )
    async with client.realtime.connect(model="my-rt", extra_query={"model": "my-rt"}) as connection:
        await connection.recv()
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "my-rt")
    await bot_connects(server, "realtime")

    sdk, bot = handshake(server, 0), handshake(server, 1)
    assert bot[:3] == sdk[:3]
    assert bot == (
        expected_auth,
        env.get("OPENAI_ORG_ID"),
        env.get("OPENAI_PROJECT_ID"),
        "/openai/v1/realtime",
    )


def test_empty_organization_and_project_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # What `OPENAI_ORG_ID: ${OPENAI_ORG_ID:-}` in a compose file gives; an empty header names nothing.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "  ")
    headers = endpoint_for(load_settings(), "translate").headers()
    assert headers == {"Authorization": f"Bearer {KEY}"}


def test_azure_needs_a_key_or_a_token() -> None:
    settings = Settings(azure_openai_endpoint="https://res.openai.azure.com")
    with pytest.raises(SettingsError, match="AZURE_OPENAI_API_KEY nor AZURE_OPENAI_AD_TOKEN"):
        endpoint_for(settings, "realtime")
    token_only = settings.model_copy(update={"azure_openai_ad_token": SecretStr(TOKEN)})
    assert endpoint_for(token_only, "realtime").headers() == {"Authorization": f"Bearer {TOKEN}"}
    empty_token = settings.model_copy(
        update={"azure_openai_ad_token": SecretStr(""), "azure_openai_api_key": SecretStr(AZURE_KEY)}
    )
    assert endpoint_for(empty_token, "realtime").headers() == {"api-key": AZURE_KEY}


def test_the_endpoint_repr_shows_the_scope_and_never_the_token() -> None:
    settings = Settings(
        azure_openai_endpoint="https://res.openai.azure.com",
        azure_openai_ad_token=SecretStr(TOKEN),
        openai_org_id=ORG,
    )
    text = repr(endpoint_for(settings, "realtime"))
    assert "AZURE_OPENAI_AD_TOKEN" in text and ORG in text
    assert "entra-token-body" not in text


# --- the fake refuses as the real services do, and the bot names the setting to fix -------------------------


async def test_the_fake_azure_path_wants_a_key_or_a_bearer_token(server: FakeRealtimeServer) -> None:
    url = f"ws://127.0.0.1:{server.port}/openai/v1/realtime?model=my-rt"
    status, body = await handshake_status(url, {})
    assert (status, body["error"]["code"]) == (401, "401") and "type" not in body["error"]
    assert (await handshake_status(url, {"api-key": AZURE_KEY}))[0] == 101
    assert (await handshake_status(url, {"Authorization": f"Bearer {TOKEN}"}))[0] == 101
    assert (await handshake_status(url, {"Authorization": "Basic xyz"}))[0] == 401
    await server.control({"action": "reject_auth"})
    status, body = await handshake_status(url, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 401 and "Access token" in body["error"]["message"]
    assert [record.auth for record in server.state.sessions] == ["api-key", "bearer"]


async def test_the_fake_refuses_an_organization_or_project_the_key_is_not_in(
    server: FakeRealtimeServer,
) -> None:
    url = server.websocket_base_url + "/realtime?model=gpt-realtime"
    bearer = {"Authorization": f"Bearer {KEY}"}
    await server.control({"action": "key_scope", "organization": ORG, "project": PROJECT})
    assert (await handshake_status(url, bearer))[0] == 101  # no header: the key's default
    assert (await handshake_status(url, {**bearer, "OpenAI-Organization": ORG, "OpenAI-Project": PROJECT}))[
        0
    ] == 101
    status, body = await handshake_status(url, {**bearer, "OpenAI-Organization": "org-other"})
    assert (status, body["error"]["code"]) == (401, "mismatched_organization")
    status, body = await handshake_status(url, {**bearer, "OpenAI-Project": "proj_other"})
    assert (status, body["error"]["code"]) == (401, "mismatched_project")


@pytest.mark.parametrize("variable", ["OPENAI_ORG_ID", "OPENAI_PROJECT_ID"])
async def test_a_mismatched_scope_stops_the_bot_naming_the_setting(
    server: FakeRealtimeServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    await server.control({"action": "key_scope", "organization": ORG, "project": PROJECT})
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv(variable, "org-other" if variable == "OPENAI_ORG_ID" else "proj_other")
    with pytest.raises(ProviderFatalError, match=f"{variable} does not name") as info:
        await bot_connects(server, "translate")
    assert KEY not in str(info.value)


async def test_a_refused_entra_token_stops_the_bot_naming_it_without_showing_it(
    server: FakeRealtimeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await server.control({"action": "reject_auth"})
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", TOKEN)
    with pytest.raises(ProviderFatalError, match="Entra ID token in AZURE_OPENAI_AD_TOKEN") as info:
        await bot_connects(server, "realtime")
    assert "entra-token-body" not in str(info.value) + repr(info.value)
