"""Start-up time, import cost and peak memory of `translator-bot join`, against a baseline in the same run.

    python -m tests.bench.bench_startup [--runs 3] [--talk-seconds 20] [--baseline-ref main]

For each source tree (this checkout, and with --baseline-ref a temporary `git worktree` of that commit, or
--baseline-tree an existing one), run after run, alternating the trees so the machine's noise falls on both:

- start-up: two people are already in the meeting (real Janus in a private network namespace, the fake
  model server in its own process unless --fake in-process); then `translator-bot join` is exec'd (the
  console script, as a user runs it) and the bench notes, from the exec: the "joined meeting" log line,
  the "publishing ... as participant" line of the first interpreter feed, the first audio frame of the
  interpreter feed at a listener (the feed is flowing) and at the last listener (every feed flowing),
  and the bot hearing every participant with every lane connected (ready to interpret);
- peak RSS: VmHWM of the bot after both people talk in turns for --talk-seconds (what a container's
  memory limit must hold for one two-party meeting);
- imports: a separate run of the same join under PYTHONPROFILEIMPORTTIME (timings only mean something
  without it), until the first feed flows: the total import time and the top packages by own time.

Medians of the runs are printed per tree. Targets: first feed flowing <= 1 s, peak RSS <= 110 MiB.
Needs root (or user namespaces) for the private network namespace, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.bench.baseline import compile_package, materialised
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import utterance
from translator_bot.system.netns import enter_private_network
from translator_bot.testbed.bot import BotProcess
from translator_bot.testbed.fake_process import FAKE_KINDS, ModelServer, running_fake
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.participant import SimParticipant
from translator_bot.testbed.rig import FAKE_KEY, free_port

REPO = Path(__file__).resolve().parents[2]
PEOPLE = (("Alice", "en"), ("Beatriz", "es"))
SENTENCES = ("u1", "u2", "u3", "u4")
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
MARKS = ("joined meeting", "feed published", "feed flowing", "every feed flowing", "ready to interpret")
TIMEOUT_S = 30.0


@dataclass
class Tree:
    name: str
    path: Path
    marks: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rss_mib: list[float] = field(default_factory=list)
    ready_rss_mib: list[float] = field(default_factory=list)
    file_rss_mib: list[float] = field(default_factory=list)  # RssFile at the end (see resident_mib)
    env: dict[str, str] = field(default_factory=dict)
    import_total_ms: list[float] = field(default_factory=list)
    import_by_package_ms: list[dict[str, float]] = field(default_factory=list)


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a process so far (VmHWM), in MiB."""
    return resident_mib(pid)["VmHWM"]


def resident_mib(pid: int) -> dict[str, float]:
    """VmHWM, VmRSS and its parts (RssAnon, RssFile, RssShmem) of a process now, in MiB.

    RssFile is the shared libraries' and other mapped files' pages the process has mapped, and how
    many a touch maps depends on the kernel and the filesystem, not on the bot: with large page-cache
    folios (ext4 on recent kernels) one touched page can map a whole folio. On one such machine the
    same imports measured ~59 MiB of it early in a session, ~45 MiB later (and from a copy of the
    environment on tmpfs), as the page cache's folios had been made: the peak RSS of the same code
    moves by that much between machines and even between runs; RssAnon is the bot's own."""
    wanted = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in wanted:
            found[name] = int(value.split()[0]) / 1024
    if set(found) != set(wanted):
        raise RuntimeError(f"/proc/{pid}/status lacks {sorted(set(wanted) - set(found))}")
    return found


def import_profile(lines: list[str]) -> tuple[float, dict[str, float]]:
    """From PYTHONPROFILEIMPORTTIME lines: the total (top-level cumulative) in ms and own time per
    top-level package in ms."""
    total_us = 0
    own: dict[str, float] = defaultdict(float)
    for line in lines:
        match = IMPORT_LINE.match(line)
        if match is None:
            continue
        self_us, cumulative_us, indent, module = match.groups()
        if len(indent) == 1:  # "| name": imported by the program itself, not by another import
            total_us += int(cumulative_us)
        own[module.split(".")[0]] += int(self_us) / 1000
    return total_us / 1000, dict(own)


