"""A whole interpreted meeting on this machine: Janus, the fake model server, the bot as a process
(`translator-bot join`, as a user runs it) and simulated participants who speak recorded fixtures
and record the interpreter feed meant for them. Used by the end-to-end tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.testbed.bot import BotProcess
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.participant import Listening, SimParticipant

FAKE_KEY = "sk-local-fake-key-0000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RigPerson:
    sim: SimParticipant
    listening: Listening | None = None


@dataclass
class InterpreterRig:
    janus: JanusServer
    engine: str
    transcript_dir: Path
    fake_options: FakeOptions | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    fake: FakeRealtimeServer | None = None  # given: shared with other rigs, not stopped by this one
    # given instead of `fake`: the base URL of a fake the caller runs (e.g. in its own process)
    fake_url: str | None = None
    room: str | int | None = None  # None: the Janus server's static room; otherwise created by the bot
    use_fake: bool = True  # False: the bot talks to the provider its environment names
    bot: BotProcess | None = None
    people: dict[str, RigPerson] = field(default_factory=dict)
    metrics_port: int = 0
    stop_seconds: float | None = None  # SIGTERM -> exit
    capture_stdout: bool = False  # keep the bot's stdout in bot.stdout_lines (otherwise discarded)
    dtx: bool = False  # participants ask for Opus DTX (it takes effect in a room with `opus_dtx`)
    _own_fake: bool = False

    async def start(self, people: Sequence[tuple[str, str]], *, subscribe: bool = True) -> None:
        """Start the bot, let `people` (name, language) join, and wait until the bot hears them all.
        `subscribe`: every person first subscribes to the interpreter feed meant for them (so it must
        exist: lanes at the join); False leaves that to `subscribe`, for a bot whose feeds appear only
        once someone has spoken (lazy lanes)."""
        if self.engine != "passthrough" and self.fake is None and self.fake_url is None and self.use_fake:
            self.fake = FakeRealtimeServer(options=self.fake_options)
            self._own_fake = True
            await self.fake.start()
        room: str | int = self.room if self.room is not None else self.janus.room
        self.metrics_port = free_port()
        env = self.janus.environ()
        if self.use_fake:
            env["OPENAI_API_KEY"] = FAKE_KEY
        env.update(
            {
                "TRANSLATOR_ENGINE": self.engine,
                "TRANSLATOR_TRANSCRIPT_DIR": str(self.transcript_dir),
                "TRANSLATOR_METRICS_HOST": "127.0.0.1",
                "TRANSLATOR_METRICS_PORT": str(self.metrics_port),
                "TRANSLATOR_LOG_LEVEL": "INFO",
            }
        )
        if self.fake is not None:
            env["OPENAI_BASE_URL"] = self.fake.base_url
        elif self.fake_url is not None and self.use_fake:
            env["OPENAI_BASE_URL"] = self.fake_url
        env.update(self.env)
        args = ["join", str(room)] + (["--create-room"] if self.room is not None else [])
        self.bot = await BotProcess.start(args, env, capture_stdout=self.capture_stdout)
        await self.bot.wait_line(r"joined meeting", 20)
        for name, language in people:
            sim = SimParticipant(self.janus.url, room, name, language, dtx=self.dtx)
            await sim.join()
            self.people[name] = RigPerson(sim)
        if subscribe:
            await self.subscribe(list(self.people), 20)
        await self.wait_bot_hears_everyone(20)

    async def subscribe(self, names: Sequence[str], timeout_s: float = 20) -> None:
        """`names` subscribe to the interpreter feed meant for them (waiting up to `timeout_s` for it
        to appear) and record it from its first frame."""
        for name in names:
            person = self.people[name]
            if person.listening is not None:
                continue
            person.listening = await person.sim.subscribe_interpreter(timeout_s=timeout_s)
            recorder = await person.listening.wait_track(timeout_s)
            await recorder.wait_first_frame(timeout_s)

    async def wait_bot_hears_everyone(self, timeout_s: float) -> None:
        """Until the bot has decoded audio from every participant. Speech before that is lost, not
        late: the media path from a new publisher can take a DTLS retransmit (1 s) to come up."""
        waiting: list[str] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            _, health = await self.health()
            heard = health.get("frames_heard", {})
            waiting = [name for name, p in self.people.items() if not heard.get(str(p.sim.id))]
            if not waiting:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the bot received no audio from {', '.join(waiting)} within {timeout_s:.0f} s")

    def say(self, name: str, utterance_id: str) -> None:
        self.people[name].sim.say(utterance_id)

    def first_loud_after(self, listener: str, after: float) -> float | None:
        """When `listener` first heard sound (RMS > 500) from the bot after the monotonic time `after`."""
        listening = self.people[listener].listening
        assert listening is not None, f"{listener} does not listen to the interpreter"
        return listening.recording.first_loud_arrival(after=after)

    def spoken(self, name: str) -> list[tuple[str, float, float | None]]:
        return [(u.label, u.start, u.end) for u in self.people[name].sim.spoken]

    async def quiet(self, seconds: float = 30.0) -> None:
        """Wait until every participant has finished what they were told to say."""
        async with asyncio.timeout(seconds):
            while any(p.sim.track is not None and p.sim.track.busy for p in self.people.values()):  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    async def health(self) -> tuple[int, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        async with aiohttp.ClientSession() as http, http.get(url) as reply:
            return reply.status, await reply.json()

    async def metrics_text(self) -> str:
        """The bot's /metrics, as Prometheus text."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as reply:
            return await reply.text()

    async def metrics(self) -> dict[str, float]:
        """The bot's /metrics as {sample name with labels: value}."""
        text = await self.metrics_text()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    values[name] = float(value)
        return values

    async def stop_bot(self) -> int:
        assert self.bot is not None
        started = time.monotonic()
        self.bot.proc.send_signal(signal.SIGTERM)
        code = await self.bot.wait(15)
        self.stop_seconds = time.monotonic() - started
        return code

    async def aclose(self) -> None:
        if self.bot is not None:
            await self.bot.kill()
        for person in self.people.values():
            with contextlib.suppress(Exception):
                await person.sim.close()
        if self.fake is not None and self._own_fake:
            await self.fake.stop()
