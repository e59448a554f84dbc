"""Where a model session connects and how it authenticates, derived from settings.

The URL follows the openai SDK's rule (scheme http->ws, https->wss, then `/realtime...` appended
to the base URL), so `OPENAI_BASE_URL=http://127.0.0.1:8765/v1` reaches a local fake server.

The headers are the ones the openai SDK (3.x) sends on its realtime WebSockets, read in its source:
- OpenAI: `Authorization: Bearer <OPENAI_API_KEY>`.
- Azure OpenAI (`AzureOpenAI` client): `Authorization: Bearer <AZURE_OPENAI_AD_TOKEN>` when a
  Microsoft Entra ID token is set, which then takes precedence over the key; otherwise
  `api-key: <AZURE_OPENAI_API_KEY>`. Exactly one of the two is sent, never both.
- On both: `OpenAI-Organization: <OPENAI_ORG_ID>` and `OpenAI-Project: <OPENAI_PROJECT_ID>`, each only
  when set (the SDK's clients, AzureOpenAI included, read them from the environment and put them in
  the default headers that every request and WebSocket handshake carries).
One difference: the SDK sends an empty header for a variable set to an empty string; here an empty
value counts as unset (settings.py), since an empty organization names none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from translator_bot.redact import mask_url
from translator_bot.settings import EngineName, Settings

_WS_SCHEME = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}

ORGANIZATION_HEADER = "OpenAI-Organization"
PROJECT_HEADER = "OpenAI-Project"

# Which setting holds the credential that is sent: named in messages when the provider refuses it.
CredentialName = Literal["OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN"]


@dataclass(frozen=True)
class Endpoint:
    url: str
    model: str
    auth_header: str  # header name that carries the secret
    secret: SecretStr = field(repr=False)
    provider: str = "openai"
    credential: CredentialName = "OPENAI_API_KEY"
    organization: str | None = None  # OpenAI-Organization; not a secret
    project: str | None = None  # OpenAI-Project; not a secret

    def __repr__(self) -> str:
        # The URL may carry a password from the base URL setting; the secret is never shown.
        return (
            f"Endpoint(url={mask_url(self.url)!r}, model={self.model!r}, "
            f"auth_header={self.auth_header!r}, provider={self.provider!r}, "
            f"credential={self.credential!r}, organization={self.organization!r}, "
            f"project={self.project!r})"
        )

    def headers(self) -> dict[str, str]:
        value = self.secret.get_secret_value()
        if self.auth_header == "Authorization":
            value = f"Bearer {value}"
        headers = {self.auth_header: value}
        if self.organization is not None:
            headers[ORGANIZATION_HEADER] = self.organization
        if self.project is not None:
            headers[PROJECT_HEADER] = self.project
        return headers


def websocket_url(base_url: str, path: str, query: dict[str, str]) -> str:
    parts = urlsplit(base_url)
    scheme = _WS_SCHEME.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"expected an http(s) or ws(s) base URL, got {mask_url(base_url)!r}")
    joined = parts.path.rstrip("/") + path
    return urlunsplit((scheme, parts.netloc, joined, urlencode(query), ""))


def azure_credential(settings: Settings) -> tuple[str, SecretStr, CredentialName]:
    """(header, secret, setting) for Azure: the Entra ID token if set, else the resource key."""
    token = settings.azure_openai_ad_token
    if token is not None and token.get_secret_value():
        return "Authorization", token, "AZURE_OPENAI_AD_TOKEN"
    assert settings.azure_openai_api_key is not None  # require_provider_credentials checked one is set
    return "api-key", settings.azure_openai_api_key, "AZURE_OPENAI_API_KEY"


def endpoint_for(settings: Settings, engine: EngineName) -> Endpoint:
    settings.require_provider_credentials()
    organization, project = settings.openai_org_id, settings.openai_project_id
    if settings.provider == "azure":
        # Azure's GA protocol lives at <resource>/openai/v1/realtime?model=<deployment>.
        assert settings.azure_openai_endpoint is not None
        deployment = settings.azure_openai_deployment or settings.realtime_model
        base = settings.azure_openai_endpoint.rstrip("/")
        if base.endswith("/openai"):
            base += "/v1"
        elif not base.endswith("/openai/v1"):
            base += "/openai/v1"
        header, secret, credential = azure_credential(settings)
        return Endpoint(
            url=websocket_url(base, "/realtime", {"model": deployment}),
            model=deployment,
            auth_header=header,
            secret=secret,
            provider="azure",
            credential=credential,
            organization=organization,
            project=project,
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
        organization=organization,
        project=project,
    )
