"""Soak: the bot's memory while one participant publishes two audio streams, through real Janus.

    python -m tests.bench.bench_two_streams [--minutes 10] [--every 30]

Alice (English) publishes the same looping speech on two audio streams, Beatriz (Spanish) one; the
bot runs as a process with the pass-through engine. Every `--every` seconds it prints the bot's
resident memory (VmRSS), then the growth per minute over the run after a 30 s warm-up, as a
least-squares slope. Before the bot read every stream it grew by about 11 MiB a minute (the first
stream's decoded frames queued unread). Needs root (or user namespaces) for the private network
namespace, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from translator_bot.system.netns import enter_private_network
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.participant import SimParticipant, fixture_speech
from translator_bot.testbed.rig import InterpreterRig, RigPerson

WARM_UP_S = 30.0


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    num = sum((t - mean_t) * (y - mean_y) for t, y in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return num / den if den else 0.0


async def soak(ice: str, minutes: float, every: float) -> None:
    async with JanusServer(ice_address=ice) as janus:
        with tempfile.TemporaryDirectory() as workdir:
            rig = InterpreterRig(janus, "passthrough", Path(workdir))
            try:
                await rig.start([])
                assert rig.bot is not None and rig.bot.proc.pid is not None
                for name, lang, uid, streams in [("Alice", "en", "u1-en", 2), ("Beatriz", "es", "u2-es", 1)]:
                    sim = SimParticipant(
                        janus.url,
                        janus.room,
                        name,
                        lang,
                        schedule=[fixture_speech(uid, 0.5)],
                        loop=True,
                        audio_streams=streams,
                    )
                    rig.people[name] = RigPerson(sim)
                    await sim.join()
                await rig.bot.wait_line(r"receiving \S+/1 from Alice", 30)
                pid = rig.bot.proc.pid
                started = time.monotonic()
                points: list[tuple[float, float]] = []
                while (elapsed := time.monotonic() - started) <= minutes * 60:
                    rss = rss_mib(pid)
                    print(f"{elapsed / 60:5.1f} min  bot RSS {rss:7.1f} MiB", flush=True)
                    if elapsed >= WARM_UP_S:
                        points.append((elapsed / 60, rss))
                    await asyncio.sleep(every)
                status, health = await rig.health()
                print(f"health {status} {health.get('status')}; frames_heard {health.get('frames_heard')}")
                if len(points) >= 2:
                    (t0, first), (t1, last) = points[0], points[-1]
                    print(
                        f"growth after warm-up: {slope(points):.2f} MiB/min "
                        f"({first:.1f} -> {last:.1f} MiB over {t1 - t0:.1f} min)"
                    )
            finally:
                await rig.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=30.0)
    args = parser.parse_args()
    ice = enter_private_network().ice_address  # before any thread exists
    asyncio.run(soak(ice, args.minutes, args.every))


if __name__ == "__main__":
    main()
