"""The settings `join` would use, where each value comes from, and whether the provider can be used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import SecretStr

from translator_bot.addresses import is_loopback_host
from translator_bot.doctor.model import JOIN, Check, SettingRow
from translator_bot.engine.endpoint import ORGANIZATION_HEADER, PROJECT_HEADER, azure_credential
from translator_bot.engine.options import EngineOptions
from translator_bot.errors import SettingsError
from translator_bot.redact import mask_secret, mask_url, url_password
from translator_bot.settings import URL_FIELDS, Settings, env_name, env_names, load_settings

SECTION = "Settings"
DEFAULT_ENV_FILE = Path(".env")


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings | None
    error: str | None
    rows: list[SettingRow]
    env_file: Path | None  # the file that was read, if any
    secrets: list[str]  # every secret value seen in any source, for the output's redaction


def is_secret(field: str) -> bool:
    return "SecretStr" in str(Settings.model_fields[field].annotation)


def _lookup(field: str, values: Mapping[str, str | None]) -> str | None:
    # Settings match environment names case-insensitively, so the lookups do too.
    for name in env_names(field):
        value = values.get(name.lower())
        if value is not None:
            return value
    return None


def _lowered(values: Mapping[str, str | None]) -> dict[str, str | None]:
    return {key.lower(): value for key, value in values.items()}


def _display(value: Any, secret: bool) -> str:
    if secret:
        return mask_secret(value.get_secret_value() if isinstance(value, SecretStr) else value)
    if value is None:
        return "(not set)"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    text = str(value)
    return mask_url(text) if "://" in text else text


def read_settings(
    flags: Mapping[str, Any], env_file: Path | None, environ: Mapping[str, str]
) -> LoadedSettings:
    """Load settings as `join` does and describe each one; an invalid value is reported, not raised."""
    given = {name: value for name, value in flags.items() if value is not None}
    dotenv_path = env_file if env_file is not None else DEFAULT_ENV_FILE
    read_file = dotenv_path if dotenv_path.is_file() else None
    dotenv = _lowered(dotenv_values(read_file)) if read_file is not None else {}
    env = _lowered(environ)
    file_label = str(dotenv_path) if env_file is not None else ".env"

    settings: Settings | None = None
    error: str | None = None
    try:
        settings = load_settings(dict(given), env_file=env_file)
    except SettingsError as exc:
        error = str(exc)

    rows: list[SettingRow] = []
    secrets: list[str] = []
    for field, info in Settings.model_fields.items():
        secret = is_secret(field)
        from_env, from_file = _lookup(field, env), _lookup(field, dotenv)
        raw: Any
        if field in given:
            source, raw = "flag", given[field]
        elif from_env is not None:
            source, raw = "env", from_env
        elif from_file is not None:
            source, raw = file_label, from_file
        else:
            source, raw = "default", info.get_default(call_default_factory=True)
        seen = [v for v in (from_env, from_file, given.get(field)) if isinstance(v, str)]
        if secret:
            secrets.extend(seen)
        elif field in URL_FIELDS:
            secrets.extend(p for p in map(url_password, seen) if p)
        value = getattr(settings, field) if settings is not None else raw
        rows.append(SettingRow(env_name(field), _display(value, secret), source, secret))
    if settings is not None:
        for field in Settings.model_fields:
            value = getattr(settings, field)
            if isinstance(value, SecretStr):
                secrets.append(value.get_secret_value())
    return LoadedSettings(settings, error, rows, read_file, secrets)


def validity_check(loaded: LoadedSettings) -> Check:
    if loaded.error is not None:
        return Check(
            SECTION,
            "settings",
            "invalid",
            loaded.error,
            "correct that value where it is set (flag, environment or .env; .env.example explains each)",
            JOIN,
        )
    where = f"read {loaded.env_file}" if loaded.env_file is not None else "no .env file"
    return Check(SECTION, "settings", "ok", f"valid ({where})", needed_for=JOIN)


def is_local(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def _model_name(settings: Settings) -> str:
    engine = settings.effective_engine
    if engine == "passthrough":
        return "no model"
    if settings.provider == "azure":
        deployment = settings.azure_openai_deployment or settings.realtime_model
        return f"deployment {deployment}, transcription {_transcription(settings)}"
    model = settings.translate_model if engine == "translate" else settings.realtime_model
    return f"{model}, transcription {_transcription(settings)}"


def _transcription(settings: Settings) -> str:
    options = EngineOptions(transcription_model=settings.transcription_model)
    chosen = options.transcription_for(settings.effective_engine)
    return chosen if settings.transcription_model is not None else f"{chosen} (the engine's default)"


def provider_check(settings: Settings) -> Check:
    engine = settings.effective_engine
    provider = "Azure OpenAI" if settings.provider == "azure" else "OpenAI"
    chosen = "" if settings.engine is not None else f", default for {provider}"
    engine_text = f"engine {engine} ({_model_name(settings)}{chosen})"
    if settings.provider == "azure":
        endpoint = mask_url(settings.azure_openai_endpoint or "")
        if settings.azure_openai_deployment is None and engine != "passthrough":
            return Check(
                SECTION,
                "provider",
                "warn",
                f"Azure OpenAI at {endpoint}; {engine_text}: AZURE_OPENAI_DEPLOYMENT is not set, so the "
                f"deployment is assumed to be named {settings.realtime_model}",
                "set AZURE_OPENAI_DEPLOYMENT to the name of your realtime model's deployment",
                JOIN,
            )
        return Check(SECTION, "provider", "ok", f"Azure OpenAI at {endpoint}; {engine_text}", needed_for=JOIN)
    base = mask_url(settings.openai_base_url)
    where = (
        f"local server at {base} (e.g. translator-bot fake-realtime)"
        if is_local(base)
        else f"OpenAI at {base}"
    )
    return Check(SECTION, "provider", "ok", f"{where}; {engine_text}", needed_for=JOIN)


def credentials_check(settings: Settings) -> Check:
    if settings.effective_engine == "passthrough":
        return Check(SECTION, "credentials", "ok", "not needed: engine passthrough uses no model", None, JOIN)
    azure = settings.provider == "azure"
    name = "AZURE_OPENAI_API_KEY" if azure else "OPENAI_API_KEY"
    try:
        settings.require_provider_credentials()
    except SettingsError:
        fix = (
            "export AZURE_OPENAI_API_KEY=<key of the Azure OpenAI resource> (or AZURE_OPENAI_AD_TOKEN="
            "<Microsoft Entra ID token>) or set it in .env"
            if azure
            else "export OPENAI_API_KEY=sk-... or set it in .env (any value works with the local fake server)"
        )
        return Check(SECTION, "credentials", "missing", f"{name} is not set", fix, JOIN)
    if azure:
        header, secret, used = azure_credential(settings)
        detail = f"{used} {mask_secret(secret.get_secret_value())}, sent as {header}"
        if used == "AZURE_OPENAI_AD_TOKEN" and settings.azure_openai_api_key is not None:
            detail += " (AZURE_OPENAI_API_KEY is set too and not used: the token wins, as in the openai SDK)"
    else:
        key = settings.openai_api_key
        detail = f"{name} {mask_secret(key.get_secret_value() if key is not None else None)}"
    return Check(SECTION, "credentials", "ok", detail + _scope_text(settings), needed_for=JOIN)


def _scope_text(settings: Settings) -> str:
    """The organization and project headers sent with the key (not secrets: shown in full)."""
    scope = [
        f"{header} {value}"
        for header, value in (
            (ORGANIZATION_HEADER, settings.openai_org_id),
            (PROJECT_HEADER, settings.openai_project_id),
        )
        if value is not None
    ]
    return "; with " + ", ".join(scope) if scope else ""


def janus_url_check(settings: Settings, source: str) -> Check:
    url = mask_url(settings.janus_url)
    if source == "default":
        return Check(
            SECTION,
            "janus url",
            "warn",
            f"{url} is the default: join needs the WebSocket URL of the Janus that hosts the meeting",
            "set TRANSLATOR_JANUS_URL=wss://janus.example.org:8989/ (or pass --janus-url)",
            JOIN,
        )
    return Check(SECTION, "janus url", "ok", f"{url} (from {source})", needed_for=JOIN)


def turn_check(settings: Settings) -> Check | None:
    turn = [url for url in settings.ice_servers if url.startswith(("turn:", "turns:"))]
    if not turn:
        return None
    if settings.turn_username and settings.turn_password is not None:
        return Check(SECTION, "turn", "ok", f"{len(turn)} TURN server(s) with credentials", needed_for=JOIN)
    return Check(
        SECTION,
        "turn",
        "warn",
        f"{len(turn)} TURN server(s) in TRANSLATOR_ICE_SERVERS but no username or password",
        "set TRANSLATOR_TURN_USERNAME and TRANSLATOR_TURN_PASSWORD",
        JOIN,
    )


def settings_checks(loaded: LoadedSettings) -> list[Check]:
    checks = [validity_check(loaded)]
    settings = loaded.settings
    if settings is None:
        return checks
    source = next((row.source for row in loaded.rows if row.name == env_name("janus_url")), "default")
    checks += [provider_check(settings), credentials_check(settings), janus_url_check(settings, source)]
    turn = turn_check(settings)
    return [*checks, turn] if turn is not None else checks
