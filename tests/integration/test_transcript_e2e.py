"""The meeting's transcript when the bot process dies or the disk fails, every part real: Janus in the
private network namespace, `translator-bot join` as a process, the fake model server, and two aiortc
participants speaking recorded fixtures.

What counts as "completed" is what a listener received: the final caption of a translation (it is
sent when the translation's text is final, right where the transcript records it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import utterance
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.rig import InterpreterRig, RigPerson

pytestmark = [pytest.mark.janus, pytest.mark.timeout(240)]

SETTLE_S = 6.0  # turn detection + translation + playout after a speaker stops (see test_interpreter_e2e)


async def settle(rig: InterpreterRig) -> None:
    await rig.quiet()
    await asyncio.sleep(SETTLE_S)


def final_captions(person: RigPerson) -> list[dict[str, Any]]:
    assert person.listening is not None
    captions = [json.loads(text) for _, text in person.listening.messages]
    return [c for c in captions if c.get("type") == "caption" and c["final"]]


def jsonl_lines(directory: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The one JSONL in `directory`, every line whole and parsed (a partial line fails the test)."""
    files = sorted(directory.glob("meeting-*.jsonl"))
    assert len(files) == 1, sorted(p.name for p in directory.iterdir()) if directory.exists() else directory
    raw = files[0].read_bytes()
    assert raw.endswith(b"\n"), raw[-200:]
    return files[0], [json.loads(line) for line in raw.decode("utf-8").splitlines()]


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_sigkill_loses_no_completed_utterance(janus: JanusServer, tmp_path: Path, engine: str) -> None:
    transcripts = tmp_path / "transcripts"
    rig = InterpreterRig(
        janus,
        engine,
        transcripts,
        fake_options=FakeOptions(heartbeat_ms=1000),
        env={"TRANSLATOR_TRANSCRIPT_STDOUT": "true"},
        capture_stdout=True,
    )
    try:
        await rig.start([("Alice", "en"), ("Beatriz", "es")])
        assert rig.bot is not None
        rig.say("Alice", "u1-en")
        await settle(rig)
        rig.say("Beatriz", "u3-es")
        await settle(rig)
        rig.say("Alice", "u4-en")
        await settle(rig)
        heard = final_captions(rig.people["Alice"]) + final_captions(rig.people["Beatriz"])
        # The OOM killer's way: no signal handler, no shutdown, no chance to write anything more.
        rig.bot.proc.kill()
        assert await rig.bot.wait(10) == -9
    finally:
        await rig.aclose()

    assert {c["translation"].strip() for c in heard} >= {
        utterance(u).text for u in ("u1-es", "u3-en", "u4-es")
    }, heard
    path, entries = jsonl_lines(transcripts)
    recorded = {(e["lane"], e["item_id"]): e for e in entries}
    for caption in heard:
        entry = recorded.get((caption["lane"], caption["item"]))
        assert entry is not None, (caption, entries)
        assert entry["translation"] == caption["translation"].strip() and entry["translation_final"]
        assert entry["original"] == caption["original"].strip() or entry["original_final"], entry
    assert {e["original"] for e in entries} >= {utterance(u).text for u in ("u1-en", "u3-es", "u4-en")}
    assert not path.with_suffix(".txt").exists()  # rendered only when the bot leaves
    # The same lines went to stdout, marked with the meeting they belong to.
    assert rig.bot is not None
    printed = [json.loads(line) for line in rig.bot.stdout_lines]
    assert [{k: v for k, v in p.items() if k != "transcript"} for p in printed] == entries
    assert {p["transcript"] for p in printed} == {str(janus.room)}


async def test_any_text_the_model_sends_is_written(janus: JanusServer, tmp_path: Path) -> None:
    """A translation that ends in half a surrogate pair: the line holds U+FFFD and the leave is clean."""
    transcripts = tmp_path / "transcripts"
    rig = InterpreterRig(janus, "realtime", transcripts, fake_options=FakeOptions(heartbeat_ms=1000))
    try:
        await rig.start([("Alice", "en"), ("Beatriz", "es")])
        assert rig.fake is not None and rig.bot is not None
        await rig.fake.control({"action": "transcript_suffix", "value": "\ud83d"})
        rig.say("Alice", "u1-en")
        await settle(rig)
        code = await rig.stop_bot()
        assert code == 0, rig.bot.text[-3000:]
    finally:
        await rig.aclose()
    path, entries = jsonl_lines(transcripts)
    assert [e["translation"] for e in entries] == [utterance("u1-es").text + "\ufffd"]
    assert "\ufffd" in path.with_suffix(".txt").read_text(encoding="utf-8")


async def test_transcript_that_cannot_be_written_never_crashes_a_clean_leave(
    janus: JanusServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the transcript directory should be\n")
    rig = InterpreterRig(
        janus, "realtime", blocker / "transcripts", fake_options=FakeOptions(heartbeat_ms=1000)
    )
    try:
        await rig.start([("Alice", "en"), ("Beatriz", "es")])
        assert rig.bot is not None
        rig.say("Alice", "u1-en")
        await settle(rig)
        assert final_captions(rig.people["Beatriz"]), "nothing was interpreted"
        # The error is reported as it happens, with its cause, and the meeting goes on.
        line = await rig.bot.wait_line(r"cannot write the transcript to .*: Not a directory", 10)
        assert "not-a-directory" in line
        rig.say("Beatriz", "u3-es")
        await settle(rig)
        assert final_captions(rig.people["Alice"]), "interpretation stopped after the write error"
        assert await rig.stop_bot() == 0, rig.bot.text[-3000:]
    finally:
        await rig.aclose()
    assert "transcript incomplete" in rig.bot.text and "Not a directory" in rig.bot.text
    assert "Traceback" not in rig.bot.text
