"""Where the Debian (or a hand-built) Janus keeps its plugins and transports."""

from __future__ import annotations

from pathlib import Path

LIB_DIRS = (
    "/usr/lib/x86_64-linux-gnu/janus",
    "/usr/lib/aarch64-linux-gnu/janus",
    "/usr/lib/janus",
    "/opt/janus/lib/janus",
)


def find_lib_dir() -> Path | None:
    """The Janus library folder holding the VideoRoom plugin, or None when no known folder has it."""
    for candidate in LIB_DIRS:
        if (Path(candidate) / "plugins" / "libjanus_videoroom.so").exists():
            return Path(candidate)
    return None
