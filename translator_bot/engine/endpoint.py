"""Where a model session connects and how it authenticates, derived from settings.

The URL follows the openai SDK's rule (scheme http->ws, https->wss, then `/realtime...` appended
to the base URL), so `OPENAI_BASE_URL=http://127.0.0.1:8765/v1` reaches a local fake server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from translator_bot.redact import mask_url
from translator_bot.settings import EngineName, Settings

_WS_SCHEME = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


@dataclass(frozen=True)
class Endpoint:
    url: str
    model: str
    auth_header: str  # header name that carries the secret
    secret: SecretStr = field(repr=False)
    provider: str = "openai"

    def __repr__(self) -> str:
        # The URL may carry a password from the base URL setting; the secret is never shown.
        return (
            f"Endpoint(url={mask_url(self.url)!r}, model={self.model!r}, "
            f"auth_header={self.auth_header!r}, provider={self.provider!r})"
        )

    def headers(self) -> dict[str, str]:
        value = self.secret.get_secret_value()
        if self.auth_header == "Authorization":
            value = f"Bearer {value}"
        return {self.auth_header: value}


def websocket_url(base_url: str, path: str, query: dict[str, str]) -> str:
    parts = urlsplit(base_url)
    scheme = _WS_SCHEME.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"expected an http(s) or ws(s) base URL, got {mask_url(base_url)!r}")
    joined = parts.path.rstrip("/") + path
    return urlunsplit((scheme, parts.netloc, joined, urlencode(query), ""))


def endpoint_for(settings: Settings, engine: EngineName) -> Endpoint:
    settings.require_provider_credentials()
    if settings.provider == "azure":
        # Azure's GA protocol lives at <resource>/openai/v1/realtime?model=<deployment>, key in `api-key`.
        assert settings.azure_openai_endpoint is not None and settings.azure_openai_api_key is not None
        deployment = settings.azure_openai_deployment or settings.realtime_model
        base = settings.azure_openai_endpoint.rstrip("/")
        if base.endswith("/openai"):
            base += "/v1"
        elif not base.endswith("/openai/v1"):
            base += "/openai/v1"
        return Endpoint(
            url=websocket_url(base, "/realtime", {"model": deployment}),
            model=deployment,
            auth_header="api-key",
            secret=settings.azure_openai_api_key,
            provider="azure",
        )
    assert settings.openai_api_key is not None
    if engine == "translate":
        model, path = settings.translate_model, "/realtime/translations"
    else:
        model, path = settings.realtime_model, "/realtime"
    return Endpoint(
        url=websocket_url(settings.openai_base_url, path, {"model": model}),
        model=model,
        auth_header="Authorization",
        secret=settings.openai_api_key,
    )
