"""The fake model server in its own process, as the benchmarks run it: it serves real sessions, its
state and controls work over HTTP, and it never outlives the harness, however the harness ends."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from translator_bot.fake.probe import ProbeClient
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.testbed.fake_process import FakeProcess, running_fake, state_from_snapshot

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """Whether `pid` still exists and is not a zombie of ours."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


async def gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_serves_a_translation_session_and_reports_it_then_stops_cleanly() -> None:
    fake = FakeProcess()
    await fake.start()
    try:
        assert fake.pid is not None and fake.pid != os.getpid() and alive(fake.pid)
        ws_base = fake.base_url.replace("http://", "ws://")
        url = ws_base + "/realtime/translations?model=gpt-realtime-translate"
        async with await ProbeClient.connect(url) as client:
            await client.until("session.created")
            spanish = {"audio": {"output": {"language": "es"}}}
            await client.send({"type": "session.update", "session": spanish})
            await client.until("session.updated")
            silence = np.zeros(24 * 400, np.int16)
            await client.append(np.concatenate([silence, read_pcm(utterance("u1-en")), silence, silence]))
            await client.send({"type": "session.close"})
            events = await client.until("session.closed", wait=30)
        sent = b"".join(base64.b64decode(e.delta) for e in events if e.type == "session.output_audio.delta")
        assert sent == read_pcm(utterance("u1-es")).tobytes()
        state = await fake.read_state()
        assert state.internal_errors == []
        [record] = state.sessions
        assert (record.endpoint, record.target_language) == ("translations", "es")
        assert record.recognised == ["u1-en"]
        assert record.close_reason == "session.close" and not record.live
        assert record.output_late_ms >= 0 and record.first_audio_at, "the benches read these"
        assert (await fake.control({"action": "first_audio_delay_ms", "value": 5}))["ok"] is True
    finally:
        code = await fake.stop()
    assert code == 0, f"SIGTERM is a clean stop:\n{fake.log_text}"
    assert not alive(fake.pid)


async def test_a_control_the_fake_refuses_raises_with_its_reason() -> None:
    async with FakeProcess() as fake:
        with pytest.raises(RuntimeError, match="unknown action"):
            await fake.control({"action": "no-such-fault"})


async def test_an_exception_in_the_harness_leaves_no_process_behind() -> None:
    pid = None
    with pytest.raises(ZeroDivisionError):
        async with running_fake("process") as fake:
            assert isinstance(fake, FakeProcess)
            pid = fake.pid
            1 / 0  # noqa: B018 - the bench's own code failing mid-run
    assert pid is not None and not alive(pid)


async def test_a_cancelled_harness_leaves_no_process_behind() -> None:
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def bench() -> None:
        async with running_fake("process") as fake:
            assert isinstance(fake, FakeProcess) and fake.pid is not None
            started.set_result(fake.pid)
            await asyncio.sleep(3600)

    task = asyncio.create_task(bench())
    pid = await asyncio.wait_for(started, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(pid)


async def test_a_harness_killed_outright_takes_its_fake_along() -> None:
    """SIGKILL leaves no `finally` to run: the fake must still go (PR_SET_PDEATHSIG)."""
    script = (
        "import asyncio\n"
        "from translator_bot.testbed.fake_process import FakeProcess\n"
        "async def main():\n"
        "    fake = FakeProcess()\n"
        "    await fake.start()\n"
        "    print(fake.pid, flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    harness = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert harness.stdout is not None
        pid = int(await asyncio.wait_for(harness.stdout.readline(), 30))
        assert alive(pid)
        harness.send_signal(signal.SIGKILL)
        await asyncio.wait_for(harness.wait(), 10)
        assert await gone(pid, 10), f"the fake {pid} outlived its killed harness"
    finally:
        if harness.returncode is None:
            harness.kill()
        await harness.wait()


async def test_a_fake_that_exits_before_it_is_ready_is_reported_with_its_log() -> None:
    fake = FakeProcess()
    original = asyncio.create_subprocess_exec

    async def with_bad_port(*command: str, **kwargs: object) -> asyncio.subprocess.Process:
        # Not a port: the command exits at once, its reason on stderr.
        swapped = list(command)
        swapped[swapped.index("--port") + 1] = "99999"
        return await original(*swapped, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncio, "create_subprocess_exec", with_bad_port)
        with pytest.raises(RuntimeError, match=r"exited \(\d+\) before it was ready") as failed:
            await fake.start()
    assert "port must be 0-65535" in str(failed.value), "the log says why"
    assert fake.proc is not None and fake.proc.returncode is not None


def test_options_the_command_cannot_take_are_refused_not_ignored() -> None:
    with pytest.raises(ValueError, match="FakeOptions"):
        FakeProcess(FakeOptions(translation_speed=50.0))
    FakeProcess(FakeOptions())  # the defaults are what it runs with


def test_the_state_snapshot_reads_back_into_the_same_records() -> None:
    from translator_bot.fake.state import (
        ErrorRecord,
        FakeState,
        SessionRecord,
        TruncateRecord,
        ViolationRecord,
    )

    record = SessionRecord(id="sess_1", endpoint="realtime", model="gpt-realtime", path="/v1/realtime")
    record.truncates.append(TruncateRecord("item_1", 120, 400, True))
    record.errors_sent.append(ErrorRecord("invalid_request_error", "x", "bad", None))
    record.contract_violations.append(ViolationRecord("foo", "unknown"))
    record.turn_ends_at.append(12.5)
    record.output_late_ms = 140
    closed = SessionRecord(id="sess_2", endpoint="translations", model="m", path="/p", closed_at=3.0)
    state = FakeState(sessions=[record, closed], internal_errors=["boom"])
    assert state_from_snapshot(state.snapshot()) == state
