"""Every performance figure the project has targets for, before and after, in one run and one table.

    python -m tests.bench.perf_report --baseline-ref perf-baseline [--runs 4]
    python -m tests.bench.perf_report --baseline-ref perf-baseline --quick    # a minutes-long check

The baseline tree is materialised once (tests/bench/baseline.py) and each benchmark runs as its own
process against it, its progress lines and table printed as it goes:
- `bench_meeting capacity`: bot CPU per two-party meeting while people talk, meetings per core, peak RSS;
- `bench_webinar` (two-party and per-language webinar, in plain rooms and in rooms with Opus DTX, where
  the silent listeners send almost nothing): the webinar's bot CPU over a two-party meeting's;
- `bench_meeting latency`: what each engine adds over the pass-through, p50 and p95;
- `bench_startup`, when this checkout has it: start-up to the first feed flowing, peak RSS (its own
  table, which is not repeated in the summary).
Then the summary: every figure of the first three side by side, with the change and the target; a
bench's DTX-room columns ("<tree>+dtx") become rows of their own ("..., DTX rooms") under the same
tree columns, so the summary keeps one column per tree. A bench
that fails is named in the summary and makes the exit status non-zero; its figures are left out, not
guessed. Needs root (or user namespaces), like the benchmarks it runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from tests.bench.baseline import REPO, SourceTree, add_arguments, from_arguments, legend, machine_load
from tests.bench.figures import DTX_SUFFIX, Figure, figures_from_json, table


@dataclass(frozen=True)
class Bench:
    """One benchmark program of the report: its module, arguments, and the title of its rows."""

    title: str
    module: str
    args: tuple[str, ...]
    writes_json: bool = True  # and takes the before/after benches' options (--json, --no-warmup)


def benches(args: argparse.Namespace) -> list[Bench]:
    seconds = "10" if args.quick else str(args.seconds)
    utterances = "3" if args.quick else str(args.utterances)
    chosen = [
        Bench("capacity", "tests.bench.bench_meeting", ("capacity", "--meetings", "2", "--seconds", seconds)),
        Bench(
            "webinar",
            "tests.bench.bench_webinar",
            (
                "--seconds",
                seconds,
                "--dtx",
                "both",
                "--cases",
                "two-party per-listener",
                "webinar per-language",
            ),
        ),
        Bench(
            "latency",
            "tests.bench.bench_meeting",
            ("latency", "--utterances", utterances, "--plot", str(args.plot)),
        ),
    ]
    if (REPO / "tests" / "bench" / "bench_startup.py").exists():
        talk = "5" if args.quick else "20"
        chosen.append(
            Bench("start-up", "tests.bench.bench_startup", ("--talk-seconds", talk), writes_json=False)
        )
    return [b for b in chosen if not args.only or b.title in args.only]


def fold_variants(figures: list[Figure], labels: list[str]) -> list[Figure]:
    """A bench's figures with one value per tree of `labels`: values under a variant column
    ("<label>+dtx") move to a row of their own, named for the variant, after the plain row. The summary
    then keeps the report's tree columns, and the change and target columns still compare the trees."""
    rows: list[Figure] = []
    for figure in figures:
        rows.append(replace(figure, values={k: v for k, v in figure.values.items() if k in labels}))
        variants = {k: v for k, v in figure.values.items() if k.endswith(DTX_SUFFIX)}
        if variants:
            values = {k.removesuffix(DTX_SUFFIX): v for k, v in variants.items()}
            rows.append(replace(figure, name=f"{figure.name}, DTX rooms", values=values))
    return rows


def run_bench(bench: Bench, runs: int, warmup: bool, baseline: SourceTree | None, json_path: Path) -> int:
    """Run one bench as a child process, its output straight to ours; its exit status. Stopped with us:
    SIGTERM lets it stop its Janus and bots before it goes."""
    command = [sys.executable, "-m", bench.module, *bench.args, "--runs", str(runs)]
    if baseline is not None:
        command += ["--baseline-tree", str(baseline.path)]
    if bench.writes_json:
        command += ["--json", str(json_path)] + ([] if warmup else ["--no-warmup"])
    print(f"\n=== {bench.title}: {' '.join(command[1:])}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the benches' own code: this checkout's
    with subprocess.Popen(command, env=env, cwd=REPO) as child:
        try:
            return child.wait()
        except BaseException:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
            raise


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    parser.add_argument("--runs", type=int, help="runs per tree in every bench (default 4; 1 with --quick)")
    parser.add_argument("--seconds", type=float, default=30.0, help="talking time per capacity/webinar run")
    parser.add_argument("--utterances", type=int, default=8, help="sentences per engine and latency run")
    parser.add_argument(
        "--quick", action="store_true", help="short runs, no warm-up: checks the harness, not the code"
    )
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="no uncounted first pass")
    parser.add_argument("--only", nargs="+", choices=["capacity", "webinar", "latency", "start-up"])
    parser.add_argument("--plot", type=Path, default=Path("demo-output/bench-meeting-latency.png"))
    args = parser.parse_args()
    if args.runs is None:
        args.runs = 1 if args.quick else 4
    rows: list[Figure] = []
    failed: list[str] = []
    with from_arguments(args) as trees, tempfile.TemporaryDirectory() as tmp:
        baseline = trees[0] if len(trees) > 1 else None
        for bench in benches(args):
            json_path = Path(tmp) / f"{bench.title}.json"
            code = run_bench(bench, args.runs, args.warmup and not args.quick, baseline, json_path)
            if code != 0:
                failed.append(f"{bench.title} (exit {code})")
                continue
            if bench.writes_json:
                figures, _ = figures_from_json(json_path.read_text())
                rows += [
                    replace(f, name=f"{bench.title}: {f.name}")
                    for f in fold_variants(figures, [t.label for t in trees])
                ]
        print(f"\n=== summary: medians of {args.runs} runs per tree{' (--quick)' if args.quick else ''}")
        print(legend(trees))
        print(machine_load())
        print(table(rows, [t.label for t in trees]) if rows else "(no figures: see the tables above)")
        if failed:
            print(f"FAILED, figures left out: {', '.join(failed)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
