"""Whether the fake accepts a WebSocket handshake, judged on its headers as the real services do.

OpenAI (`/v1/...`) takes the key only as `Authorization: Bearer`. Azure OpenAI (`/openai/v1/...`)
takes either its resource key in `api-key` or a Microsoft Entra ID token as `Authorization: Bearer`;
with neither it refuses with its own error body (shaped differently from OpenAI's: `code` is the
status as a string, and there is no `type`).

`OpenAI-Organization` / `OpenAI-Project` are optional: without them the key's default applies. A
header naming an organization the key does not belong to is refused with 401
`mismatched_organization` (the body below is the one the real service sends, as quoted in public bug
reports); the project's refusal is modelled on it (`mismatched_project`). The fake learns which
organization and project "the key" belongs to from its `key_scope` control; unset, it accepts any.

The fake records which credential header arrived and the organization and project, never a
credential's value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from translator_bot.fake.state import FaultConfig

_OPENAI_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
# The real message echoes a masked key; the fake never echoes any part of it.
_OPENAI_BAD_KEY = (
    "Incorrect API key provided: sk-****. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)
_AZURE_BAD_KEY = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)
_AZURE_BAD_TOKEN = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired."
)


@dataclass(frozen=True)
class Caller:
    """What the handshake said about who calls: safe to record and to show."""

    auth: str  # "bearer", "api-key", "bearer+api-key" or "none"
    organization: str | None
    project: str | None


def _bearer(headers: Mapping[str, str]) -> str:
    authorization = headers.get("Authorization", "")
    return authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""


def caller(headers: Mapping[str, str]) -> Caller:
    sent = (("bearer", _bearer(headers)), ("api-key", headers.get("api-key")))
    kinds = [name for name, value in sent if value]
    return Caller(
        auth="+".join(kinds) or "none",
        organization=headers.get("OpenAI-Organization"),
        project=headers.get("OpenAI-Project"),
    )


def openai_error(
    status: int, message: str, type_: str, code: str | None, param: str | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _azure_error(status: int, message: str) -> web.Response:
    body = {"error": {"code": str(status), "message": message}}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def auth_refusal(azure: bool, headers: Mapping[str, str], faults: FaultConfig) -> web.Response | None:
    """The 401 the service answers for these credentials, or None when it accepts them."""
    who = caller(headers)
    if azure:
        if who.auth == "none":
            return _azure_error(401, _AZURE_BAD_KEY)
        if faults.reject_auth:
            return _azure_error(401, _AZURE_BAD_TOKEN if "bearer" in who.auth else _AZURE_BAD_KEY)
    else:
        if "bearer" not in who.auth:
            return openai_error(401, _OPENAI_NO_KEY, "invalid_request_error", None)
        if faults.reject_auth:
            return openai_error(401, _OPENAI_BAD_KEY, "invalid_request_error", "invalid_api_key")
    return scope_refusal(who, faults)


def scope_refusal(who: Caller, faults: FaultConfig) -> web.Response | None:
    if who.organization is not None and faults.key_organization not in (None, who.organization):
        return openai_error(
            401,
            "OpenAI-Organization header should match organization for API key",
            "invalid_request_error",
            "mismatched_organization",
        )
    if who.project is not None and faults.key_project not in (None, who.project):
        return openai_error(
            401,
            "OpenAI-Project header should match project for API key",
            "invalid_request_error",
            "mismatched_project",
        )
    return None
