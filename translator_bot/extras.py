"""The optional `demo` extra: what `fake-realtime`, `demo` and the test bench need beyond the bot.

The fake's recogniser matches speech with librosa (which brings numba, llvmlite and scikit-learn)
and scipy; the test bench resamples with soxr. The production bot (`join`) never loads them, so a
plain `pip install translator-bot` leaves them out, and the commands that need them say so first
instead of failing later with an ImportError from deep inside.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec

from translator_bot.errors import ExitCode, TranslatorBotError

DEMO_EXTRA = "demo"
# The import names of [project.optional-dependencies].demo in pyproject.toml (a test keeps them in step).
DEMO_MODULES = ("librosa", "scipy", "soxr")
INSTALL_DEMO = "pip install 'translator-bot[demo]' (or: bash scripts/install.sh)"


class MissingExtraError(TranslatorBotError):
    """A command needs packages of an optional extra that is not installed."""

    exit_code = ExitCode.USAGE


def _find(name: str) -> ModuleSpec | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a broken parent package, or a module set to None
        return None


def missing_modules(
    modules: Sequence[str] = DEMO_MODULES, find: Callable[[str], ModuleSpec | None] = _find
) -> list[str]:
    """The modules that cannot be found, without importing any of them (librosa takes seconds)."""
    return [name for name in modules if find(name) is None]


def require_demo_extra(command: str) -> None:
    missing = missing_modules()
    if missing:
        raise MissingExtraError(
            f"`translator-bot {command}` needs the '{DEMO_EXTRA}' extra ({', '.join(missing)} "
            f"not installed): {INSTALL_DEMO}"
        )
