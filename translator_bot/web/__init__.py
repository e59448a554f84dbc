"""`translator-bot web`: serve the meeting page."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Serve the meeting page: a person opens it in a browser, enters a name, a language and the meeting
ID, and joins the Janus VideoRoom with the microphone. They hear the other participant's original
voice, ducked under the interpreter's translation, and read live captions. "Start interpreter"
launches `translator-bot join <meeting>` on this server with this server's settings and environment
(one per meeting, each with its own metrics port; all are stopped when the server stops), or with
TRANSLATOR_WEB_LAUNCHER=kubernetes creates a Kubernetes Job per meeting from the docker/k8s template
(TRANSLATOR_WEB_K8S_JOB_TEMPLATE, _IMAGE, _NAMESPACE; in-cluster or kubeconfig credentials), which
outlives the server.

Only the page, as served at its --public-url (or on loopback), may start interpreters, at a limited
rate; TRANSLATOR_WEB_TOKEN sets an access code the page asks for, required when listening on an
address other than loopback. Browsers get STUN from TRANSLATOR_ICE_SERVERS and TURN only from
TRANSLATOR_WEB_TURN_URLS with TRANSLATOR_WEB_TURN_SECRET (time-limited credentials, coturn
use-auth-secret) or TRANSLATOR_WEB_TURN_USERNAME/_PASSWORD, never the bot's own TURN account.

The page needs janus.js from the npm registry: run scripts/vendor-janus-js.sh once (install.sh does).
"""

_FORWARDED = ("env_file", "janus_url", "engine", "log_level", "log_format")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add this command's flags."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); any other address needs TRANSLATOR_WEB_TOKEN",
    )
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument(
        "--public-url",
        action="append",
        metavar="URL",
        help="an address browsers open the page at, e.g. https://meet.example.org (repeatable; also "
        "TRANSLATOR_WEB_PUBLIC_URL, comma-separated): only these origins may use the API, plus the "
        "loopback names when listening on loopback",
    )
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
