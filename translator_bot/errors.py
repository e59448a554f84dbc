"""Typed errors and the process exit codes they map to.

Every failure a user can act on is one of these, so the CLI can print a single clear line and exit
with a code that scripts and orchestrators can branch on.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    ROOM = 3
    PROVIDER = 4
    PROVIDER_UNAVAILABLE = 5
    # Ctrl-C (128 + SIGINT): the command was interrupted before it finished (not `join`: a clean leave).
    INTERRUPTED = 130


class TranslatorBotError(Exception):
    """Base class: the message is shown to the user as is, so it must never contain a secret."""

    exit_code: ExitCode = ExitCode.FAILURE


class SettingsError(TranslatorBotError):
    """A setting is missing or has a value the bot cannot use."""

    exit_code = ExitCode.USAGE


class RoomError(TranslatorBotError):
    """The meeting room cannot be joined: it does not exist, refuses the bot, or the room server is gone."""

    exit_code = ExitCode.ROOM


class ProviderError(TranslatorBotError):
    """The model provider ended the interpretation (the subclass says whether a retry can help)."""


class ProviderFatalError(ProviderError):
    """The model provider refused us for a reason that retrying cannot fix (bad key, no quota)."""

    exit_code = ExitCode.PROVIDER


class ProviderUnavailableError(ProviderError):
    """The model provider could not be reached for longer than the outage limit: worth a retry later."""

    exit_code = ExitCode.PROVIDER_UNAVAILABLE
