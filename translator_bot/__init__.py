"""translator-bot: a live interpreter for WebRTC meetings."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("translator-bot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
