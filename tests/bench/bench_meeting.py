"""Meeting-level figures through real Janus, the bot as a process and the fake model server.

    python -m tests.bench.bench_meeting latency  [--utterances 8] [--rounds 3] [--before DIR]
    python -m tests.bench.bench_meeting capacity [--max-meetings 4] [--seconds 40]

`latency`: from the end of each source utterance at the speaker to the first translated audio at the
listener, for the pass-through engine (same room path, the input returned unchanged after the same
turn detection) and for both model engines against the fake, measured in the same run; prints p50 /
p95 and what each engine adds over the pass-through baseline, plus playout underruns, and writes
their distribution to --plot (default demo-output/bench-meeting-latency.png; the plots extra), and
where the time goes: the median input, model and output stage of each engine (from the fake's marks).
--before DIR runs the bot of another source tree too (e.g. `git archive perf-baseline | tar -x -C
DIR`), against the same fake, interleaved with this tree's; --rounds N prints medians over N rounds.
`capacity`: N two-party meetings in one Janus, both people talking in turns; prints each bot's CPU
(percent of one core) and the underruns, for N = 1.. until underruns appear or --max-meetings.
Needs root (or user namespaces) for the private network namespace, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from translator_bot.demo.plot import PlotsUnavailable, draw_latency_distribution
from translator_bot.fake.catalog import load_catalog
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import utterance
from translator_bot.system.netns import enter_private_network
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.rig import InterpreterRig

SENTENCES = ["u1", "u2", "u3", "u4"]
UNDERRUNS = "translator_playout_underruns_total"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def first_audio_after(rig: InterpreterRig, listener: str, after: float) -> float | None:
    listening = rig.people[listener].listening
    assert listening is not None
    rec = listening.recording
    for chunk, at in zip(list(rec.chunks), list(rec.arrivals), strict=False):
        if at > after and chunk.size and float((chunk.astype("float64") ** 2).mean()) ** 0.5 > 500:
            return at
    return None


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


def stage_split(rig: InterpreterRig, end: float, arrival: float) -> tuple[float, float, float] | None:
    """One sentence's latency in three (seconds), from the fake's marks (the same monotonic clock):
    the input side (speech end at the speaker -> the model finds the end of the turn or sentence:
    Janus, the bot's intake and appends, the model's turn detection), the model (-> its first
    translated audio leaves) and the output side (-> first audio at the listener: the bot's
    receive, playout hold and frame grid, encode, Janus, the listener's jitter buffer)."""
    if rig.fake is None:
        return None
    ends = [t for r in rig.fake.state.sessions for t in r.turn_ends_at if end - 1.0 <= t <= arrival]
    if not ends:
        return None
    found = max(ends)
    sent = [t for r in rig.fake.state.sessions for t in r.first_audio_at if found <= t <= arrival]
    if not sent:
        return None
    first = min(sent)
    return found - end, first - found, arrival - first


async def measure_engine(
    janus: JanusServer, engine: str, count: int, workdir: Path, env: dict[str, str] | None = None
) -> dict[str, object]:
    rig = InterpreterRig(
        janus, engine, workdir / engine, fake_options=FakeOptions(heartbeat_ms=1000), env=env or {}
    )
    latencies: list[float] = []
    stages: list[tuple[float, float, float]] = []
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
            arrival = first_audio_after(rig, "Beatriz", end)
            if arrival is None:
                missing += 1
            else:
                latencies.append(arrival - end)
                split = stage_split(rig, end, arrival)
                if split is not None:
                    stages.append(split)
        metrics = await rig.metrics()
        await rig.stop_bot()
    finally:
        await rig.aclose()
    return {
        "engine": engine,
        "latencies": latencies,
        "missing": missing,
        "stages": stages,
        "underruns": metrics.get(UNDERRUNS, float("nan")),
    }


async def latency(args: argparse.Namespace) -> None:
    delay = model_delay_ms()
    print(f"model (fake recogniser) delay per turn: {delay} ms; the pass-through baseline waits as long")
    trees: list[tuple[str, dict[str, str]]] = [("", {})]
    if args.before is not None:
        # The bot of another tree (e.g. `git archive perf-baseline | tar -x -C DIR`), run against the
        # same fake, Janus and participants, interleaved with this tree's, round after round.
        trees.insert(0, (" before", {"PYTHONPATH": str(args.before.resolve())}))
    rounds: list[list[dict[str, object]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with JanusServer() as janus:
            for index in range(args.rounds):
                results = []
                for engine in ("passthrough", "translate", "realtime"):
                    for label, tree_env in trees:
                        env = dict(tree_env)
                        if engine == "passthrough":
                            env["TRANSLATOR_PASSTHROUGH_DELAY_MS"] = str(delay)
                        workdir = Path(tmp) / f"{index}{label.strip()}"
                        result = await measure_engine(janus, engine, args.utterances, workdir, env)
                        result["engine"] = engine + label
                        results.append(result)
                rounds.append(results)
                print_round(results, trees, f"round {index + 1}/{args.rounds}", args.utterances)
    if args.rounds > 1:
        print_medians(rounds, trees)
    pooled = pool(rounds)
    print_stages(pooled)
    plot_latencies(pooled, args.utterances, args.plot)


def added(results: list[dict[str, object]], result: dict[str, object], q: float) -> float:
    """What `result` adds at percentile `q` over the pass-through baseline of the same bot tree."""
    label = str(result["engine"]).partition(" ")[2]
    name = "passthrough" + (f" {label}" if label else "")
    base = next(r["latencies"] for r in results if r["engine"] == name)
    values = result["latencies"]
    assert isinstance(base, list) and isinstance(values, list)
    if not base or not values:
        return float("nan")
    return (percentile(values, q) - percentile(base, q)) * 1000


def print_round(
    results: list[dict[str, object]], trees: list[tuple[str, dict[str, str]]], title: str, utterances: int
) -> None:
    what = "speech end at the speaker -> first translated audio at the listener"
    print(f"\n{title}: {what} ({utterances} sentences)")
    header = ("engine", "p50 ms", "p95 ms", "+p50 ms", "+p95 ms", "missing", "underruns")
    print(f"{header[0]:<19} " + " ".join(f"{h:>8}" for h in header[1:]))
    for result in results:
        values = result["latencies"]
        assert isinstance(values, list)
        if not values:
            print(f"{result['engine']:<19} no translated audio arrived")
            continue
        p50, p95 = percentile(values, 50) * 1000, percentile(values, 95) * 1000
        print(
            f"{result['engine']:<19} {p50:8.0f} {p95:8.0f} {added(results, result, 50):+8.0f} "
            f"{added(results, result, 95):+8.0f} {result['missing']:>8} {result['underruns']:>10.0f}"
        )
    baseline = "each bot's own pass-through" if len(trees) > 1 else "the pass-through baseline"
    print(f"(+ columns: added over {baseline}, measured in the same round; target +p95 <= 40 ms)")


def print_medians(rounds: list[list[dict[str, object]]], trees: list[tuple[str, dict[str, str]]]) -> None:
    """Medians over the rounds of each round's figures: the noisy machine's spread averaged out."""
    print(f"\nmedians over {len(rounds)} rounds")
    print(f"{'engine':<19} {'p50 ms':>8} {'p95 ms':>8} {'+p50 ms':>8} {'+p95 ms':>8}")
    for position, result in enumerate(rounds[0]):
        same = [results[position] for results in rounds]
        done = [(results, r) for results, r in zip(rounds, same, strict=True) if r["latencies"]]
        if not done:
            continue
        p50 = statistics.median(percentile(r["latencies"], 50) for _, r in done) * 1000  # type: ignore[arg-type]
        p95 = statistics.median(percentile(r["latencies"], 95) for _, r in done) * 1000  # type: ignore[arg-type]
        add50 = statistics.median(added(results, r, 50) for results, r in done)
        add95 = statistics.median(added(results, r, 95) for results, r in done)
        print(f"{result['engine']:<19} {p50:8.0f} {p95:8.0f} {add50:+8.0f} {add95:+8.0f}")


def pool(rounds: list[list[dict[str, object]]]) -> list[dict[str, object]]:
    """Every round's sentences together, per engine (for the stage medians and the plot)."""
    pooled: dict[str, dict[str, object]] = {}
    for results in rounds:
        for result in results:
            into = pooled.setdefault(
                str(result["engine"]), {"engine": result["engine"], "latencies": [], "stages": []}
            )
            for field in ("latencies", "stages"):
                target, source = into[field], result[field]
                assert isinstance(target, list) and isinstance(source, list)
                target.extend(source)
    return list(pooled.values())


def print_stages(results: list[dict[str, object]]) -> None:
    """Where each model engine's latency goes (medians over the sentences, ms)."""
    print("\nmedian ms per stage: input (speech end -> model finds the turn end), model (-> its first")
    print("audio leaves), output (-> first audio at the listener: bot receive + playout + encode + Janus)")
    print(f"{'engine':<12} {'input':>8} {'model':>8} {'output':>8} {'sentences':>10}")
    for result in results:
        stages = result.get("stages")
        if not isinstance(stages, list) or not stages:
            continue
        medians = [statistics.median(s[i] for s in stages) * 1000 for i in range(3)]
        print(f"{result['engine']:<12} " + " ".join(f"{m:8.0f}" for m in medians) + f" {len(stages):>10}")


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


async def capacity(args: argparse.Namespace) -> None:
    print(f"{'meetings':>8} {'bot CPU % of a core (each)':>30} {'bot peak RSS MiB':>26} {'underruns':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        async with JanusServer() as janus:
            fake = FakeRealtimeServer(options=FakeOptions(heartbeat_ms=1000))
            await fake.start()
            try:
                for count in range(1, args.max_meetings + 1):
                    rigs = [
                        InterpreterRig(
                            janus,
                            "translate",
                            Path(tmp) / f"{count}-{i}",
                            fake=fake,
                            room=int(f"{count}{i:02d}"),
                        )
                        for i in range(count)
                    ]
                    try:
                        for rig in rigs:
                            await rig.start([("Alice", "en"), ("Beatriz", "es")])
                        before = [cpu_seconds(rig.bot.proc.pid) for rig in rigs if rig.bot]
                        started = time.monotonic()
                        await asyncio.gather(*(talk(rig, args.seconds) for rig in rigs))
                        elapsed = time.monotonic() - started
                        after = [cpu_seconds(rig.bot.proc.pid) for rig in rigs if rig.bot]
                        rss = [peak_rss_mib(rig.bot.proc.pid) for rig in rigs if rig.bot]
                        metrics = [await rig.metrics() for rig in rigs]
                    finally:
                        for rig in rigs:
                            await rig.aclose()
                    cpu = [100 * (b - a) / elapsed for a, b in zip(before, after, strict=True)]
                    underruns = sum(m.get(UNDERRUNS, 0.0) for m in metrics)
                    cpu_text = " ".join(f"{c:.0f}" for c in cpu)
                    rss_text = " ".join(f"{r:.0f}" for r in rss)
                    print(f"{count:>8} {cpu_text:>30} {rss_text:>26} {underruns:>10.0f}")
                    if underruns > 0:
                        break
            finally:
                await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--utterances", type=int, default=8)
    lat.add_argument("--rounds", type=int, default=1, help="repeat, and print the medians over rounds")
    lat.add_argument(
        "--before",
        type=Path,
        help="also run the bot from this source tree (same fake and Janus), interleaved: before/after",
    )
    lat.add_argument("--plot", type=Path, default=Path("demo-output/bench-meeting-latency.png"))
    cap = sub.add_parser("capacity")
    cap.add_argument("--max-meetings", type=int, default=4)
    cap.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    enter_private_network()  # before any thread exists
    asyncio.run(latency(args) if args.what == "latency" else capacity(args))


if __name__ == "__main__":
    main()
