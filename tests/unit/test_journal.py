"""The transcript journal against the real kernel: lines durable before the meeting ends, a disk that
fills up in the middle of a line (a tiny tmpfs in a private mount namespace), a device that is full
(/dev/full), a directory that cannot exist, and a disk that hangs (a FIFO nobody reads), during
which the event loop must keep its pace."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from translator_bot.interpreter.journal import TranscriptJournal, encode_line


def record(n: int, text: str = "") -> dict[str, object]:
    return {"lane": "a->es", "item_id": f"t{n}", "translation": text or f"frase {n}"}


async def wait_for(predicate: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_each_line_is_on_disk_before_the_meeting_ends(tmp_path: Path) -> None:
    journal = TranscriptJournal(tmp_path / "t" / "m.jsonl")
    assert not (tmp_path / "t").exists()  # nothing said, nothing written
    journal.append(record(1))
    journal.append(record(2, "¿qué tal? 👋"))
    await wait_for(lambda: journal.status.lines_written == 2)
    # Read while the journal is still open, as after a SIGKILL: both lines whole.
    lines = (tmp_path / "t" / "m.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["item_id"] for line in lines] == ["t1", "t2"]
    assert json.loads(lines[1])["translation"] == "¿qué tal? 👋"
    status = await journal.aclose(tmp_path / "t" / "m.txt", "Meeting m\n")
    assert status.lines_written == 2 and status.lines_failed == 0 and status.text_written
    assert (tmp_path / "t" / "m.txt").read_text() == "Meeting m\n"
    assert [p.name for p in (tmp_path / "t").iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_lone_surrogates_become_replacement_characters_and_pairs_are_joined() -> None:
    line = encode_line({"translation": "Hola \ud83d", "pair": "\ud83d\udc4b"})
    assert json.loads(line) == {"translation": "Hola \ufffd", "pair": "👋"}


async def test_stdout_gets_the_same_lines_marked_with_the_meeting(tmp_path: Path) -> None:
    out = io.BytesIO()
    journal = TranscriptJournal(tmp_path / "m.jsonl", stdout=out, stdout_fields={"transcript": "1234"})
    journal.append(record(1))
    await journal.aclose()
    file_line = json.loads((tmp_path / "m.jsonl").read_text())
    assert json.loads(out.getvalue()) == {"transcript": "1234", **file_line}


async def test_a_full_device_is_logged_with_its_cause_and_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = TranscriptJournal(Path("/dev/full"))
    with caplog.at_level(logging.ERROR):
        journal.append(record(1))
        journal.append(record(2))
        status = await journal.aclose()
    assert status.lines_written == 0 and status.lines_failed == 2
    assert status.error is not None and "No space left on device" in status.error
    errors = [r.getMessage() for r in caplog.records if "cannot write the transcript" in r.getMessage()]
    assert len(errors) == 1 and "No space left on device" in errors[0], errors  # once, not per line


async def test_a_directory_that_cannot_exist_is_reported_for_lines_and_text(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    journal = TranscriptJournal(blocker / "transcripts" / "m.jsonl")
    journal.append(record(1))
    status = await journal.aclose(blocker / "transcripts" / "m.txt", "text")
    assert status.lines_failed == 1 and not status.text_written
    assert status.error is not None and "Not a directory" in status.error


async def test_a_hung_disk_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """The writer thread is stuck in open() of a FIFO nobody reads (as on a hung network disk):
    appending stays immediate, the loop keeps its 10 ms ticks, the queue stays bounded, and closing
    gives up after its budget instead of holding the exit."""
    fifo = tmp_path / "hung.jsonl"
    os.mkfifo(fifo)
    journal = TranscriptJournal(fifo, max_lines=50)
    late: list[float] = []

    async def ticker() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            late.append(time.monotonic() - before - 0.01)

    ticks = asyncio.create_task(ticker())
    try:
        journal.append(record(0))
        await asyncio.sleep(0.2)  # the thread takes it and gets stuck in open()
        started = time.monotonic()
        for n in range(1, 201):
            journal.append(record(n, "x" * 500))
            await asyncio.sleep(0)
        appending = time.monotonic() - started
        await asyncio.sleep(0.2)
        queued = journal._queue.qsize()
        closing = time.monotonic()
        status = await journal.aclose()
        closing = time.monotonic() - closing
        written, failed = status.lines_written, status.lines_failed  # before the thread is let go
    finally:
        ticks.cancel()
        # Let the stuck thread go: a reader on the FIFO releases its open(); it then ends.
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        await asyncio.sleep(0.2)
        os.close(reader)
    # Blocking on the FIFO would be forever: generous bounds still tell the two apart on a busy machine.
    assert appending < 0.5, appending
    assert max(late) < 0.5, max(late)
    assert 0.9 < closing < 3.0, closing
    # The queue kept its bound: 50 lines wait, the other 150 were refused (and counted).
    assert queued == 50 and written == 0 and failed == 150, (queued, failed)


_DISK_FULL_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, subprocess, sys
    from pathlib import Path
    from translator_bot.interpreter.journal import TranscriptJournal

    mount = Path(sys.argv[1])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], check=True)
    filler = mount / "filler"
    filler.write_bytes(b"\\0" * 9000)  # 3 of the 4 pages: lines of 1500 bytes fill the last one mid-line

    async def main():
        journal = TranscriptJournal(mount / "m.jsonl")
        for n in range(6):
            journal.append({"item_id": f"t{n}", "translation": "x" * 1500})
            await asyncio.sleep(0.05)
        full = (mount / "m.jsonl").read_bytes()
        status_full = (journal.status.lines_written, journal.status.error)
        filler.unlink()  # the operator frees space: the next line brings the failed ones with it
        journal.append({"item_id": "t6", "translation": "after"})
        status = await journal.aclose(mount / "m.txt", "text")
        print(json.dumps({
            "while_full": full.decode(), "written_while_full": status_full[0], "error": status_full[1],
            "final": (mount / "m.jsonl").read_text(), "lines_failed": status.lines_failed,
            "text": (mount / "m.txt").read_text(),
        }))

    asyncio.run(main())
    """
)


def test_a_disk_that_fills_up_mid_line_leaves_only_whole_lines_and_loses_nothing(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            sys.executable,
            "-c",
            _DISK_FULL_SCRIPT,
            str(mount),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=60,
    )
    assert result.returncode == 0, f"cannot run the disk-full case (needs root and unshare):\n{result.stderr}"
    out = json.loads(result.stdout)
    assert "No space left on device" in out["error"]
    while_full = out["while_full"]
    assert while_full.endswith("\n") and 0 < out["written_while_full"] < 6, out["written_while_full"]
    assert [json.loads(line)["item_id"] for line in while_full.splitlines()] == [
        f"t{n}" for n in range(out["written_while_full"])
    ]
    assert [json.loads(line)["item_id"] for line in out["final"].splitlines()] == [f"t{n}" for n in range(7)]
    assert out["lines_failed"] == 0 and out["text"] == "text"
