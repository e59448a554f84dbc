"""Bot CPU for a webinar vs a two-party meeting, per-listener vs per-language output, through real Janus,
the bot as a process and the fake model server.

    python -m tests.bench.bench_webinar [--runs 4] [--seconds 30] [--baseline-ref perf-baseline]
                                        [--dtx off|on|both] [--fake process|in-process]

Cases, each measured --runs times in turn (so machine noise spreads over all of them), medians printed:
- `two-party per-listener`: Alice (en) and Beatriz (es), Alice speaking; today's baseline.
- `webinar per-listener`: Alice (en) speaking, 8 listeners in 3 languages (2 en, 3 es, 3 de): 9 feeds.
- `webinar per-language`: the same room with TRANSLATOR_OUTPUT_MODE=per-language: 3 feeds, and (since
  TRANSLATOR_LANES_OPEN=auto means `speech` there) lanes only for who speaks: Alice's 2 instead of 12.
- `webinar per-language, lanes at join`: the same with TRANSLATOR_LANES_OPEN=join: everyone's 12 lanes.
Only Alice speaks; the listeners publish silence, as an open microphone does. The lane cap stays at its
default (12): Alice's two lanes rank first (earliest joined), so what the listeners hear is the same in
every case. Every case runs the same way: everyone joins, Alice says a first sentence (which opens her
lanes where they open on speech), the listeners of other languages subscribe to their feed, and then
the measurement runs while Alice talks. Prints bot CPU in % of one
core while Alice speaks, the ratio to the two-party meeting (per run, both measured back to back, then
the median: target <= 2x for the per-language webinar), peak RSS and playout underruns, and how late
the fake itself sent translated audio (a busy machine delays the harness too: what the bot's playout
then meets as jitter; the fake runs in its own process unless --fake in-process puts it back on the
bench's event loop, beside every simulated participant).
--dtx on: the rooms offer Opus DTX and everyone publishes as Chrome does with DTX (the meeting page asks
for it), the silent listeners sending a 1-byte packet per ~400 ms instead of a frame every 20 ms;
--dtx both: every tree in plain and DTX rooms, taking turns like the trees (columns "<tree>" and
"<tree>+dtx"), so the webinar x two-party ratio shows for both kinds of room.
With --baseline-ref REF (or --baseline-tree PATH) the bot also runs from that ref's tree, the trees
taking turns run after run after an uncounted warm-up pass (--no-warmup skips it), and the figures
are printed side by side (tests/bench/baseline.py);
--cases picks some of the cases; --json PATH writes the figures for tests.bench.perf_report.
Needs root (or user namespaces) for the private network namespace, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.bench.baseline import SourceTree, add_report_arguments, from_arguments, print_figures
from tests.bench.bench_meeting import (
    FAKE_TEXT,
    SENTENCES,
    UNDERRUNS,
    add_fake_argument,
    cpu_seconds,
    peak_rss_mib,
    with_dtx_variants,
)
from tests.bench.figures import (
    DTX_SUFFIX,
    WARMUP,
    Figure,
    Target,
    cpu_percent,
    median,
    paired_ratios,
    run_name,
    run_order,
)
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import utterance
from translator_bot.system.netns import enter_private_network
from translator_bot.testbed.fake_process import ModelServer, running_fake
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
# name: (people, TRANSLATOR_OUTPUT_MODE, further bot settings)
CASES: dict[str, tuple[Sequence[tuple[str, str]], str, dict[str, str]]] = {
    "two-party per-listener": (TWO_PARTY, "per-listener", {}),
    "webinar per-listener": (WEBINAR, "per-listener", {}),
    "webinar per-language": (WEBINAR, "per-language", {}),
    # The lanes of everyone from the join, as before lazy lanes: what opening them on speech saves.
    "webinar per-language, lanes at join": (WEBINAR, "per-language", {"TRANSLATOR_LANES_OPEN": "join"}),
}
TWO_PARTY_CASE = "two-party per-listener"
WEBINAR_RATIO_TARGET = 2.0  # webinar (per-language) bot CPU over a two-party meeting's


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


@dataclass(frozen=True)
class CaseRun:
    """One case measured once on one tree."""

    cpu_percent: float
    peak_rss_mib: float
    underruns: float
    feeds: int
    lanes: int = 0  # model sessions open while Alice talks
    # The fake's own lateness sending translated audio (its worst, over the run's sessions): the
    # harness shares the machine, so deltas can leave it late; the bot's playout sees that as jitter.
    fake_late_ms: float = 0.0


async def measure(
    janus: JanusServer,
    fake: ModelServer,
    tree: SourceTree,
    case: str,
    workdir: Path,
    room: int,
    seconds: float,
    dtx: bool = False,
) -> CaseRun:
    """`case` once on `tree`; with `dtx`, in a room that offers Opus DTX, everyone asking for it."""
    people, mode, settings = CASES[case]
    rig = InterpreterRig(
        janus,
        "translate",
        workdir,
        fake_url=fake.base_url,
        room=room,
        env={**tree.bot_env(), "TRANSLATOR_OUTPUT_MODE": mode, **settings},
        dtx=dtx,
    )
    sessions_before = len((await fake.read_state()).sessions)
    try:
        if dtx:
            await janus.create_room(room, opus_dtx=True)  # before the bot, whose --create-room finds it
        # Feeds may appear only once Alice speaks (lazy lanes): subscribe after her first sentence.
        await rig.start(people, subscribe=False)
        assert rig.bot is not None
        speaker_language = people[0][1]
        rig.say(people[0][0], f"{SENTENCES[0]}-{speaker_language}")
        await rig.subscribe([name for name, language in people if language != speaker_language], 20)
        await rig.quiet()
        _, health = await rig.health()
        before, started = cpu_seconds(rig.bot.proc.pid), time.monotonic()
        await speak(rig, seconds)
        cpu = cpu_percent(cpu_seconds(rig.bot.proc.pid) - before, time.monotonic() - started)
        rss = peak_rss_mib(rig.bot.proc.pid)
        underruns = (await rig.metrics()).get(UNDERRUNS, 0.0)
    finally:
        await rig.aclose()
    sessions = (await fake.read_state()).sessions[sessions_before:]
    fake_late = max((s.output_late_ms for s in sessions), default=0)
    return CaseRun(
        cpu, rss, underruns, len(health.get("feeds", [])), len(health.get("lanes", {})), float(fake_late)
    )


async def bench(args: argparse.Namespace, trees: list[SourceTree]) -> None:
    cases: list[str] = args.cases
    results: dict[str, dict[str, list[CaseRun]]] = {t.label: {c: [] for c in cases} for t in trees}
    rooms = itertools.count(9000)
    with tempfile.TemporaryDirectory() as tmp:
        async with JanusServer() as janus, running_fake(args.fake, FakeOptions(heartbeat_ms=1000)) as fake:
            for run, tree in run_order(trees, args.runs, args.warmup):
                dtx = tree.label.endswith(DTX_SUFFIX) or args.dtx == "on"
                for case in cases:
                    workdir = Path(tmp) / f"{tree.label}-{case.replace(' ', '-')}-{run}"
                    got = await measure(janus, fake, tree, case, workdir, next(rooms), args.seconds, dtx)
                    if run != WARMUP:
                        results[tree.label][case].append(got)
                    print(
                        f"run {run_name(run)} {tree.label:<10} {case:<24} CPU {got.cpu_percent:5.1f} % "
                        f"feeds {got.feeds} lanes {got.lanes} underruns {got.underruns:.0f} "
                        f"fake sent late by up to {got.fake_late_ms:.0f} ms",
                        flush=True,
                    )
    rooms_text = {"off": "", "on": ", rooms with Opus DTX", "both": ", plain and DTX rooms (+dtx)"}[args.dtx]
    title = (
        f"bot CPU while one person speaks, {args.seconds:.0f} s per case, medians of {args.runs} runs per "
        f"tree{rooms_text} (x two-party: per run, cases back to back, then the median); "
        + FAKE_TEXT[args.fake]
    )
    print_figures(title, webinar_figures(results, cases, [t.label for t in trees]), trees, args.json)


def webinar_figures(
    results: dict[str, dict[str, list[CaseRun]]], cases: list[str], labels: list[str]
) -> list[Figure]:
    rows: list[Figure] = []
    for case in cases:
        rows.append(
            Figure(
                f"{case}: bot CPU",
                "% of a core",
                {label: median(r.cpu_percent for r in results[label][case]) for label in labels},
            )
        )
    for case in cases:
        if case == TWO_PARTY_CASE or TWO_PARTY_CASE not in cases:
            continue
        ratios = {
            label: median(
                paired_ratios(
                    [r.cpu_percent for r in results[label][case]],
                    [r.cpu_percent for r in results[label][TWO_PARTY_CASE]],
                )
            )
            for label in labels
        }
        target = Target(WEBINAR_RATIO_TARGET) if case == "webinar per-language" else None
        rows.append(Figure(f"{case} x two-party", "", ratios, target, decimals=2))
    for case in cases:
        rows.append(
            Figure(
                f"{case}: feeds",
                "",
                {label: median(float(r.feeds) for r in results[label][case]) for label in labels},
                decimals=0,
            )
        )
    for case in cases:
        rows.append(
            Figure(
                f"{case}: lanes",
                "",
                {label: median(float(r.lanes) for r in results[label][case]) for label in labels},
                decimals=0,
            )
        )
    for case in cases:
        rows.append(
            Figure(
                f"{case}: peak RSS",
                "MiB",
                {label: median(r.peak_rss_mib for r in results[label][case]) for label in labels},
                decimals=0,
            )
        )
    rows.append(
        Figure(
            "fake's worst late send, median of runs",
            "ms",
            {
                label: median(r.fake_late_ms for runs in results[label].values() for r in runs)
                for label in labels
            },
            decimals=0,
        )
    )
    rows.append(
        Figure(
            "playout underruns, all cases and runs",
            "",
            {label: sum(r.underruns for runs in results[label].values() for r in runs) for label in labels},
            Target(0),
            decimals=0,
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="speaking time per case and run")
    parser.add_argument(
        "--cases", nargs="+", choices=list(CASES), default=list(CASES), metavar="CASE", help=", ".join(CASES)
    )
    parser.add_argument(
        "--dtx", choices=["off", "on", "both"], default="off", help="rooms with Opus DTX (both: side by side)"
    )
    add_report_arguments(parser, runs=4)
    add_fake_argument(parser)
    args = parser.parse_args()
    with from_arguments(args) as trees:
        if args.dtx == "both":
            trees = with_dtx_variants(trees)
        enter_private_network()  # before any thread exists
        asyncio.run(bench(args, trees))


if __name__ == "__main__":
    main()
