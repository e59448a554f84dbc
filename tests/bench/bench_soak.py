"""Soak: one two-party meeting for a long while, with model sessions recycled several times.

    python -m tests.bench.bench_soak [--engine realtime|translate|both] [--minutes 10]
                                     [--session-max-seconds 90]
    python -m tests.bench.bench_soak --short      # 2 minutes, sessions recycled every 30 s

Real Janus in a private network namespace, the bot as a process (`translator-bot join`) with
TRANSLATOR_SESSION_MAX_SECONDS set, the fake model server, and two participants talking in turns from
the recorded fixtures (the `capacity` benchmark's turns). Prints, per engine:
- utterances delivered / spoken: each sentence said, matched in order against what the other person
  heard (cut and named by the recogniser), and the transcript lines the bot recorded;
- the bot's resident memory (VmRSS) at minute 1 and at the end;
- latency p50 / p95, from the end of a sentence at the speaker to the first audio of its translation
  at the listener, for sentences ending in the first and in the last two minutes (one each when the
  run is shorter than four);
- input tokens per response in the same windows (realtime engine; from the fake's usage);
- reconnects by reason (drop, expired, recycle) from the bot's /metrics.
Targets: nothing lost, RSS growth < 10 %, latency and tokens per response flat.
Needs root (or user namespaces) for the private network namespace, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.bench.bench_meeting import percentile, talk
from translator_bot.fake.state import FakeOptions
from translator_bot.system.netns import enter_private_network
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.listen import Heard, heard_utterances
from translator_bot.testbed.rig import InterpreterRig

PEOPLE = (("Alice", "en"), ("Beatriz", "es"))
RECONNECTS = "translator_engine_reconnects_total"
SAMPLE_S = 2.0


@dataclass
class Samples:
    """What is sampled while the meeting runs: the bot's RSS and each response's input tokens, with
    the meeting time they were seen at (the fake keeps tokens per session, not when)."""

    rss_mib: list[tuple[float, float]] = field(default_factory=list)
    tokens: list[tuple[float, int]] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def sample(rig: InterpreterRig, started: float, samples: Samples) -> None:
    assert rig.bot is not None and rig.fake is not None
    while True:
        now = time.monotonic() - started
        samples.rss_mib.append((now, rss_mib(rig.bot.proc.pid)))
        for session in rig.fake.state.sessions:
            seen = samples._seen.get(session.id, 0)
            samples.tokens.extend((now, tokens) for tokens in session.input_tokens[seen:])
            samples._seen[session.id] = len(session.input_tokens)
        await asyncio.sleep(SAMPLE_S)


def match_in_order(expected: list[tuple[str, float]], heard: list[Heard]) -> list[tuple[float, float]]:
    """(speech end, first arrival) of each expected translation found, in order, in what was heard.

    A translation counts only if it starts before the next sentence in the same direction ends: the
    same sentence comes back every few turns, and a lost one must not be matched to its next turn."""
    found: list[tuple[float, float]] = []
    position = 0
    for index, (uid, end) in enumerate(expected):
        until = expected[index + 1][1] if index + 1 < len(expected) else float("inf")
        for at in range(position, len(heard)):
            if heard[at].first_arrival >= until:
                break
            if heard[at].utterance_id == uid:
                found.append((end, heard[at].first_arrival))
                position = at + 1
                break
    return found


def at_or_after(values: list[tuple[float, float]], t: float) -> float:
    return next((v for when, v in values if when >= t), values[-1][1] if values else float("nan"))


def recycle_times(rig: InterpreterRig, wall_started: float) -> list[float]:
    """Meeting times of the bot's planned recycles, from its log, to set beside what was lost."""
    assert rig.bot is not None
    times = []
    for line in rig.bot.lines:
        if "recycling session" in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            times.append(stamp - wall_started)
    return times


def p50_p95_ms(values: list[float]) -> str:
    if not values:
        return "     -      -"
    return f"{percentile(values, 50) * 1000:6.0f} {percentile(values, 95) * 1000:6.0f}"


