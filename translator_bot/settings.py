"""All settings, from (lowest to highest priority) defaults, a `.env` file, the environment, CLI flags.

The provider's own variables keep their standard names (`OPENAI_API_KEY`, `OPENAI_BASE_URL`,
`AZURE_OPENAI_*`) so an existing environment just works; everything that belongs to the bot lives
under `TRANSLATOR_`. Secrets are `SecretStr`: they print as `**********` everywhere. A URL setting
may carry a password (`wss://user:password@host/`): it is masked in repr(), in JSON dumps and in
validation errors, and loading the settings registers it, with every secret, with the process's
redactor (translator_bot.redact), which masks them in everything the process writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from translator_bot.errors import SettingsError
from translator_bot.glossary import load_glossary
from translator_bot.languages import UnknownLanguageError, parse_language
from translator_bot.redact import (
    mask_credentials,
    mask_url,
    redact,
    register_secrets,
    register_settings,
    url_password,
)

EngineName = Literal["translate", "realtime", "passthrough"]
OutputMode = Literal["per-listener", "per-language", "mixed"]
LanesOpen = Literal["auto", "join", "speech"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]
VadType = Literal["server_vad", "semantic_vad"]
Provider = Literal["openai", "azure"]

ENV_PREFIX = "TRANSLATOR_"
# Settings that hold one URL each; a password in their user info is a secret.
URL_FIELDS = ("openai_base_url", "janus_url", "azure_openai_endpoint", "web_janus_url")


def _split_list(value: Any) -> Any:
    """Accept `a,b` or a JSON list for list settings given as one environment variable."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        populate_by_name=True,
    )

    # --- model provider (standard variable names, no prefix) -------------------------------------
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url"),
    )
    azure_openai_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("AZURE_OPENAI_ENDPOINT", "azure_openai_endpoint")
    )
    azure_openai_api_key: SecretStr | None = Field(default=None, validation_alias="AZURE_OPENAI_API_KEY")
    azure_openai_deployment: str | None = Field(
        default=None, validation_alias=AliasChoices("AZURE_OPENAI_DEPLOYMENT", "azure_openai_deployment")
    )
    # Microsoft Entra ID access token for Azure OpenAI, sent as `Authorization: Bearer`; it takes
    # precedence over AZURE_OPENAI_API_KEY, as in the openai SDK's AzureOpenAI client.
    azure_openai_ad_token: SecretStr | None = Field(default=None, validation_alias="AZURE_OPENAI_AD_TOKEN")
    # Not secrets: they say which organization and project a session is billed to, in the
    # `OpenAI-Organization` / `OpenAI-Project` headers, sent only when set (as the openai SDK does).
    openai_org_id: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_ORG_ID", "openai_org_id")
    )
    openai_project_id: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_PROJECT_ID", "openai_project_id")
    )

    # --- room ------------------------------------------------------------------------------------
    janus_url: str = "ws://127.0.0.1:8188/"
    janus_api_secret: SecretStr | None = None
    janus_token: SecretStr | None = None
    janus_admin_key: SecretStr | None = None
    display_name: str = "Interpreter"
    ice_servers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_username: str | None = None
    turn_password: SecretStr | None = None
    # How long a lost connection to the room server is retried before the bot gives up (exit 3).
    room_reconnect_seconds: float = Field(default=120.0, ge=0, le=86400)
    # Leave (exit 0) after the room has held nobody but interpreters this long; 0: never.
    empty_room_seconds: float = Field(default=60.0, ge=0, le=86400)

    # --- interpretation --------------------------------------------------------------------------
    engine: EngineName | None = None  # None: `translate` for OpenAI, `realtime` for Azure
    translate_model: str = "gpt-realtime-translate"
    realtime_model: str = "gpt-realtime"
    transcription_model: str | None = None  # None: the engine's own default (engine/options.py)
    default_language: str = "en"
    voice: str = "marin"
    vad_type: VadType = "server_vad"
    vad_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    vad_prefix_padding_ms: int = Field(default=300, ge=0, le=5000)
    vad_silence_duration_ms: int = Field(default=500, ge=100, le=10000)
    session_max_seconds: float = Field(default=55 * 60, gt=0)
    # A lane keeps reconnecting to an unreachable provider this long before the bot gives up (exit 5).
    provider_outage_seconds: float = Field(default=600, gt=0)
    # Stop sending a lane's input once the model gains nothing from more silence; the first sound
    # resumes it, with the audio just before that sound (engine/silence_gate.py).
    silence_gate: bool = True
    # `passthrough` engine only (diagnostics and latency baseline): echo delay after each utterance.
    passthrough_delay_ms: int = Field(default=0, ge=0, le=10000)
    output_mode: OutputMode = "per-listener"
    # When a speaker's lanes (model sessions) open: `join` as soon as they and a listener of another
    # language are in the room; `speech` once the bot has heard them speak (their first words are kept
    # and given to the lanes), so listeners who never speak cost no model session and take no place
    # under the lane cap; `auto`: `speech` with per-language output (webinars), `join` otherwise.
    lanes_open: LanesOpen = "auto"
    # Model sessions per meeting at most: four people in four languages need 12. Beyond the cap the
    # earliest-joined participants are served first (see interpreter/plan.py).
    max_lanes: int = Field(default=12, ge=1, le=400)
    # TOML file of terms kept as they are and fixed translations per language (see glossary.py);
    # `realtime` engine only. Checked when the settings load, so a bad file stops the bot at once.
    glossary: Path | None = None

    # --- estimated cost (USD; defaults: OpenAI's list prices, see README "Cost per meeting") ------
    price_translate_per_minute: float = Field(default=0.034, ge=0)  # gpt-realtime-translate audio
    price_audio_input_per_million: float = Field(default=32.0, ge=0)  # gpt-realtime tokens from here
    price_audio_cached_per_million: float = Field(default=0.40, ge=0)
    price_audio_output_per_million: float = Field(default=64.0, ge=0)
    price_text_input_per_million: float = Field(default=4.0, ge=0)
    price_text_cached_per_million: float = Field(default=0.40, ge=0)
    price_text_output_per_million: float = Field(default=16.0, ge=0)

    # --- playout ---------------------------------------------------------------------------------
    playout_cushion_ms: int = Field(default=60, ge=0, le=2000)
    playout_hold_ms: int | None = Field(default=None, ge=0, le=2000)  # None: chosen for the engine
    playout_max_lag_ms: int = Field(default=8000, ge=100, le=120000)
    # Opus DTX on the bot's feeds: while a feed has nothing to play it sends a one-byte DTX frame every
    # 400 ms instead of a silence packet every 20 ms (audio/dtx.py). Off: a packet in every 20 ms slot,
    # for a receiver or middlebox that takes a pause in the packets for a lost stream.
    playout_dtx: bool = True

    # --- operations ------------------------------------------------------------------------------
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=9464, ge=0, le=65535)  # 0 turns the HTTP server off
    transcript_dir: Path = Path("transcripts")
    transcript_stdout: bool = False  # also print each transcript line to stdout (log collection)
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"

    # --- meeting page (`translator-bot web`) -----------------------------------------------------
    web_janus_url: str | None = None  # the Janus URL browsers use, when it differs from janus_url
    web_languages: str | None = None  # comma-separated codes offered on the page; None: the built-in list
    web_public_url: str | None = None  # comma-separated URLs browsers open the page at (the allowed origins)
    web_token: SecretStr | None = None  # access code for starting interpreters; required off loopback
    web_turn_urls: str | None = None  # comma-separated turn:/turns: URLs for browsers (never the bot's TURN)
    web_turn_username: str | None = None  # static user, or the user part of time-limited credentials
    web_turn_password: SecretStr | None = None  # static password for browsers
    web_turn_secret: SecretStr | None = None  # coturn static-auth-secret: time-limited credentials
    web_turn_ttl: int = Field(default=3600, ge=60, le=7 * 86400)  # seconds a time-limited credential lasts
    web_launcher: Literal["process", "kubernetes"] = "process"  # how the page's interpreters run
    web_k8s_namespace: str | None = None  # None: the service account's, or the kubeconfig context's
    web_k8s_image: str | None = None  # the Job's image; None: translator-bot:<this version>
    web_k8s_job_template: Path | None = None  # None: docker/k8s/translator-bot-job.yaml beside the package

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _ice_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("ice_servers")
    @classmethod
    def _ice_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if "@" in url:
                # RFC 7065 TURN URIs have no user info; credentials have settings of their own.
                raise ValueError(
                    f"a STUN/TURN URL carries no credentials (got {mask_credentials(url)!r}): "
                    "put them in TRANSLATOR_TURN_USERNAME and TRANSLATOR_TURN_PASSWORD"
                )
            if url.split(":", 1)[0] not in ("stun", "stuns", "turn", "turns") or ":" not in url:
                raise ValueError(
                    f"expected stun:/turn:/turns: URLs such as 'turn:turn.example.org:3478', got {url!r}"
                )
        return value

    @field_validator("openai_org_id", "openai_project_id", "transcription_model", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `OPENAI_ORG_ID=` (what `${OPENAI_ORG_ID:-}` in a compose file gives) means "none": an empty
        # header would name no organization, and an empty model name no model.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("openai_base_url", "janus_url", "azure_openai_endpoint", "web_janus_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        shown = mask_credentials(value)
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        except ValueError:
            raise ValueError(f"not a valid URL: {shown!r}") from None
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise ValueError(f"expected an http(s):// or ws(s):// URL, got {shown!r}")
        return value

    @field_serializer(*URL_FIELDS, when_used="json")
    def _url_without_password(self, value: str | None) -> str | None:
        return None if value is None else mask_url(value)

    def __repr_args__(self) -> Any:
        # repr() and str() show a URL's password as *** (SecretStr already hides the secrets).
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name in URL_FIELDS and isinstance(value, str) else value

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        try:
            return parse_language(value).tag
        except UnknownLanguageError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("glossary")
    @classmethod
    def _glossary_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_glossary(value)  # raises GlossaryError (a ValueError) with the place and the fix
        return value

    @model_validator(mode="after")
    def _engine_fits_provider(self) -> Settings:
        if self.provider == "azure" and self.engine == "translate":
            raise ValueError(
                "TRANSLATOR_ENGINE=translate is not offered by Azure OpenAI; use 'realtime' or unset it"
            )
        return self

    @property
    def provider(self) -> Provider:
        return "azure" if self.azure_openai_endpoint else "openai"

    @property
    def effective_engine(self) -> EngineName:
        if self.engine is not None:
            return self.engine
        return "realtime" if self.provider == "azure" else "translate"

    @property
    def effective_lanes_open(self) -> Literal["join", "speech"]:
        """`auto` resolved: per-language output serves audiences who mostly listen, so their lanes wait
        for speech; per-listener (the default contract) and mixed keep lanes ready from the join, so a
        speaker's first sentence never waits for a model connection."""
        if self.lanes_open != "auto":
            return self.lanes_open
        return "speech" if self.output_mode == "per-language" else "join"

    @property
    def effective_hold_ms(self) -> int:
        """The playout's hold before it has measured the deltas' lateness (then the learnt hold
        replaces it). The translate endpoint streams in real time, one ~200 ms delta per 200 ms: its
        first utterance waits a little after its first delta to absorb the next one's arrival
        jitter. Models that send faster than real time build their own cushion and need no hold."""
        if self.playout_hold_ms is not None:
            return self.playout_hold_ms
        return 80 if self.effective_engine == "translate" else 0

    def secret_values(self) -> list[str]:
        """Every secret setting that is set and every URL setting's password, for redaction."""
        values = (getattr(self, name) for name in type(self).model_fields)
        secrets = [v.get_secret_value() for v in values if isinstance(v, SecretStr) and v.get_secret_value()]
        urls = (getattr(self, name) for name in URL_FIELDS)
        passwords = (url_password(url) for url in urls if isinstance(url, str))
        return secrets + [password for password in passwords if password]

    def require_provider_credentials(self) -> None:
        """The key is needed only to talk to the model, so commands that do not are usable without it."""
        if self.effective_engine == "passthrough":
            return
        if self.provider == "azure":
            if not _is_set(self.azure_openai_ad_token) and not _is_set(self.azure_openai_api_key):
                raise SettingsError(
                    "neither AZURE_OPENAI_API_KEY nor AZURE_OPENAI_AD_TOKEN is set: one is required "
                    "because AZURE_OPENAI_ENDPOINT is set"
                )
            return
        if self.openai_api_key is None or not self.openai_api_key.get_secret_value():
            raise SettingsError(
                "OPENAI_API_KEY is not set: export it or put it in .env "
                "(for the local fake server any value works, e.g. OPENAI_API_KEY=sk-local)"
            )


def _is_set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())


