"""What `translator-bot join` imports before it is in the room: the modules its first feed needs, not the
model engines (the `openai` SDK alone is about half a second of CPU), which load in a worker thread."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

# Loaded by MeetingEngines.load() in a worker thread, never on join's start-up path.
ENGINE_ONLY = ("openai", "httpx", "httpx2", "anyio", "translator_bot.engine.protocol")
# Needed by other subcommands only; `join` builds their parsers, so they load when those run.
OTHER_COMMANDS_ONLY = ("shtab",)


def join_imports(tmp_path: Path) -> list[str]:
    """The modules a real `join` imports until it gives up on an unreachable room server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_OPENAI_"))
    }
    env |= {
        "OPENAI_API_KEY": "sk-test-not-used",
        "TRANSLATOR_JANUS_URL": f"ws://127.0.0.1:{closed_port}/",
        "TRANSLATOR_TRANSCRIPT_DIR": str(tmp_path / "transcripts"),
        "TRANSLATOR_METRICS_PORT": "0",
        "TRANSLATOR_ROOM_RECONNECT_SECONDS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "translator_bot", "join", "1234"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 3, (
        f"expected the room error exit 3, got {done.returncode}: {done.stderr[-2000:]}"
    )
    imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", done.stderr, re.M)
    assert "translator_bot.interpreter.meeting" in imported, done.stderr[-3000:]
    return imported


def test_join_starts_without_the_model_engines(tmp_path: Path) -> None:
    imported = join_imports(tmp_path)
    loaded = sorted(
        {
            name
            for name in imported
            for prefix in ENGINE_ONLY
            if name == prefix or name.startswith(prefix + ".")
        }
    )
    assert not loaded, f"join imported on its start-up path: {loaded}"


def test_join_does_not_load_what_only_other_commands_use(tmp_path: Path) -> None:
    imported = set(join_imports(tmp_path))
    loaded = sorted(name for name in OTHER_COMMANDS_ONLY if name in imported)
    assert not loaded, f"join imported for other subcommands: {loaded}"


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_join_modules_do_not_look_up_the_package_version() -> None:
    """The version is read from the installed distribution's metadata only when someone asks:
    `--version`, a metrics scrape, `translator_bot.__version__`."""
    out = run_python(
        "import translator_bot, translator_bot.cli, translator_bot.app, translator_bot.metrics\n"
        "print('__version__' in vars(translator_bot))\n"
        "print(translator_bot.__version__)\n"
        "from translator_bot import __version__\n"
        "print(__version__ == translator_bot.__version__ == translator_bot.metrics.package_version())\n"
    )
    looked_up_at_import, version, consistent = out.split()
    assert looked_up_at_import == "False"
    assert version != "0.0.0+unknown" and version[0].isdigit(), version
    assert consistent == "True"


def test_an_engine_builds_only_the_event_validator_it_uses() -> None:
    """The protocol's four discriminated unions cost ~32 ms of CPU to build; the realtime engine parses
    server events only, the translate engine translation server events only."""
    out = run_python(
        "import pydantic\n"
        "built = []\n"
        "class Counting(pydantic.TypeAdapter):\n"
        "    def __init__(self, *a, **k):\n"
        "        built.append(1)\n"
        "        super().__init__(*a, **k)\n"
        "pydantic.TypeAdapter = Counting\n"
        "from translator_bot.engine import protocol\n"
        "print(len(built))\n"
        'event = \'{"type": "input_audio_buffer.cleared", "event_id": "e1"}\'\n'
        "for _ in range(3):\n"
        "    protocol.parse_server_event(event)\n"
        "print(len(built))\n"
    )
    at_import, after_parsing = out.split()
    assert (at_import, after_parsing) == ("0", "1")
