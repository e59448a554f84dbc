"""`translator-bot demo` run the way the README tells a newcomer to run it: a child process in an
empty directory, checked by its exit code and by what it leaves in ./demo-output."""

from __future__ import annotations

import asyncio
import json
import os
import wave
from pathlib import Path

import pytest

from translator_bot.demo.plot import INSTALL_HINT
from translator_bot.system.netns import PrivateNetwork
from translator_bot.testbed.bot import BOT

pytestmark = [pytest.mark.janus, pytest.mark.timeout(300)]


def _environ(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "TRANSLATOR_"))
    }
    env.update(extra)
    return env


async def _demo(cwd: Path, *args: str, env: dict[str, str], timeout_s: float = 240) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(BOT),
        "demo",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (48_000, 1, 2)
        return wav.getnframes() / wav.getframerate()


async def test_demo_delivers_every_utterance_and_leaves_its_outputs(
    private_network: PrivateNetwork, tmp_path: Path
) -> None:
    code, out, err = await _demo(tmp_path, env=_environ())
    assert code == 0, f"demo exited {code}\n{out}\n{err}"

    # Progress as it happened: who spoke, who heard what in which language, how late.
    assert '[1] Ana (English) says: "Good morning' in out
    assert 'Beatriz hears (Spanish): "Buenos días' in out
    assert "[4] Beatriz (Spanish) says:" in out
    assert "OK: 4/4 utterances delivered" in out

    output = tmp_path / "demo-output"
    summary = json.loads((output / "summary.json").read_text(encoding="utf-8"))
    assert (summary["result"], summary["delivered"], summary["turns"]) == ("ok", 4, 4)
    assert (summary["engine"], summary["provider"], summary["network"]) == ("translate", "fake", "private")
    assert summary["bot_exit_code"] == 0
    heard = [(u["listener"], u["expected"], u["heard"]) for u in summary["utterances"]]
    assert heard == [
        ("Beatriz", "u1-es", "u1-es"),
        ("Ana", "u2-en", "u2-en"),
        ("Beatriz", "u3-es", "u3-es"),
        ("Ana", "u4-en", "u4-en"),
    ]
    assert all(0 < u["latency_ms"] < 5000 and u["leaked_ms"] <= 100 for u in summary["utterances"])
    assert "4/4 utterances delivered" in (output / "summary.txt").read_text(encoding="utf-8")

    # What each person heard, long enough to hold two translated sentences.
    for name in ("Ana", "Beatriz"):
        assert _wav_seconds(output / f"{name}-heard.wav") > 10

    transcripts = sorted(output.glob("meeting-1234-*.jsonl"))
    assert len(transcripts) == 1 and summary["transcripts"] == sorted(
        p.name for p in output.glob("meeting-*")
    )
    entries = [json.loads(line) for line in transcripts[0].read_text(encoding="utf-8").splitlines()]
    assert len(entries) == 4
    bot_log = (output / "bot.log").read_text(encoding="utf-8")
    assert "joined meeting 1234" in bot_log

    # The cost, as the bot estimated it: 2 lanes streaming the whole meeting to the translate endpoint.
    cost = summary["estimated_cost_usd"]
    assert cost is not None and 0 < cost["total"] < 1 and len(cost["lanes"]) == 2, cost
    assert "estimated model cost at the configured prices: $" in out
    assert "estimated cost of meeting 1234: $" in bot_log
    assert "Estimated model cost: $" in next(output.glob("meeting-1234-*.txt")).read_text(encoding="utf-8")
    # The timeline picture (the plots extra is installed with the demo) and its data.
    assert (output / "timeline.png").stat().st_size > 20_000
    timeline = json.loads((output / "timeline.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in timeline["people"]] == ["Ana", "Beatriz"]
    assert [t["first_audio"] is not None for t in timeline["translations"]] == [True] * 4

    # A second run replaces the first one's results instead of piling up transcripts.
    code, out, err = await _demo(tmp_path, "--turns", "1", "--languages", "de,en", env=_environ())
    assert code == 0, f"second demo exited {code}\n{out}\n{err}"
    assert len(list(output.glob("meeting-*.jsonl"))) == 1
    again = json.loads((output / "summary.json").read_text(encoding="utf-8"))
    assert [(u["speaker"], u["heard"]) for u in again["utterances"]] == [("Dieter", "u1-en")]


async def test_demo_fails_when_translations_do_not_arrive(
    private_network: PrivateNetwork, tmp_path: Path
) -> None:
    # A model endpoint that refuses connections: the meeting forms, nothing is translated.
    env = _environ(OPENAI_API_KEY="sk-demo-test-0000", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    args = ("--model", "openai", "--network", "private", "--turns", "1", "--turn-timeout", "4")
    code, out, err = await _demo(tmp_path, *args, env=env, timeout_s=120)
    assert code == 1, f"demo exited {code}\n{out}\n{err}"
    assert "FAILED: 0/1 utterances delivered" in out
    # The console alone says why (CI keeps nothing else): the bot's warnings about the model.
    evidence = out[out.index("from bot.log (") :]
    assert "first audio from participant" in evidence and "WARNING" in evidence, out
    summary = json.loads((tmp_path / "demo-output" / "summary.json").read_text(encoding="utf-8"))
    assert summary["result"] == "failed" and summary["utterances"][0]["delivered"] is False
    assert "sk-demo-test-0000" not in out + err
    assert "sk-demo-test-0000" not in (tmp_path / "demo-output" / "bot.log").read_text(encoding="utf-8")


async def test_missing_janus_is_one_clear_line(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    code, out, err = await _demo(tmp_path, env=_environ(PATH=str(empty_bin)), timeout_s=60)
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "translator-bot demo: Janus is not installed: "
        "run `sudo apt-get install janus` (or `bash scripts/install.sh`)"
    ]
    assert not (tmp_path / "demo-output").exists()


async def test_unknown_language_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = await _demo(tmp_path, "--languages", "en,fr", env=_environ(), timeout_s=60)
    assert code == 2
    assert "no recordings in 'fr'; the demo can speak de, en, es" in err


async def test_without_the_plots_extra_the_demo_says_so_and_succeeds(
    private_network: PrivateNetwork, tmp_path: Path
) -> None:
    # A `matplotlib` that cannot be imported, first on the path: as if the extra were not installed.
    hidden = tmp_path / "no-plots" / "matplotlib"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("not installed")\n')
    path = os.pathsep.join(p for p in (str(hidden.parent), os.environ.get("PYTHONPATH", "")) if p)
    code, out, err = await _demo(tmp_path, "--turns", "1", env=_environ(PYTHONPATH=path))
    assert code == 0, f"demo exited {code}\n{out}\n{err}"
    notes = [line for line in out.splitlines() if "timeline picture" in line]
    assert notes == ["no timeline picture: matplotlib is not installed: " + INSTALL_HINT], out
    output = tmp_path / "demo-output"
    assert (output / "timeline.json").exists() and not (output / "timeline.png").exists()