def env_name(field: str) -> str:
    """The environment variable that sets a field, for error messages."""
    info = Settings.model_fields.get(field)
    if info is None:
        return field  # errors on aliased fields are reported under the alias, already an env name
    alias = info.validation_alias
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    return ENV_PREFIX + field.upper()


def load_settings(overrides: dict[str, Any] | None = None, env_file: Path | None = None) -> Settings:
    """Build settings; CLI flags come in as `overrides` (None values mean "flag not given")."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        if env_file is not None:
            if not env_file.is_file():
                raise SettingsError(f"--env-file: no such file: {env_file}")
            settings = Settings(_env_file=env_file, **given)  # type: ignore[call-arg]
        else:
            settings = Settings(**given)
    except ValidationError as exc:
        # The settings never loaded, so their secrets are not registered yet; the error and whatever
        # the process writes after it must still not show them.
        register_secrets(given_secret_values(given, env_file))
        raise SettingsError(describe_validation_error(exc, set(given))) from None
    # From here on nothing this process writes shows them, whichever command loaded them.
    register_settings(settings)
    return settings


def env_names(field: str) -> list[str]:
    """Every environment variable that sets a field."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [ENV_PREFIX + field.upper()]


def given_secret_values(flags: dict[str, Any], env_file: Path | None) -> list[str]:
    """Secret settings and URL passwords as given by flags, the environment and the env file, for
    redaction where the settings are not (or cannot be) loaded."""
    dotenv_path = env_file if env_file is not None else Path(".env")
    sources: list[dict[str, str | None]] = [{k.lower(): v for k, v in os.environ.items()}]
    if dotenv_path.is_file():
        sources.append({k.lower(): v for k, v in dotenv_values(dotenv_path).items()})
    found: list[str | None] = []
    for field, info in Settings.model_fields.items():
        secret = "SecretStr" in str(info.annotation)
        if not secret and field not in URL_FIELDS:
            continue
        values = [source.get(name.lower()) for source in sources for name in env_names(field)]
        values.append(flags.get(field) if isinstance(flags.get(field), str) else None)
        found += [value if secret else url_password(value) for value in values if value]
    return [value for value in found if value]


