"""Meeting-level figures through real Janus, the bot as a process and the fake model server.

    python -m tests.bench.bench_meeting latency  [--utterances 8] [--runs 4] [--baseline-ref perf-baseline]
    python -m tests.bench.bench_meeting capacity [--meetings 2] [--seconds 30] [--runs 4] [--ramp]
                                                 [--baseline-ref perf-baseline] [--dtx off|on|both]
    (either: [--fake process|in-process])

With --baseline-ref REF (or --baseline-tree PATH) the bot also runs from that ref's tree, the trees
taking turns run after run (A B, B A, ...) after an uncounted warm-up pass (--no-warmup skips it), and
the figures are printed side by side with the change and the targets. Only the bot differs between
the trees (tests/bench/baseline.py); --json PATH writes the figures for tests.bench.perf_report.

`latency`: from the end of each source utterance at the speaker to the first translated audio at the
listener, for the pass-through engine (same room path, the input returned unchanged after the same
turn detection) and for both model engines against the fake, measured in the same run; prints p50 /
p95 over all sentences of all runs and what each engine adds over the pass-through baseline of the
same tree, plus playout underruns, and writes the distribution of this checkout's runs to --plot
(default demo-output/bench-meeting-latency.png; the plots extra), and where the time goes: the
median input, model and output stage of each engine and tree (from the fake's marks).
`capacity`: --meetings two-party meetings at once in one Janus, both people talking in turns for
--seconds; prints each bot's CPU (percent of one core) while they talk, its peak RSS and the
underruns. CPU per meeting is the median over the meetings and the runs; meetings per core is one
core (100 %) over that, rounded down, and only from runs without underruns (tests/bench/figures.py).
With --ramp, 1, 2, ... up to --meetings at once, until every tree has underruns: how many meetings
this machine held while also running Janus, the fake and every participant.
--dtx on: the meetings' rooms offer Opus DTX and the participants ask for it, sending what Chrome sends
while silent (a 1-byte packet per ~400 ms); --dtx both: every tree with and without DTX, taking turns
like the trees (columns "<tree>" and "<tree>+dtx").
The fake model server runs in its own process (--fake process, the default): on the bench's event loop,
beside every simulated participant, it sent translated audio up to hundreds of ms late under load and
the bot's playout underran for the harness's sake. --fake in-process keeps it on that loop, to compare;
capacity prints how late the fake sent (its worst per run) either way.
Needs root (or user namespaces) for the private network namespace, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.bench import figures
from tests.bench.baseline import SourceTree, add_report_arguments, from_arguments, print_figures
from tests.bench.figures import (
    DTX_SUFFIX,
    WARMUP,
    Figure,
    Target,
    median,
    meetings_per_core,
    run_name,
    run_order,
)
from translator_bot.demo.plot import PlotsUnavailable, draw_latency_distribution
from translator_bot.fake.catalog import load_catalog
from translator_bot.fake.state import FakeOptions, FakeState
from translator_bot.fixtures import utterance
from translator_bot.system.netns import enter_private_network
from translator_bot.testbed.fake_process import FAKE_KINDS, ModelServer, running_fake
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.rig import InterpreterRig

SENTENCES = ["u1", "u2", "u3", "u4"]
UNDERRUNS = "translator_playout_underruns_total"


ENGINES = ("passthrough", "translate", "realtime")
ADDED_P95_TARGET_MS = 40.0
CPU_PER_MEETING_TARGET = 8.0  # % of a core, per two-party meeting while people talk
MEETINGS_PER_CORE_TARGET = 12


def percentile(values: list[float], q: float) -> float:
    return figures.percentile(values, q)


def model_delay_ms() -> int:
    """What the fake spends per turn before it can answer (recognising the sentence): the delay the
    pass-through baseline waits too, so the difference is what the bot's own path adds."""
    catalog = load_catalog()
    costs = []
    for uid in catalog.recognizer.ids:
        # The least of a few tries: its own cost, not how busy the shared machine was at that moment
        # (a one-off 138 ms instead of 7 made the baseline wait that much longer for a whole run).
        tries = []
        for _ in range(5):
            started = time.perf_counter()
            catalog.recognise(catalog.pcm(uid))
            tries.append((time.perf_counter() - started) * 1000)
        costs.append(min(tries))
    return round(statistics.median(costs))


