"""The README's embedding program (`interpret.py`), copied out of the README and run as a reader runs it:
`python interpret.py <room>` with join's settings in the environment, in a real Janus meeting (private
network namespace) with the package's fake realtime server and two aiortc participants. It prints
their captions and the meeting's state, and SIGTERM (its own signal handler calls bot.stop()) makes it
leave with exit code 0."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.readme_examples import readme_example
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fixtures import utterance
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.participant import Listening, SimParticipant

pytestmark = [pytest.mark.janus, pytest.mark.timeout(240)]

FAKE_KEY = "sk-local-fake-key-0000"
SETTLE_S = 6.0  # turn detection + the translation streamed in real time + playout, with room to spare
# The program prints no "I hear everyone" line: give the media path from each new publisher (a DTLS
# retransmit can take 1 s) time to come up before anyone speaks.
MEDIA_UP_S = 3.0


class Program:
    """The example as a child process; its stdout kept line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            asyncio.create_task(self._read(proc.stdout, self.stdout)),
            asyncio.create_task(self._read(proc.stderr, self.stderr)),
        ]

    @staticmethod
    async def _read(stream: asyncio.StreamReader | None, into: list[str]) -> None:
        assert stream is not None
        async for raw in stream:
            into.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(["--- stdout", *self.stdout, "--- stderr", *self.stderr[-60:]])

    async def wait(self, seconds: float) -> int:
        code = await asyncio.wait_for(self.proc.wait(), seconds)
        await asyncio.gather(*self._readers)
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


def lanes_printed(line: str) -> set[str] | None:
    """The lanes of a "lanes: a->es, b->en" line the program printed."""
    if not line.startswith("lanes: "):
        return None
    return set(line.removeprefix("lanes: ").split(", "))


async def wait_until(predicate: Callable[[], object], seconds: float, what: str, program: Program) -> None:
    try:
        async with asyncio.timeout(seconds):
            while not predicate():  # noqa: ASYNC110 - polls the program's output and the room
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {seconds:.0f} s: {what}\n{program.text}") from None


async def say_and_settle(sim: SimParticipant, sentence: str, program: Program) -> None:
    """`sim` says `sentence`; then the translation has time to reach the other person."""
    sim.say(sentence)
    await wait_until(lambda: sim.track is not None and not sim.track.busy, 30, f"{sentence} said", program)
    await asyncio.sleep(SETTLE_S)


async def test_the_readme_program_interprets_a_janus_meeting_and_leaves_on_sigterm(
    janus: JanusServer, tmp_path: Path
) -> None:
    script = tmp_path / "interpret.py"
    script.write_text(readme_example("interpret.py"), encoding="utf-8")
    fake = FakeRealtimeServer()
    await fake.start()
    env = janus.environ() | {
        "OPENAI_API_KEY": FAKE_KEY,
        "OPENAI_BASE_URL": fake.base_url,
        "TRANSLATOR_ENGINE": "translate",
        "TRANSLATOR_TRANSCRIPT_DIR": str(tmp_path / "transcripts"),
        "PYTHONUNBUFFERED": "1",  # lines as they are printed, not when the pipe's buffer fills
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(janus.room),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(tmp_path),
    )
    program = Program(proc)
    alice = SimParticipant(janus.url, janus.room, "Alice", "en")
    beatriz = SimParticipant(janus.url, janus.room, "Beatriz", "es")
    listening: dict[str, Listening] = {}
    try:
        await wait_until(
            lambda: any(line.startswith("health:") for line in program.stdout), 30, "in the room", program
        )
        for sim in (alice, beatriz):
            await sim.join()
        for sim in (alice, beatriz):
            listening[sim.name] = await sim.subscribe_interpreter(timeout_s=20)
            await (await listening[sim.name].wait_track(20)).wait_first_frame(20)
        two_lanes = {f"{alice.id}->es", f"{beatriz.id}->en"}
        await wait_until(
            lambda: any(lanes_printed(line) == two_lanes for line in program.stdout), 20, "two lanes", program
        )
        await asyncio.sleep(MEDIA_UP_S)

        await say_and_settle(alice, "u1-en", program)
        await say_and_settle(beatriz, "u3-es", program)
        assert program.proc.returncode is None, program.text

        stopped = time.monotonic()
        program.proc.send_signal(signal.SIGTERM)
        code = await program.wait(15)
        took = time.monotonic() - stopped
    finally:
        await program.kill()
        for sim in (alice, beatriz):
            with contextlib.suppress(Exception):
                await sim.close()
        await fake.stop()

    assert code == 0, program.text
    assert took < 5.0, f"leaving took {took:.1f} s\n{program.text}"
    # The captions it printed are the translations each listener heard.
    assert f"[es] Alice: {utterance('u1-es').text}" in program.stdout, program.text
    assert f"[en] Beatriz: {utterance('u3-en').text}" in program.stdout, program.text
    assert [h.utterance_id for h in heard_utterances(listening["Beatriz"].recording)] == ["u1-es"]
    assert [h.utterance_id for h in heard_utterances(listening["Alice"].recording)] == ["u3-en"]
    assert "health: ok" in program.stdout, program.text
    assert program.stdout[-1] == "left the meeting: stopped stopped", program.text
    assert not any("Traceback" in line for line in program.stderr), program.text
    assert fake.state.all_violations() == []
