"""`translator-bot completion SHELL`: a tab-completion script generated from the CLI's own parser.

shtab writes a static script from the argparse definitions, so completion costs no Python start-up
per TAB press (unlike argcomplete's hook) and cannot drift from the real options.
"""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh", "fish", "tcsh")
DESCRIPTION = """\
Print a shell completion script for translator-bot. Install it, for example:
  translator-bot completion bash > ~/.local/share/bash-completion/completions/translator-bot
  translator-bot completion zsh > "${fpath[1]}/_translator-bot"
  translator-bot completion fish > ~/.config/fish/completions/translator-bot.fish
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS)


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for `parser` (the CLI's whole parser, passed in by the CLI)."""
    import shtab  # here, not at import: every start builds this command's parser

    return str(shtab.complete(parser, shell=shell))
