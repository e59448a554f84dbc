"""`translator-bot web`: serve the meeting page."""

from __future__ import annotations

import argparse

DESCRIPTION = "Serve the meeting page."


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add this command's flags."""


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("translator-bot web is not built yet")
