"""Bot CPU for a webinar vs a two-party meeting, per-listener vs per-language output, through real Janus,
the bot as a process and the fake model server.

    python -m tests.bench.bench_webinar [--runs 3] [--seconds 30]

Cases, each measured --runs times in turn (so machine noise spreads over all of them), medians printed:
- `two-party per-listener`: Alice (en) and Beatriz (es), Alice speaking; today's baseline.
- `webinar per-listener`: Alice (en) speaking, 8 listeners in 3 languages (2 en, 3 es, 3 de): 9 feeds.
- `webinar per-language`: the same room with TRANSLATOR_OUTPUT_MODE=per-language: 3 feeds.
Only Alice speaks; the listeners publish silence, as an open microphone does. The lane cap stays at its
default (12): Alice's two lanes rank first (earliest joined), so what the listeners hear is the same in
both modes, and the CPU difference is the output side (one encoder per feed). Prints bot CPU in % of one
core while Alice speaks, the ratio to the two-party baseline, peak RSS and playout underruns.
Needs root (or user namespaces) for the private network namespace, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.bench.bench_meeting import SENTENCES, UNDERRUNS, cpu_seconds, peak_rss_mib
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import utterance
from translator_bot.system.netns import enter_private_network
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.rig import InterpreterRig

TWO_PARTY = [("Alice", "en"), ("Beatriz", "es")]
WEBINAR = [
    ("Alice", "en"),
    ("Ben", "en"),
    ("Bianca", "en"),
    ("Bea", "es"),
    ("Carlos", "es"),
    ("Cruz", "es"),
    ("Dieter", "de"),
    ("Dora", "de"),
    ("Dana", "de"),
]
CASES: dict[str, tuple[Sequence[tuple[str, str]], str]] = {
    "two-party per-listener": (TWO_PARTY, "per-listener"),
    "webinar per-listener": (WEBINAR, "per-listener"),
    "webinar per-language": (WEBINAR, "per-language"),
}


async def speak(rig: InterpreterRig, seconds: float) -> None:
    """Alice speaks one sentence after another, with the pauses of a talk."""
    deadline = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < deadline:
        uid = f"{SENTENCES[turn % len(SENTENCES)]}-en"
        rig.say("Alice", uid)
        await rig.quiet()
        await asyncio.sleep(0.6 + utterance(uid).duration_ms / 1000 * 0.4)
        turn += 1


async def measure(
    janus: JanusServer, fake: FakeRealtimeServer, case: str, run: int, tmp: Path, seconds: float
) -> tuple[float, float, float, int]:
    """(bot CPU % of a core, peak RSS MiB, underruns, feeds) for one case."""
    people, mode = CASES[case]
    rig = InterpreterRig(
        janus,
        "translate",
        tmp / f"{case.replace(' ', '-')}-{run}",
        fake=fake,
        room=int(f"9{run}{list(CASES).index(case)}"),
        env={"TRANSLATOR_OUTPUT_MODE": mode},
    )
    try:
        await rig.start(people)
        assert rig.bot is not None
        _, health = await rig.health()
        before, started = cpu_seconds(rig.bot.proc.pid), time.monotonic()
        await speak(rig, seconds)
        cpu = 100 * (cpu_seconds(rig.bot.proc.pid) - before) / (time.monotonic() - started)
        rss = peak_rss_mib(rig.bot.proc.pid)
        underruns = (await rig.metrics()).get(UNDERRUNS, 0.0)
    finally:
        await rig.aclose()
    return cpu, rss, underruns, len(health.get("feeds", []))


async def bench(args: argparse.Namespace) -> None:
    results: dict[str, list[tuple[float, float, float, int]]] = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        async with JanusServer() as janus:
            fake = FakeRealtimeServer(options=FakeOptions(heartbeat_ms=1000))
            await fake.start()
            try:
                for run in range(args.runs):
                    for case in CASES:
                        figures = await measure(janus, fake, case, run, Path(tmp), args.seconds)
                        results[case].append(figures)
                        print(
                            f"run {run + 1} {case:<24} CPU {figures[0]:5.1f} % feeds {figures[3]}", flush=True
                        )
            finally:
                await fake.stop()
    baseline = statistics.median(r[0] for r in results["two-party per-listener"])
    print(f"\nmedians of {args.runs} runs, {args.seconds:.0f} s of speech each (bot CPU, % of one core)")
    print(
        f"{'case':<24} {'feeds':>5} {'CPU %':>7} {'x two-party':>12} {'peak RSS MiB':>13} {'underruns':>10}"
    )
    for case, runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        underruns = sum(r[2] for r in runs)
        print(
            f"{case:<24} {runs[0][3]:>5} {cpu:>7.1f} {cpu / baseline:>12.2f} {rss:>13.0f} {underruns:>10.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    enter_private_network()  # before any thread exists
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
