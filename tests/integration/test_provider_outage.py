"""A model provider outage the way it happens: the provider's server process stops while the bot is in
a meeting, stays away, and comes back on the same address. Every part is real: Janus in the private
network namespace, the bot as `translator-bot join`, the fake provider as `translator-bot
fake-realtime` (a separate process that is stopped and started again), and two aiortc participants."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from translator_bot.errors import ExitCode
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.rig import FAKE_KEY, InterpreterRig, free_port

pytestmark = [pytest.mark.janus, pytest.mark.timeout(300)]

BOT = Path(sys.executable).with_name("translator-bot")
SETTLE_S = 6.0


class ProviderProcess:
    """`translator-bot fake-realtime --port PORT` as a child process."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc, self.port = proc, port

    @classmethod
    async def start(cls, port: int) -> ProviderProcess:
        proc = await asyncio.create_subprocess_exec(
            str(BOT),
            "fake-realtime",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        assert b"ready" in line, line
        return cls(proc, port)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                await self.proc.wait()


def rig_for(janus: JanusServer, engine: str, tmp_path: Path, port: int, outage_s: float) -> InterpreterRig:
    env = {
        "OPENAI_API_KEY": FAKE_KEY,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "TRANSLATOR_PROVIDER_OUTAGE_SECONDS": str(outage_s),
    }
    return InterpreterRig(janus, engine, tmp_path / "transcripts", env=env, use_fake=False)


async def settle(rig: InterpreterRig, extra: float = SETTLE_S) -> None:
    await rig.quiet()
    await asyncio.sleep(extra)


def lane_towards(health: dict[str, Any], lang: str) -> str:
    (lane,) = [str(key) for key in health["lanes"] if str(key).endswith(f"->{lang}")]
    return lane


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_the_bot_rides_out_a_provider_outage(janus: JanusServer, tmp_path: Path, engine: str) -> None:
    port = free_port()
    provider = await ProviderProcess.start(port)
    rig = rig_for(janus, engine, tmp_path, port, outage_s=120)
    try:
        await rig.start([("Alice", "en"), ("Beatriz", "es")])
        assert rig.bot is not None
        rig.say("Alice", "u1-en")
        await settle(rig)

        await provider.stop()
        # Away for longer than a few reconnect attempts: the bot stays, and says which lanes suffer.
        away_since = time.monotonic()
        degraded: dict[str, Any] = {}
        while time.monotonic() - away_since < 10:
            status, health = await rig.health()
            # Not ready (a degraded part), but in the room: liveness is /livez, which stays up.
            assert status in (200, 503) and health["room"] == "joined", health
            degraded = health["outages"]
            await asyncio.sleep(0.5)
        assert rig.bot.proc.returncode is None, rig.bot.text[-3000:]
        assert status == 503 and health["status"] == "degraded", health
        assert set(degraded) == set(health["lanes"]), health
        assert set(health["lanes"].values()) == {"degraded"}, health
        to_spanish = lane_towards(health, "es")
        assert "cannot connect" in degraded[to_spanish]["reason"] and degraded[to_spanish]["seconds"] >= 9

        provider = await ProviderProcess.start(port)  # back, on the same port
        async with asyncio.timeout(15):  # the longest backoff is 8 s (+25 % jitter)
            while True:
                _, health = await rig.health()
                if all(state == "connected" for state in health["lanes"].values()):
                    break
                await asyncio.sleep(0.25)
        rig.say("Alice", "u3-en")
        await settle(rig)
        _, health = await rig.health()
        assert to_spanish not in health["outages"], health  # a translation proved it is back
        assert await rig.stop_bot() == 0, rig.bot.text[-3000:]
    finally:
        await rig.aclose()
        await provider.stop()

    beatriz = rig.people["Beatriz"].listening
    assert beatriz is not None
    heard = [h.utterance_id for h in heard_utterances(beatriz.recording)]
    assert heard == ["u1-es", "u3-es"], f"Beatriz heard {heard}\n{rig.bot.text[-4000:]}"


async def test_an_outage_longer_than_the_limit_exits_5(janus: JanusServer, tmp_path: Path) -> None:
    port = free_port()
    provider = await ProviderProcess.start(port)
    rig = rig_for(janus, "translate", tmp_path, port, outage_s=4)
    try:
        await rig.start([("Alice", "en"), ("Beatriz", "es")])
        assert rig.bot is not None
        stopped = time.monotonic()
        await provider.stop()
        code = await rig.bot.wait(30)
        waited = time.monotonic() - stopped
    finally:
        await rig.aclose()
        await provider.stop()
    assert code == int(ExitCode.PROVIDER_UNAVAILABLE) == 5, rig.bot.text[-3000:]
    assert 4 <= waited < 20, waited
    assert "unavailable for" in rig.bot.text and "TRANSLATOR_PROVIDER_OUTAGE_SECONDS" in rig.bot.text
