"""`translator-bot web`: settings -> page configuration + interpreter launcher -> HTTP server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence

from translator_bot import __version__
from translator_bot.errors import ExitCode, SettingsError
from translator_bot.languages import UnknownLanguageError
from translator_bot.logs import configure_logging_for
from translator_bot.settings import URL_FIELDS, Settings, env_name
from translator_bot.settings_flags import settings_from_flags
from translator_bot.web.access import AccessConfigError, AccessPolicy
from translator_bot.web.config import WebConfig, parse_language_list
from translator_bot.web.launcher import Launcher
from translator_bot.web.process_launcher import BotLauncher, default_command
from translator_bot.web.server import VENDOR_DIR, VENDOR_FILES, create_app, serve

log = logging.getLogger(__name__)


def run_web(args: argparse.Namespace, *, forwarded: Sequence[str]) -> int:
    settings = settings_from_flags(args)
    configure_logging_for(settings)
    try:
        languages = parse_language_list(args.languages) if args.languages else None
        config = WebConfig.from_settings(
            settings, public_janus_url=args.public_janus_url, languages=languages
        )
    except UnknownLanguageError as exc:
        raise SettingsError(f"--languages / TRANSLATOR_WEB_LANGUAGES: {exc}") from None
    except ValueError as exc:
        turn = "TURN" in str(exc)
        setting = "TRANSLATOR_WEB_TURN_*" if turn else "--public-janus-url / TRANSLATOR_WEB_JANUS_URL"
        raise SettingsError(f"{setting}: {exc}") from None
    if args.max_interpreters < 1:
        raise SettingsError("--max-interpreters: must be at least 1")
    access = access_policy(args, settings)
    missing = [name for name in VENDOR_FILES if not (VENDOR_DIR / name).is_file()]
    if missing:
        log.warning(
            "%s missing from %s: the page cannot join until scripts/vendor-janus-js.sh is run",
            " and ".join(missing),
            VENDOR_DIR,
        )
    launcher = make_launcher(args, settings, forwarded)
    try:
        asyncio.run(serve(create_app(config, launcher, access=access), args.host, args.port))
    except OSError as exc:
        log.error("cannot serve on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


def make_launcher(args: argparse.Namespace, settings: Settings, forwarded: Sequence[str]) -> Launcher:
    """TRANSLATOR_WEB_LAUNCHER: local processes (default) or Kubernetes Jobs."""
    if settings.web_launcher == "kubernetes":
        if given := [name for name in forwarded if getattr(args, name, None) is not None]:
            log.warning(
                "%s: not passed to interpreter Jobs, whose settings come from the ConfigMap and Secret "
                "their template names",
                ", ".join(f"--{name.replace('_', '-')}" for name in given),
            )
        return kubernetes_launcher(settings, max_running=args.max_interpreters)
    return BotLauncher(
        # The launcher sets the bots' log format and level itself: it reads their records.
        default_command(bot_flags(args, [name for name in forwarded if not name.startswith("log_")])),
        bot_environment(args, forwarded),
        max_running=args.max_interpreters,
    )


def kubernetes_launcher(settings: Settings, *, max_running: int) -> Launcher:
    """Jobs rendered from TRANSLATOR_WEB_K8S_JOB_TEMPLATE; their settings come from the ConfigMap and
    Secret the template names, not from this server's flags or environment."""
    try:
        from translator_bot.web.kube_job import TemplateError, default_template_path, load_template
        from translator_bot.web.kube_launcher import KubeApiError, KubernetesLauncher, api_client
    except ImportError as exc:
        raise SettingsError(
            f"TRANSLATOR_WEB_LAUNCHER=kubernetes needs the kubernetes extra "
            f"(pip install 'translator-bot[kubernetes]'): {exc}"
        ) from None
    try:
        template = load_template(settings.web_k8s_job_template or default_template_path())
    except TemplateError as exc:
        raise SettingsError(f"TRANSLATOR_WEB_K8S_JOB_TEMPLATE: {exc}") from None
    try:
        api, namespace = api_client()
    except KubeApiError as exc:
        raise SettingsError(f"TRANSLATOR_WEB_LAUNCHER=kubernetes: {exc}") from None
    return KubernetesLauncher(
        api,
        namespace=settings.web_k8s_namespace or namespace,
        image=settings.web_k8s_image or f"translator-bot:{__version__}",
        template=template,
        max_running=max_running,
    )


def access_policy(args: argparse.Namespace, settings: Settings) -> AccessPolicy:
    """Who may use this server: its --public-url origins (plus loopback when it listens there), and
    TRANSLATOR_WEB_TOKEN, which a server listening on another address must have."""
    urls = [*(args.public_url or []), *_split(settings.web_public_url)]
    token = settings.web_token.get_secret_value() if settings.web_token is not None else None
    try:
        return AccessPolicy.for_server(args.host, args.port, urls, token)
    except AccessConfigError as exc:
        raise SettingsError(f"--host / --public-url / TRANSLATOR_WEB_PUBLIC_URL: {exc}") from None


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def bot_flags(args: argparse.Namespace, forwarded: Sequence[str]) -> list[str]:
    """The settings flags this server was given, passed on to `translator-bot join`; those that can
    carry a secret (a URL's password) go by environment instead (see bot_environment): any local
    user can read a process's arguments."""
    flags: list[str] = []
    for name in forwarded:
        value = getattr(args, name, None)
        if value is None or name in URL_FIELDS:
            continue
        if name == "env_file":
            value = os.path.abspath(value)
        flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags


def bot_environment(args: argparse.Namespace | None = None, forwarded: Sequence[str] = ()) -> dict[str, str]:
    """This server's environment, without the bot's ops port: each bot would bind the same one, so
    the second would fail to start. Interpreters started from the page report through this server.
    The page's own settings (access token, browsers' TURN secret) are not the bot's business. URL
    settings given to this server as flags are set here; in the child the environment beats the env
    file, as the flag did here."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRANSLATOR_WEB_")}
    env["TRANSLATOR_METRICS_PORT"] = "0"
    for name in forwarded:
        value = getattr(args, name, None)
        if value is not None and name in URL_FIELDS:
            env[env_name(name)] = str(value)
    return env
