"""Where sessions connect and how they authenticate, for OpenAI, a local base URL and Azure OpenAI."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from translator_bot.engine.endpoint import endpoint_for, websocket_url
from translator_bot.errors import SettingsError
from translator_bot.settings import Settings

KEY = "sk-secret-abcdef123456"


def test_openai_default_urls_and_bearer() -> None:
    s = Settings(openai_api_key=SecretStr(KEY))
    translate = endpoint_for(s, "translate")
    realtime = endpoint_for(s, "realtime")
    assert translate.url == "wss://api.openai.com/v1/realtime/translations?model=gpt-realtime-translate"
    assert realtime.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert realtime.headers() == {"Authorization": f"Bearer {KEY}"}
    assert "OpenAI-Beta" not in realtime.headers()
    assert KEY not in repr(realtime)


def test_local_base_url_keeps_scheme_and_path() -> None:
    s = Settings(openai_api_key=SecretStr(KEY), openai_base_url="http://127.0.0.1:8765/v1/")
    assert endpoint_for(s, "realtime").url == "ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime"
    s = Settings(
        openai_api_key=SecretStr(KEY), openai_base_url="https://proxy.example/openai/v1", realtime_model="m x"
    )
    assert endpoint_for(s, "realtime").url == "wss://proxy.example/openai/v1/realtime?model=m+x"


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://res.openai.azure.com",
        "https://res.openai.azure.com/",
        "https://res.openai.azure.com/openai",
        "https://res.openai.azure.com/openai/v1/",
    ],
)
def test_azure_ga_url_and_api_key_header(endpoint: str) -> None:
    s = Settings(
        azure_openai_endpoint=endpoint, azure_openai_api_key=SecretStr(KEY), azure_openai_deployment="my-rt"
    )
    ep = endpoint_for(s, s.effective_engine)
    assert s.effective_engine == "realtime"
    assert ep.url == "wss://res.openai.azure.com/openai/v1/realtime?model=my-rt"
    assert ep.headers() == {"api-key": KEY} and ep.provider == "azure"


def test_azure_without_deployment_uses_the_realtime_model() -> None:
    s = Settings(azure_openai_endpoint="https://r.openai.azure.com", azure_openai_api_key=SecretStr(KEY))
    assert endpoint_for(s, "realtime").url.endswith("/openai/v1/realtime?model=gpt-realtime")


def test_missing_key_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="OPENAI_API_KEY"):
        endpoint_for(Settings(openai_api_key=None), "translate")


def test_bad_scheme() -> None:
    with pytest.raises(ValueError, match="base URL"):
        websocket_url("ftp://x/v1", "/realtime", {})