async def soak(janus: JanusServer, engine: str, minutes: float, session_max_s: float, workdir: Path) -> None:
    transcripts = workdir / engine
    rig = InterpreterRig(
        janus,
        engine,
        transcripts,
        fake_options=FakeOptions(heartbeat_ms=1000),
        env={"TRANSLATOR_SESSION_MAX_SECONDS": str(session_max_s)},
    )
    samples = Samples()
    try:
        await rig.start(list(PEOPLE))
        assert rig.bot is not None
        started, wall_started = time.monotonic(), time.time()
        sampler = asyncio.create_task(sample(rig, started, samples))
        try:
            await talk(rig, minutes * 60)
            await asyncio.sleep(6.0)  # the last translation and its playout
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        elapsed = time.monotonic() - started
        end_rss = rss_mib(rig.bot.proc.pid)
        metrics = await rig.metrics()
        code = await rig.stop_bot()
    finally:
        await rig.aclose()

    spoken = 0
    delivered: list[tuple[float, float]] = []
    lost: list[str] = []  # translations that never reached the listener, with when they were said
    for (speaker, _), (listener, listener_lang) in (PEOPLE, PEOPLE[::-1]):
        said = [
            (f"{uid.rsplit('-', 1)[0]}-{listener_lang}", end - started)
            for uid, _, end in rig.spoken(speaker)
            if end is not None
        ]
        spoken += len(said)
        listening = rig.people[listener].listening
        assert listening is not None
        heard = [
            Heard(h.utterance_id, h.first_arrival - started, h.duration_ms, h.score)
            for h in heard_utterances(listening.recording)
        ]
        found = match_in_order(said, heard)
        delivered += found
        matched = {end for end, _ in found}
        lost += [f"{uid} at {end // 60:.0f}:{end % 60:04.1f}" for uid, end in said if end not in matched]
    lines = [
        json.loads(line) for path in transcripts.glob("*.jsonl") for line in path.read_text().splitlines()
    ]
    recorded = len({(line["lane"], line["item_id"]) for line in lines})

    window = min(120.0, elapsed / 2)
    last_from = elapsed - window
    first_lat = [arrival - end for end, arrival in delivered if end < window]
    last_lat = [arrival - end for end, arrival in delivered if end >= last_from]
    first_tok = [float(t) for when, t in samples.tokens if when < window]
    last_tok = [float(t) for when, t in samples.tokens if when >= last_from]
    rss_1 = at_or_after(samples.rss_mib, 60.0)
    reconnects = {
        key.split('reason="')[1].split('"')[0]: int(value)
        for key, value in metrics.items()
        if key.startswith(RECONNECTS) and 'reason="' in key
    }

    print(f"\n== {engine}: {elapsed / 60:.1f} min, session max {session_max_s:.0f} s, bot exit code {code}")
    print(f"utterances delivered / spoken     {len(delivered)} / {spoken}   (transcript records: {recorded})")
    if lost:
        print(f"lost (meeting time said)          {', '.join(lost)}")
        recycles = [f"{t // 60:.0f}:{t % 60:04.1f}" for t in recycle_times(rig, wall_started)]
        print(f"recycles began at                 {', '.join(recycles)}")
    print(
        f"bot RSS MiB minute 1 -> end       {rss_1:.0f} -> {end_rss:.0f} "
        f"({(end_rss / rss_1 - 1) * 100:+.1f} %)"
    )
    print(f"{'':34}{'p50 ms':>6} {'p95 ms':>6}   sentences")
    print(f"latency first {window / 60:.0f} min{'':17}{p50_p95_ms(first_lat)}   {len(first_lat)}")
    print(f"latency last {window / 60:.0f} min{'':18}{p50_p95_ms(last_lat)}   {len(last_lat)}")
    if first_tok and last_tok:
        print(
            f"input tokens per response          first {statistics.median(first_tok):.0f}, "
            f"last {statistics.median(last_tok):.0f} (median; {len(first_tok)} / {len(last_tok)} responses)"
        )
    else:
        print("input tokens per response          - (the translate endpoint reports no usage)")
    print(
        "reconnects                         "
        + (", ".join(f"{reason} {count}" for reason, count in sorted(reconnects.items())) or "none")
    )


async def run(args: argparse.Namespace) -> None:
    engines = ["realtime", "translate"] if args.engine == "both" else [args.engine]
    with tempfile.TemporaryDirectory() as tmp:
        async with JanusServer() as janus:
            for engine in engines:
                await soak(janus, engine, args.minutes, args.session_max_seconds, Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["realtime", "translate", "both"], default="both")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--session-max-seconds", type=float, default=90.0)
    parser.add_argument(
        "--short", action="store_true", help="a quick check: --minutes 2 --session-max-seconds 30"
    )
    args = parser.parse_args()
    if args.short:
        args.minutes, args.session_max_seconds = 2.0, 30.0
    enter_private_network()  # before any thread exists
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
