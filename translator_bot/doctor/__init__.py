"""`translator-bot doctor`: check prerequisites and settings."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Check what `translator-bot join` and `translator-bot demo` need: Python packages, Janus and its
plugins, network namespaces, the bundled recordings, and every setting with where it comes from
(secrets are masked). Each problem comes with one line saying what to install, run or set.

exit codes: 0 everything the chosen command needs is here, 1 something is missing, 2 usage error
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add this command's flags."""
    from translator_bot.settings_flags import add_settings_flags

    parser.add_argument(
        "--for",
        dest="target",
        choices=["join", "demo", "all"],
        default="all",
        help="which command's needs decide the exit code (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print a machine-readable report")
    parser.add_argument(
        "--online",
        action="store_true",
        help="also try the Janus URL (WebSocket + info request) and the model provider's host "
        "(TCP/TLS connect only; the API key is not sent); 3 s timeout each",
    )
    add_settings_flags(parser)


def run(args: argparse.Namespace) -> int:
    from translator_bot.doctor.command import execute

    return execute(args)