class Meeting:
    """Two people in the Janus room, then the bot of one source tree joining them."""

    def __init__(self, janus: JanusServer, fake: ModelServer, tree: Tree, workdir: Path) -> None:
        self.janus, self.fake, self.tree, self.workdir = janus, fake, tree, workdir
        self.people: list[SimParticipant] = []
        self.bot: BotProcess | None = None
        self.metrics_port = free_port()

    def environ(self, profile_imports: bool) -> dict[str, str]:
        env = self.janus.environ()
        env.update(
            {
                "PYTHONPATH": str(self.tree.path),
                "OPENAI_API_KEY": FAKE_KEY,
                "OPENAI_BASE_URL": self.fake.base_url,
                "TRANSLATOR_ENGINE": "translate",
                "TRANSLATOR_TRANSCRIPT_DIR": str(self.workdir),
                "TRANSLATOR_METRICS_HOST": "127.0.0.1",
                "TRANSLATOR_METRICS_PORT": str(self.metrics_port),
                "TRANSLATOR_LOG_LEVEL": "INFO",
            }
        )
        env.pop("PYTHONPROFILEIMPORTTIME", None)
        env.update(self.tree.env)
        if profile_imports:
            env["PYTHONPROFILEIMPORTTIME"] = "1"
        return env

    async def start(self, profile_imports: bool) -> dict[str, float]:
        """Seconds from the bot's exec to each mark."""
        for name, language in PEOPLE:
            sim = SimParticipant(self.janus.url, self.janus.room, name, language)
            await sim.join()
            self.people.append(sim)
        env = self.environ(profile_imports)
        started = time.monotonic()
        self.bot = await BotProcess.start(["join", str(self.janus.room)], env)
        marks: dict[str, float] = {}

        async def line(mark: str, pattern: str) -> None:
            assert self.bot is not None
            await self.bot.wait_line(pattern, TIMEOUT_S)
            marks[mark] = time.monotonic() - started

        async def flowing(sim: SimParticipant) -> None:
            listening = await sim.subscribe_interpreter(timeout_s=TIMEOUT_S)
            recorder = await listening.wait_track(TIMEOUT_S)
            await recorder.wait_first_frame(TIMEOUT_S)
            marks.setdefault("feed flowing", time.monotonic() - started)
            marks["every feed flowing"] = time.monotonic() - started

        await asyncio.gather(
            line("joined meeting", r"joined meeting"),
            line("feed published", r"publishing .* as participant"),
            *(flowing(sim) for sim in self.people),
        )
        await self.wait_ready()
        marks["ready to interpret"] = time.monotonic() - started
        return marks

    async def wait_ready(self) -> None:
        """The bot hears every participant and every lane's model session is connected."""
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        async with asyncio.timeout(TIMEOUT_S), aiohttp.ClientSession() as http:
            while True:
                async with http.get(url) as reply:
                    health = await reply.json()
                heard = health.get("frames_heard", {})
                lanes = health.get("lanes", {})
                if (
                    all(heard.get(str(sim.id)) for sim in self.people)
                    and len(lanes) == len(self.people)
                    and all(state == "connected" for state in lanes.values())
                ):
                    return
                await asyncio.sleep(0.02)

    async def talk(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        turn = 0
        while time.monotonic() < deadline:
            sim = self.people[turn % 2]
            uid = f"{SENTENCES[turn % len(SENTENCES)]}-{PEOPLE[turn % 2][1]}"
            sim.say(uid)
            async with asyncio.timeout(30):
                while sim.track is not None and sim.track.busy:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.6 + utterance(uid).duration_ms / 1000 * 1.4 + 0.5)
            turn += 1

    async def aclose(self) -> None:
        if self.bot is not None and self.bot.proc.returncode is None:
            self.bot.proc.send_signal(signal.SIGTERM)
            try:
                await self.bot.wait(10)
            except TimeoutError:
                await self.bot.kill()
        if self.bot is not None:
            await self.bot.kill()  # reaps and stops the log readers
        for sim in self.people:
            with contextlib.suppress(Exception):
                await sim.close()


async def measured_run(
    janus: JanusServer, fake: ModelServer, tree: Tree, workdir: Path, talk_seconds: float
) -> None:
    meeting = Meeting(janus, fake, tree, workdir)
    try:
        marks = await meeting.start(profile_imports=False)
        assert meeting.bot is not None
        ready_rss = peak_rss_mib(meeting.bot.proc.pid)
        await meeting.talk(talk_seconds)
        resident = resident_mib(meeting.bot.proc.pid)
        rss = resident["VmHWM"]
    finally:
        await meeting.aclose()
    for mark, seconds in marks.items():
        tree.marks[mark].append(seconds)
    tree.rss_mib.append(rss)
    tree.ready_rss_mib.append(ready_rss)
    tree.file_rss_mib.append(resident["RssFile"])
    text = " ".join(f"{m} {marks[m]:.2f} s;" for m in MARKS)
    parts = ", ".join(f"{resident[part]:.0f} {part}" for part in ("RssAnon", "RssFile", "RssShmem"))
    print(
        f"  {tree.name:<9} {text} peak RSS {ready_rss:.0f} MiB when ready, {rss:.0f} MiB"
        f" (resident at the end: {parts})",
        flush=True,
    )


