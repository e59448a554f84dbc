"""`translator-bot web`: serve the meeting page."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Serve the meeting page: a person opens it in a browser, enters a name, a language and the meeting
ID, and joins the Janus VideoRoom with the microphone. They hear the other participant's original
voice, ducked under the interpreter's translation, and read live captions. "Start interpreter"
launches `translator-bot join <meeting>` on this server with this server's settings and environment
(one per meeting; all are stopped when the server stops).

The page needs janus.js from the npm registry: run scripts/vendor-janus-js.sh once (install.sh does).
"""

_FORWARDED = ("env_file", "janus_url", "engine", "log_level", "log_format")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add this command's flags."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument(
        "--public-janus-url",
        help="Janus WebSocket URL for browsers, when it differs from the bot's (TRANSLATOR_WEB_JANUS_URL; "
        "default: the bot's, with a loopback host replaced by the host the page was loaded from)",
    )
    parser.add_argument(
        "--languages",
        help="comma-separated language codes offered on the page (TRANSLATOR_WEB_LANGUAGES; "
        "default: 28 common languages)",
    )
    parser.add_argument(
        "--max-interpreters",
        type=int,
        default=8,
        help="interpreters this server runs at once, one per meeting (default 8)",
    )
    from translator_bot.settings_flags import add_settings_flags

    add_settings_flags(
        parser, only=_FORWARDED, title="settings (also passed to the interpreters this server starts)"
    )


def run(args: argparse.Namespace) -> int:
    from translator_bot.web.app import run_web

    return run_web(args, forwarded=_FORWARDED)