def stage_split(state: FakeState, end: float, arrival: float) -> tuple[float, float, float] | None:
    """One sentence's latency in three (seconds), from the fake's marks (the same monotonic clock):
    the input side (speech end at the speaker -> the model finds the end of the turn or sentence:
    Janus, the bot's intake and appends, the model's turn detection), the model (-> its first
    translated audio leaves) and the output side (-> first audio at the listener: the bot's
    receive, playout hold and frame grid, encode, Janus, the listener's jitter buffer)."""
    ends = [t for r in state.sessions for t in r.turn_ends_at if end - 1.0 <= t <= arrival]
    if not ends:
        return None
    found = max(ends)
    sent = [t for r in state.sessions for t in r.first_audio_at if found <= t <= arrival]
    if not sent:
        return None
    first = min(sent)
    return found - end, first - found, arrival - first


async def measure_engine(
    janus: JanusServer,
    fake: ModelServer,
    engine: str,
    count: int,
    workdir: Path,
    env: dict[str, str] | None = None,
) -> dict[str, object]:
    rig = InterpreterRig(janus, engine, workdir / engine, fake_url=fake.base_url, env=env or {})
    latencies: list[float] = []
    heard: list[tuple[float, float]] = []  # (speech end, first translated audio), for the stage split
    missing = 0
    try:
        await rig.start([("Alice", "en"), ("Beatriz", "es")])
        await asyncio.sleep(1.0)
        for index in range(count):
            uid = f"{SENTENCES[index % len(SENTENCES)]}-en"
            rig.say("Alice", uid)
            await rig.quiet()
            end = rig.people["Alice"].sim.spoken[-1].end
            assert end is not None
            # turn detection + the longest translation + playout, before the next sentence
            await asyncio.sleep(0.6 + utterance(uid).duration_ms / 1000 * 1.4 + 1.0)
            arrival = rig.first_loud_after("Beatriz", end)
            if arrival is None:
                missing += 1
            else:
                latencies.append(arrival - end)
                heard.append((end, arrival))
        metrics = await rig.metrics()
        await rig.stop_bot()
    finally:
        await rig.aclose()
    state = await fake.read_state() if engine != "passthrough" else FakeState()
    stages = [split for end, arrival in heard if (split := stage_split(state, end, arrival)) is not None]
    return {
        "engine": engine,
        "latencies": latencies,
        "missing": missing,
        "stages": stages,
        "underruns": metrics.get(UNDERRUNS, float("nan")),
    }


@dataclass
class EngineRuns:
    """One engine's sentences on one tree, over all runs."""

    latencies: list[float]
    stages: list[tuple[float, float, float]] = field(default_factory=list)
    missing: int = 0
    underruns: float = 0.0


