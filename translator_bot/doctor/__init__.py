"""`translator-bot doctor`: check prerequisites and settings."""

from __future__ import annotations

import argparse

DESCRIPTION = "Check prerequisites and settings."


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add this command's flags."""


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("translator-bot doctor is not built yet")
