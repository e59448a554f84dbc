"""`translator-bot demo`: run a whole interpreted meeting on this machine."""

from __future__ import annotations

import argparse

DESCRIPTION = "Run a whole interpreted meeting on this machine."


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add this command's flags."""


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("translator-bot demo is not built yet")
