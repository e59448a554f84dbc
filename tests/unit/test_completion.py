"""`translator-bot completion SHELL`: the printed script loads in its shell and completes the real
subcommands and flags (bash is driven the way it completes a TAB press)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def completion(shell: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "translator_bot", "completion", shell],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def bash_complete(script: str, *words: str) -> list[str]:
    """What bash offers for the last of `words`, via the function the script registers."""
    line = " ".join(words)
    program = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
        'COMP_POINT=${#COMP_LINE}; _shtab_translator_bot; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.split() if word]


def test_bash_completes_subcommands_and_their_flags() -> None:
    script = completion("bash")
    assert "complete -o bashdefault -F _shtab_translator_bot translator-bot" in script
    assert bash_complete(script, "translator-bot", "he") == ["healthcheck"]
    assert {"demo", "doctor"} <= set(bash_complete(script, "translator-bot", "d"))
    assert bash_complete(script, "translator-bot", "join", "--metrics-p") == ["--metrics-port"]
    assert bash_complete(script, "translator-bot", "completion", "z") == ["zsh"]


@pytest.mark.parametrize("shell", ["zsh", "fish", "tcsh"])
def test_other_shells_get_a_script_naming_every_subcommand(shell: str) -> None:
    # These shells are not installed here, so the scripts are not run (bash's is, above).
    script = completion(shell)
    for command in ("join", "fake-realtime", "demo", "doctor", "web", "healthcheck", "completion"):
        assert command in script, f"{shell} completion lacks {command}"