async def import_run(janus: JanusServer, fake: ModelServer, tree: Tree, workdir: Path) -> None:
    meeting = Meeting(janus, fake, tree, workdir)
    try:
        await meeting.start(profile_imports=True)
        assert meeting.bot is not None
        lines = list(meeting.bot.lines)
    finally:
        await meeting.aclose()
    total, by_package = import_profile(lines)
    tree.import_total_ms.append(total)
    tree.import_by_package_ms.append(by_package)
    print(f"  {tree.name:<9} imports until ready: {total:.0f} ms", flush=True)


def report(trees: list[Tree], top: int) -> None:
    print("\nmedians over the runs (seconds from the exec of `translator-bot join`, two people in the room)")
    print(f"{'':<24}" + "".join(f"{t.name:>12}" for t in trees))
    for mark in MARKS:
        row = "".join(f"{statistics.median(t.marks[mark]):>12.2f}" for t in trees)
        print(f"{mark + ' s':<24}{row}")
    print(
        f"{'peak RSS at ready MiB':<24}"
        + "".join(f"{statistics.median(t.ready_rss_mib):>12.0f}" for t in trees)
    )
    print(f"{'peak RSS MiB':<24}" + "".join(f"{statistics.median(t.rss_mib):>12.0f}" for t in trees))
    print(
        f"{'  file-backed at end MiB':<24}"
        + "".join(f"{statistics.median(t.file_rss_mib):>12.0f}" for t in trees)
    )
    print(
        f"{'imports total ms':<24}" + "".join(f"{statistics.median(t.import_total_ms):>12.0f}" for t in trees)
    )
    print("(targets: feed flowing <= 1 s, peak RSS <= 110 MiB; file-backed: see resident_mib)")
    for tree in trees:
        packages: dict[str, list[float]] = defaultdict(list)
        for run in tree.import_by_package_ms:
            for package in {p for r in tree.import_by_package_ms for p in r}:
                packages[package].append(run.get(package, 0.0))
        medians = sorted(((statistics.median(v), p) for p, v in packages.items()), reverse=True)
        listed = ", ".join(f"{p} {ms:.0f}" for ms, p in medians[:top])
        print(f"\n{tree.name}: own import time by top-level package, ms: {listed}")


async def bench(args: argparse.Namespace, trees: list[Tree], workdir: Path) -> None:
    async with JanusServer() as janus, running_fake(args.fake, FakeOptions(heartbeat_ms=1000)) as fake:
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}", flush=True)
            order = trees if run % 2 == 0 else list(reversed(trees))
            for tree in order:
                await measured_run(janus, fake, tree, workdir / f"{tree.name}-{run}", args.talk_seconds)
            for tree in order:
                await import_run(janus, fake, tree, workdir / f"{tree.name}-{run}-imports")
    report(trees, args.top)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--talk-seconds", type=float, default=20.0)
    parser.add_argument("--top", type=int, default=10, help="packages listed by import time")
    parser.add_argument(
        "--fake",
        choices=FAKE_KINDS,
        default="process",
        help="where the fake model server runs (in-process: on the bench's own event loop, to compare)",
    )
    base = parser.add_mutually_exclusive_group()
    base.add_argument("--baseline-ref", help="a commit to measure too, from a temporary git worktree")
    base.add_argument("--baseline-tree", type=Path, help="a source tree to measure too")
    parser.add_argument(
        "--bot-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="measure this tree a second time with this environment variable set (repeatable)",
    )
    args = parser.parse_args()
    enter_private_network()  # before any thread exists
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        trees = [Tree("this", REPO)]
        if args.bot_env:
            flags = dict(item.split("=", 1) for item in args.bot_env)
            trees.append(Tree("this+env", REPO, env=flags))
        if args.baseline_ref:
            worktree, _ = stack.enter_context(materialised(args.baseline_ref))
            trees.insert(0, Tree(f"base {args.baseline_ref}"[:11], worktree))
        elif args.baseline_tree:
            trees.insert(0, Tree("baseline", args.baseline_tree.resolve()))
        for path in {tree.path for tree in trees}:
            compile_package(path)  # what is measured is the bot starting, not Python compiling it
        asyncio.run(bench(args, trees, Path(tmp)))


if __name__ == "__main__":
    main()
