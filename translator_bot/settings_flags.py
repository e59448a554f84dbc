"""Command-line flags that override settings, declared once for every command that takes them.

`join` takes them all; `web` takes the subset it passes on to the interpreters it starts (a bot
started from the page must not inherit, say, the server's own metrics port).
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from pathlib import Path
from typing import Any

from translator_bot.settings import Settings, load_settings

# Settings fields that have a flag, in --help order; `env_file` is where the rest come from.
SETTINGS_FLAGS = (
    "janus_url",
    "engine",
    "output_mode",
    "lanes_open",
    "default_language",
    "display_name",
    "metrics_port",
    "transcript_dir",
    "log_level",
    "log_format",
)


def add_settings_flags(
    parser: argparse.ArgumentParser,
    *,
    only: Collection[str] | None = None,
    title: str = "settings (override TRANSLATOR_* environment variables)",
) -> None:
    """Add `--env-file` and the flags of SETTINGS_FLAGS (or of `only`, a subset of both)."""
    unknown = set(only or ()) - {"env_file", *SETTINGS_FLAGS}
    if unknown:
        raise ValueError(f"no settings flag for {sorted(unknown)}")
    group = parser.add_argument_group(title)

    def add(name: str, flag: str | None = None, **kwargs: Any) -> None:
        if only is None or name in only:
            group.add_argument(flag or f"--{name.replace('_', '-')}", dest=name, **kwargs)

    add("env_file", type=Path, help="read settings from this file instead of ./.env")
    add(
        "janus_url",
        help="Janus WebSocket URL (TRANSLATOR_JANUS_URL; one with a password belongs in the environment: "
        "arguments are visible to every local user)",
    )
    add(
        "engine",
        choices=["translate", "realtime", "passthrough"],
        help="model engine: 'translate' (gpt-realtime-translate, default on OpenAI), 'realtime' "
        "(a conversational model steered to interpret; default on Azure) or 'passthrough' (no model: "
        "plays each utterance back unchanged, to check the room's audio path)",
    )
    add(
        "output_mode",
        "--output",
        choices=["per-listener", "per-language", "mixed"],
        help="one interpreter feed per listener (default), one per target language shared by its "
        "listeners (webinars), or one mixed feed for clients that cannot pick",
    )
    add(
        "lanes_open",
        choices=["auto", "join", "speech"],
        help="when a speaker's model sessions open: 'join' (as soon as they and a listener are in the "
        "room), 'speech' (once the bot hears them speak; their first words are kept; silent listeners "
        "cost nothing) or 'auto' (default: 'speech' with --output per-language, 'join' otherwise)",
    )
    add("default_language", help="language of participants who declare none, e.g. en")
    add("display_name", help="base display name of the bot's feeds")
    add("metrics_port", type=int, help="port for /livez, /readyz (= /healthz) and /metrics (0 turns it off)")
    add("transcript_dir", type=Path, help="where transcripts are written")
    add("log_level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper)
    add("log_format", choices=["text", "json"])


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (None: not given, or not a flag of this command)."""
    return {name: getattr(args, name, None) for name in SETTINGS_FLAGS}


def settings_from_flags(args: argparse.Namespace) -> Settings:
    """Settings from flags (those the command has), the environment, the env file and defaults."""
    return load_settings(flag_overrides(args), env_file=getattr(args, "env_file", None))