def describe_validation_error(exc: ValidationError, from_flags: set[str]) -> str:
    """One line naming the setting and what it expects; never echoes a secret's value or a URL's
    password (the invalid value may be the one setting the process has not registered)."""
    err = exc.errors(include_url=False)[0]
    loc = [str(part) for part in err.get("loc", ()) if not isinstance(part, int)]
    field = loc[0] if loc else ""
    name = env_name(field) if field else "settings"
    if field in from_flags:
        name = f"--{field.replace('_', '-')}"
    message = str(err.get("msg", "invalid value"))
    message = redact(message.removeprefix("Value error, "))
    field_info = Settings.model_fields.get(field) or _field_by_alias(field)
    secret = field_info is not None and "SecretStr" in str(field_info.annotation)
    got = err.get("input")
    if secret or got is None or isinstance(got, dict):
        return f"{name}: {message}"
    shown = redact(repr(_masked_input(got)))
    if shown in message:
        return f"{name}: {message}"
    return f"{name}: {message} (got {shown})"


def _masked_input(value: Any) -> Any:
    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, (list, tuple)):
        return [_masked_input(item) for item in value]
    return value


def _field_by_alias(alias: str) -> Any:
    for info in Settings.model_fields.values():
        choices = info.validation_alias
        names = choices.choices if isinstance(choices, AliasChoices) else [choices]
        if alias in names:
            return info
    return None
