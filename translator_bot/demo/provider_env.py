"""The model provider's settings for the demo, read the way `join` reads them.

`join` takes its settings from the environment, then `./.env` (or `--env-file`); so does the demo
for what decides where the model runs: the provider's credentials and addresses, the organization and
project, and the model names. The rest of a `.env` (the Janus URL, ports, the transcript directory)
describes the operator's own deployment, which the demo replaces with its local one, so it is not
taken. Names match case-insensitively, as pydantic-settings matches them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from translator_bot.settings import env_names

# Settings that say which model provider the bot talks to, as whom, and with which models.
PROVIDER_FIELDS = (
    "openai_api_key",
    "openai_base_url",
    "openai_org_id",
    "openai_project_id",
    "azure_openai_endpoint",
    "azure_openai_api_key",
    "azure_openai_ad_token",
    "azure_openai_deployment",
    "translate_model",
    "realtime_model",
    "transcription_model",
)
# Each setting under its first (documented) name; the others it answers to map onto it.
PROVIDER_VARIABLES = {
    name.lower(): env_names(field)[0] for field in PROVIDER_FIELDS for name in env_names(field)
}


class EnvFileError(ValueError):
    """`--env-file` names no file."""


@dataclass(frozen=True)
class ProviderEnvironment:
    values: dict[str, str]  # every provider variable that is set, from either source (upper-case names)
    from_file: dict[str, str]  # those set only in the file: the bot's process must be given them

    def get(self, name: str) -> str | None:
        return self.values.get(name) or None  # an empty value is not a setting

    @property
    def has_credentials(self) -> bool:
        if self.get("AZURE_OPENAI_ENDPOINT"):
            return bool(self.get("AZURE_OPENAI_API_KEY") or self.get("AZURE_OPENAI_AD_TOKEN"))
        return bool(self.get("OPENAI_API_KEY"))

    @property
    def on_azure(self) -> bool:
        return bool(self.get("AZURE_OPENAI_ENDPOINT"))


def _pick(source: Mapping[str, str | None]) -> dict[str, str]:
    picked: dict[str, str] = {}
    for key, value in source.items():
        name = PROVIDER_VARIABLES.get(key.lower())
        if name is not None and value is not None:
            picked[name] = value
    return picked


def read_provider_environment(env_file: Path | None, environ: Mapping[str, str]) -> ProviderEnvironment:
    """The provider variables from `environ`, then from `env_file` (default ./.env, if present)."""
    path = env_file if env_file is not None else Path(".env")
    if env_file is not None and not env_file.is_file():
        raise EnvFileError(f"--env-file: no such file: {env_file}")
    in_file = _pick(dotenv_values(path)) if path.is_file() else {}
    in_env = _pick(environ)
    only_file = {name: value for name, value in in_file.items() if name not in in_env}
    return ProviderEnvironment({**only_file, **in_env}, only_file)
