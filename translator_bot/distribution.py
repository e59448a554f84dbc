"""The installed distribution's version, read from its metadata on first use and kept.

Not at import: `importlib.metadata` and the scan of the installed distributions are ~30 ms of a bare
`import translator_bot`. (A process that goes on to build pydantic models pays most of that anyway, as
pydantic imports `importlib.metadata` to look for plugins; what is left for it is the lookup itself.)
"""

from __future__ import annotations

from functools import cache


@cache
def package_version() -> str:
    """`translator-bot`'s version, or `0.0.0+unknown` in a source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError, version  # only when asked

    try:
        return version("translator-bot")
    except PackageNotFoundError:
        return "0.0.0+unknown"