async def latency(args: argparse.Namespace, trees: list[SourceTree]) -> None:
    delay = model_delay_ms()
    print(f"model (fake recogniser) delay per turn: {delay} ms; the pass-through baseline waits as long")
    runs: dict[str, dict[str, EngineRuns]] = {t.label: {e: EngineRuns([]) for e in ENGINES} for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        async with JanusServer() as janus, running_fake(args.fake, FakeOptions(heartbeat_ms=1000)) as fake:
            for run, tree in run_order(trees, args.runs, args.warmup):
                line = []
                for engine in ENGINES:
                    env = tree.bot_env()
                    if engine == "passthrough":
                        env["TRANSLATOR_PASSTHROUGH_DELAY_MS"] = str(delay)
                    workdir = Path(tmp) / f"{tree.label}-{run}"
                    result = await measure_engine(janus, fake, engine, args.utterances, workdir, env)
                    values, missing, underruns = result["latencies"], result["missing"], result["underruns"]
                    assert (
                        isinstance(values, list) and isinstance(missing, int) and isinstance(underruns, float)
                    )
                    if run != WARMUP:
                        into = runs[tree.label][engine]
                        into.latencies += values
                        stages = result["stages"]
                        assert isinstance(stages, list)
                        into.stages += stages
                        into.missing += missing
                        into.underruns += 0.0 if math.isnan(underruns) else underruns
                    p95 = percentile(values, 95) * 1000 if values else math.nan
                    line.append(f"{engine} p95 {p95:.0f} ms")
                print(f"run {run_name(run)} {tree.label:<6} " + ", ".join(line), flush=True)
    title = (
        f"speech end at the speaker -> first translated audio at the listener "
        f"({args.utterances} sentences x {args.runs} runs per engine and tree; + = over that tree's "
        "pass-through in the same runs)"
    )
    print_figures(title, latency_figures(runs, [t.label for t in trees]), trees, args.json)
    print_stages(
        [
            {"engine": f"{engine} {tree.label}", "stages": runs[tree.label][engine].stages}
            for engine in ENGINES
            for tree in trees
        ]
    )
    after = runs[trees[-1].label]
    results: list[dict[str, object]] = [{"engine": e, "latencies": after[e].latencies} for e in ENGINES]
    plot_latencies(results, args.utterances * args.runs, args.plot)


def latency_figures(runs: dict[str, dict[str, EngineRuns]], labels: list[str]) -> list[Figure]:
    """p50 / p95 per engine over the pooled sentences of each tree (the runs alternate between the
    trees, so pooling treats both alike and gives the p95 more than one run's handful of sentences),
    and what each model engine adds over the same tree's pass-through."""

    def per_tree(engine: str, q: float, added: bool) -> dict[str, float]:
        values = {}
        for label in labels:
            ms = [v * 1000 for v in runs[label][engine].latencies]
            base = [v * 1000 for v in runs[label]["passthrough"].latencies]
            value = percentile(ms, q)
            values[label] = value - percentile(base, q) if added else value
        return values

    rows = [
        Figure("pass-through p50", "ms", per_tree("passthrough", 50, False), decimals=0),
        Figure("pass-through p95", "ms", per_tree("passthrough", 95, False), decimals=0),
    ]
    for engine in ENGINES[1:]:
        rows += [
            Figure(f"{engine} added p50", "ms", per_tree(engine, 50, True), decimals=0, signed=True),
            Figure(
                f"{engine} added p95",
                "ms",
                per_tree(engine, 95, True),
                Target(ADDED_P95_TARGET_MS),
                decimals=0,
                signed=True,
            ),
        ]
    for engine in ENGINES:
        rows.append(
            Figure(
                f"{engine}: sentences missing + playout underruns",
                "",
                {label: runs[label][engine].missing + runs[label][engine].underruns for label in labels},
                Target(0),
                decimals=0,
            )
        )
    return rows


def print_stages(results: list[dict[str, object]]) -> None:
    """Where each model engine's latency goes (medians over the sentences, ms)."""
    print("\nmedian ms per stage: input (speech end -> model finds the turn end), model (-> its first")
    print("audio leaves), output (-> first audio at the listener: bot receive + playout + encode + Janus)")
    print(f"{'engine':<20} {'input':>8} {'model':>8} {'output':>8} {'sentences':>10}")
    for result in results:
        stages = result.get("stages")
        if not isinstance(stages, list) or not stages:
            continue
        medians = [statistics.median(s[i] for s in stages) * 1000 for i in range(3)]
        print(f"{result['engine']:<20} " + " ".join(f"{m:8.0f}" for m in medians) + f" {len(stages):>10}")


def plot_latencies(results: list[dict[str, object]], utterances: int, path: Path) -> None:
    """The distribution beside the table: the spread a p50/p95 pair hides (the plots extra)."""
    samples = {
        str(r["engine"]): [v * 1000 for v in r["latencies"]]
        for r in results
        if isinstance(r["latencies"], list)
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"speech end at the speaker -> first translated audio at the listener ({utterances} sentences)"
    try:
        medians = {name: percentile(values, 50) for name, values in samples.items() if values}
        draw_latency_distribution(samples, path, title=title, medians=medians)
    except PlotsUnavailable as exc:
        print(f"no distribution plot: {exc}")
        return
    print(f"distribution plot: {path}")


FAKE_TEXT = {
    "process": "the fake model server in its own process",
    "in-process": "the fake on the bench's loop",
}


def add_fake_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fake",
        choices=FAKE_KINDS,
        default="process",
        help="where the fake model server runs (in-process: on the bench's own event loop, to compare)",
    )


def with_dtx_variants(trees: list[SourceTree]) -> list[SourceTree]:
    """Every tree twice, plain and in rooms with Opus DTX ("<label>+dtx"), to take turns like trees."""
    return [
        variant
        for tree in trees
        for variant in (
            tree,
            replace(tree, label=tree.label + DTX_SUFFIX, describe=tree.describe + ", DTX rooms"),
        )
    ]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a process so far (VmHWM), in MiB: what a container limit must hold."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def talk(rig: InterpreterRig, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < deadline:
        speaker, lang = ("Alice", "en") if turn % 2 == 0 else ("Beatriz", "es")
        uid = f"{SENTENCES[turn % len(SENTENCES)]}-{lang}"
        rig.say(speaker, uid)
        await rig.quiet()
        await asyncio.sleep(0.6 + utterance(uid).duration_ms / 1000 * 1.4 + 0.5)
        turn += 1


@dataclass(frozen=True)
class MeetingSample:
    """One bot of one two-party meeting: CPU while the people talked, its peak RSS, its underruns."""

    cpu_percent: float
    peak_rss_mib: float
    underruns: float
    # How late the fake sent translated audio in that run (its worst over the run's sessions, every
    # meeting's): lateness the bot's playout meets as jitter, owed to the harness, not to the bot.
    fake_late_ms: float = 0.0


async def measure_meetings(
    janus: JanusServer,
    fake: ModelServer,
    tree: SourceTree,
    count: int,
    seconds: float,
    workdir: Path,
    rooms: itertools.count[int],
    dtx: bool = False,
) -> list[MeetingSample]:
    """`count` two-party meetings at once, each with its bot from `tree`, everyone talking in turns."""
    rigs = [
        InterpreterRig(
            janus,
            "translate",
            workdir / str(i),
            fake_url=fake.base_url,
            room=next(rooms),
            env=tree.bot_env(),
            dtx=dtx,
        )
        for i in range(count)
    ]
    sessions_before = len((await fake.read_state()).sessions)
    try:
        for rig in rigs:
            if dtx and rig.room is not None:
                await janus.create_room(rig.room, opus_dtx=True)
        for rig in rigs:
            await rig.start([("Alice", "en"), ("Beatriz", "es")])
        before = [cpu_seconds(rig.bot.proc.pid) for rig in rigs if rig.bot]
        started = time.monotonic()
        await asyncio.gather(*(talk(rig, seconds) for rig in rigs))
        elapsed = time.monotonic() - started
        after = [cpu_seconds(rig.bot.proc.pid) for rig in rigs if rig.bot]
        rss = [peak_rss_mib(rig.bot.proc.pid) for rig in rigs if rig.bot]
        metrics = [await rig.metrics() for rig in rigs]
    finally:
        for rig in rigs:
            await rig.aclose()
    late = float(
        max((s.output_late_ms for s in (await fake.read_state()).sessions[sessions_before:]), default=0)
    )
    return [
        MeetingSample(figures.cpu_percent(b - a, elapsed), r, m.get(UNDERRUNS, 0.0), late)
        for a, b, r, m in zip(before, after, rss, metrics, strict=True)
    ]


async def capacity(args: argparse.Namespace, trees: list[SourceTree]) -> None:
    counts = list(range(1, args.meetings + 1)) if args.ramp else [args.meetings]
    samples: dict[int, dict[str, list[MeetingSample]]] = {}
    rooms = itertools.count(7000)
    print(
        f"{'run':>7} {'tree':<6} {'meetings':>8} {'bot CPU % of a core (each)':>28} "
        f"{'peak RSS MiB':>14} {'underruns':>9} {'fake late ms':>12}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with JanusServer() as janus, running_fake(args.fake, FakeOptions(heartbeat_ms=1000)) as fake:
            holding = list(trees)
            for count in counts:
                by_tree: dict[str, list[MeetingSample]] = defaultdict(list)
                samples[count] = by_tree
                warmup = args.warmup and count == counts[0]
                for run, tree in run_order(holding, args.runs, warmup):
                    workdir = Path(tmp) / f"{count}-{tree.label}-{run}"
                    dtx = tree.label.endswith(DTX_SUFFIX) or args.dtx == "on"
                    got = await measure_meetings(janus, fake, tree, count, args.seconds, workdir, rooms, dtx)
                    if run != WARMUP:
                        by_tree[tree.label] += got
                    cpu_text = " ".join(f"{s.cpu_percent:.1f}" for s in got)
                    rss_text = " ".join(f"{s.peak_rss_mib:.0f}" for s in got)
                    underruns = sum(s.underruns for s in got)
                    late = max((s.fake_late_ms for s in got), default=0.0)
                    print(
                        f"{run_name(run):>7} {tree.label:<6} {count:>8} {cpu_text:>28} "
                        f"{rss_text:>14} {underruns:>9.0f} {late:>12.0f}",
                        flush=True,
                    )
                holding = [t for t in holding if not sum(s.underruns for s in by_tree[t.label])]
                if not holding:
                    break
    labels = [t.label for t in trees]
    measured = (
        {label: ramp_samples(samples, label) for label in labels} if args.ramp else samples[args.meetings]
    )
    at_once = "every count a tree held without underruns" if args.ramp else f"{args.meetings} at once"
    title = (
        f"two-party meetings, both people talking in turns for {args.seconds:.0f} s; {at_once}, "
        f"{args.runs} runs per tree (CPU: bot only, median over meetings and runs); {FAKE_TEXT[args.fake]}"
    )
    rows = capacity_figures(measured, labels)
    if args.ramp:
        rows.append(
            Figure(
                "held at once on this machine, 0 underruns",
                "meetings",
                {label: held(samples, label) for label in labels},
                decimals=0,
            )
        )
    print_figures(title, rows, trees, args.json)


def capacity_figures(samples: dict[str, list[MeetingSample]], labels: list[str]) -> list[Figure]:
    cpu = {label: median(s.cpu_percent for s in samples.get(label, [])) for label in labels}
    underruns = {label: float(sum(s.underruns for s in samples.get(label, []))) for label in labels}
    per_core = {}
    for label in labels:
        fits = meetings_per_core(cpu[label], underruns[label])
        per_core[label] = math.nan if fits is None else float(fits)
    return [
        Figure("bot CPU per two-party meeting, talking", "% of a core", cpu, Target(CPU_PER_MEETING_TARGET)),
        Figure(
            "meetings per core (100 % / CPU per meeting)",
            "",
            per_core,
            Target(MEETINGS_PER_CORE_TARGET, higher_is_better=True),
            decimals=0,
        ),
        Figure(
            "bot peak RSS",
            "MiB",
            {label: median(s.peak_rss_mib for s in samples.get(label, [])) for label in labels},
            Target(110),
            decimals=0,
        ),
        Figure("playout underruns, all runs", "", underruns, Target(0), decimals=0),
        Figure(
            "fake's worst late send, median of runs",
            "ms",
            {label: median(s.fake_late_ms for s in samples.get(label, [])) for label in labels},
            decimals=0,
        ),
    ]


def ramp_samples(samples: dict[int, dict[str, list[MeetingSample]]], label: str) -> list[MeetingSample]:
    """A tree's meetings from every count it held without underruns; if none, the first count's (whose
    underruns then rule out a meetings-per-core figure)."""
    clean = [
        s for by_tree in samples.values() for s in by_tree.get(label, []) if not sum_underruns(by_tree[label])
    ]
    return clean or samples[min(samples)].get(label, [])


def sum_underruns(samples: list[MeetingSample]) -> float:
    return sum(s.underruns for s in samples)


def held(samples: dict[int, dict[str, list[MeetingSample]]], label: str) -> float:
    """The most meetings at once a tree ran with no underrun in any run (NaN: not even one)."""
    clean = [
        count
        for count, by_tree in samples.items()
        if by_tree.get(label) and not sum(s.underruns for s in by_tree[label])
    ]
    return float(max(clean)) if clean else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--utterances", type=int, default=8, help="sentences per engine and run")
    lat.add_argument("--plot", type=Path, default=Path("demo-output/bench-meeting-latency.png"))
    add_report_arguments(lat, runs=4)
    add_fake_argument(lat)
    cap = sub.add_parser("capacity")
    cap.add_argument("--meetings", type=int, default=2, help="meetings at once (with --ramp: at most)")
    cap.add_argument("--seconds", type=float, default=30.0, help="talking time per measurement")
    cap.add_argument("--ramp", action="store_true", help="1, 2, ... --meetings at once, until underruns")
    cap.add_argument(
        "--dtx", choices=["off", "on", "both"], default="off", help="rooms with Opus DTX (both: side by side)"
    )
    add_report_arguments(cap, runs=4)
    add_fake_argument(cap)
    args = parser.parse_args()
    with from_arguments(args) as trees:
        if getattr(args, "dtx", "off") == "both":
            trees = with_dtx_variants(trees)
        enter_private_network()  # before any thread exists
        asyncio.run(latency(args, trees) if args.what == "latency" else capacity(args, trees))


if __name__ == "__main__":
    main()
