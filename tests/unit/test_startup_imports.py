"""What `translator-bot join` imports before it is in the room: the modules its first feed needs, not the
model engines, which load in a worker thread. And what a model engine imports at all: never the `openai`
SDK (its package `__init__` alone is ~20 MiB and ~0.5 s of CPU), which only the fake server and the tests
use as the protocol's reference."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Loaded by MeetingEngines.load() in a worker thread, never on join's start-up path.
ENGINE_ONLY = ("translator_bot.engine.wire", "translator_bot.engine.supervisor")
# The SDK and what its client pulls in: the fake server's and the tests' reference, never the bot's.
SDK_ONLY = ("openai", "httpx", "httpx2", "anyio", "translator_bot.engine.protocol")
# Needed by other subcommands only; `join` builds their parsers, so they load when those run. And
# langcodes: the languages of a room that names them plainly ("en", "es-MX") are parsed without it.
OTHER_COMMANDS_ONLY = ("shtab", "langcodes", "language_data")


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
            for prefix in ENGINE_ONLY + SDK_ONLY
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


def test_the_fake_builds_only_the_event_validator_it_uses() -> None:
    """The protocol's four SDK discriminated unions cost ~32 ms of CPU to build; each is built when
    first used (the fake server validates client events only)."""
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


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    """The fake realtime server in its own process (it imports the SDK: the bot's process must not)."""
    fake = subprocess.Popen(
        [sys.executable, "-m", "translator_bot", "fake-realtime", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert fake.stdout is not None
        for line in fake.stdout:
            if "OPENAI_BASE_URL=" in line:
                yield line.strip().split("OPENAI_BASE_URL=", 1)[1]
                break
        else:
            pytest.fail(f"the fake realtime server did not start (exit {fake.wait(timeout=10)})")
    finally:
        fake.terminate()
        fake.wait(timeout=10)


# A lane's session through the meeting's own loader: engine loaded, one sentence spoken at 4x real time,
# its translation (and, on `realtime`, the response's usage) received, the session closed.
SESSION = """
import asyncio, sys
from pydantic import SecretStr
from translator_bot.engine.base import LaneSpec, TranslatedAudio, TranslationDone, Usage
from translator_bot.engine.factory import MeetingEngines
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.languages import parse_language
from translator_bot.settings import Settings

async def main(engine: str, base_url: str) -> None:
    key = SecretStr("sk-test-fake-0123456789")
    settings = Settings(openai_api_key=key, openai_base_url=base_url, engine=engine)
    engines = MeetingEngines(settings)
    await engines.load()
    session = engines.create(LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es")))
    pcm = bytes(300 * 48) + read_pcm(utterance("u2-en")).astype("<i2").tobytes() + bytes(4000 * 48)
    async def speak() -> None:
        for start in range(0, len(pcm), 960):
            session.send_audio(pcm[start : start + 960])
            await asyncio.sleep(0.005)
    await session.start()
    speaker = asyncio.create_task(speak())
    audio = done = usage = 0
    try:
        async with asyncio.timeout(60):
            async for event in session.events():
                audio += isinstance(event, TranslatedAudio)
                done += isinstance(event, TranslationDone)
                usage += isinstance(event, Usage)
                if audio and done and (usage or engine != "realtime"):
                    break
    finally:
        speaker.cancel()
        await asyncio.gather(speaker, return_exceptions=True)
        await session.aclose()
    print(audio, done, usage)
    sdk = [name for name in sys.modules if name.split(".")[0] in ("openai", "httpx", "anyio")]
    print(" ".join(sorted({name.split(".")[0] for name in sdk})), len(sdk))
    print(" ".join(sorted(name for name in sys.modules if name.startswith("translator_bot.engine."))))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("engine", ["realtime", "translate"])
def test_a_model_engine_session_never_imports_the_sdk(fake_url: str, engine: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_"))}
    done = subprocess.run(
        [sys.executable, "-c", SESSION, engine, fake_url],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts, sdk, engine_modules = [*done.stdout.splitlines(), "", "", ""][:3]
    audio, items, usage = map(int, counts.split())
    assert audio > 0 and items > 0, "no translation came back: the session did not run"
    assert usage > 0 or engine == "translate"
    assert f"translator_bot.engine.{engine}" in engine_modules.split()
    assert sdk == " 0", f"a {engine} session imported (packages, modules): {sdk}"
    assert "translator_bot.engine.protocol" not in engine_modules.split()
