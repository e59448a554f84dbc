"""How the doctor looks at this machine. Checks receive a `Probe`, so tests can describe any machine."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import translator_bot
from translator_bot.extras import missing_modules
from translator_bot.system.janus_install import find_lib_dir

_PACKAGE_DIR = Path(translator_bot.__file__).resolve().parent

# Runs in a child interpreter: entering a namespace changes the process for good, so the doctor's
# own process never tries it.
_NAMESPACE_SCRIPT = """\
import sys
from translator_bot.system.netns import NamespaceError, enter_private_network
try:
    enter_private_network()
except NamespaceError as exc:
    print(exc)
    sys.exit(1)
"""


@dataclass(frozen=True)
class Probe:
    python_version: tuple[int, int, int]
    python_executable: str
    bot_version: str
    package_dir: Path
    which: Callable[[str], str | None]
    is_file: Callable[[Path], bool]
    # First line of `argv`'s output, or None when it cannot run.
    command_output: Callable[[Sequence[str]], str | None]
    # The Janus library folder holding the VideoRoom plugin, or None.
    janus_lib_dir: Callable[[], Path | None]
    # Imports the module and returns its distribution's version; raises when it cannot be imported.
    package_version: Callable[[str], str]
    # None when a private network namespace can be made, else why not.
    private_network_error: Callable[[], str | None]
    # Which of these modules cannot be found (without importing them).
    missing_modules: Callable[[Sequence[str]], list[str]]
    # The bundled recordings' folder and the language of each; raises when they are missing or malformed.
    recordings: Callable[[], tuple[Path, list[str]]]


def _command_output(argv: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


def _package_version(module: str) -> str:
    importlib.import_module(module)
    return importlib.metadata.version(module)


def _private_network_error() -> str | None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _NAMESPACE_SCRIPT],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the check could not run: {exc}"
    if done.returncode == 0:
        return None
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return lines[-1] if lines else f"the check exited with code {done.returncode}"


def _recordings() -> tuple[Path, list[str]]:
    from translator_bot.fixtures import fixtures_dir, load_manifest

    directory = fixtures_dir()
    return directory, [utterance.language for utterance in load_manifest(directory)]


def _is_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def system_probe() -> Probe:
    """This machine, as it is."""
    major, minor, micro = sys.version_info[:3]
    return Probe(
        python_version=(major, minor, micro),
        python_executable=sys.executable,
        bot_version=translator_bot.__version__,
        package_dir=_PACKAGE_DIR,
        which=shutil.which,
        is_file=_is_file,
        command_output=_command_output,
        janus_lib_dir=find_lib_dir,
        package_version=_package_version,
        missing_modules=missing_modules,
        private_network_error=_private_network_error,
        recordings=_recordings,
    )
