"""The source trees a before/after benchmark runs the bot from: this checkout ("after") and, optionally,
a baseline ("before") materialised from a git ref as a temporary detached `git worktree`.

Only the bot process changes between the trees: it is started as `translator-bot join` (the shared
console script) with PYTHONPATH set to the tree, which puts that tree's `translator_bot` ahead of the
editable install's. Janus, the fake model server and the simulated people all come from this checkout
and are the same for both trees, so a difference in the figures is the bot's.

    with source_trees(args) as trees:        # [before, after] or [after]
        for run, tree in run_order(trees, args.runs, args.warmup):
            rig = InterpreterRig(..., env=tree.bot_env())   # run == WARMUP: measured, not counted

The baseline worktree is removed (and git's record of it pruned) on every way out: normal end, an
exception, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from tests.bench.figures import Figure, figures_to_json, table

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "translator_bot"
# Baselines the README and the benches name. A tag lives in the clone that made it, and a fresh clone
# (CI's, a contributor's) has none, so the name resolves to its commit here when git does not know it.
KNOWN_REFS = {
    # the code before the round of performance work (issue 14's "before")
    "perf-baseline": "0e7d5768ebed53b54e5c9d3d12e7a48c7aafee7b",
}


class BaselineError(RuntimeError):
    """The baseline tree could not be made or would not run the bot from where it should."""


@dataclass(frozen=True)
class SourceTree:
    """A tree the bot runs from. `label` heads its column ("before", "after"); `describe` says what it
    is (ref and commit) for the lines above the table."""

    label: str
    path: Path
    describe: str

    def bot_env(self) -> dict[str, str]:
        """Environment entries that make `translator-bot` import this tree's package."""
        return {"PYTHONPATH": str(self.path)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--baseline-ref / --baseline-tree, as every before/after bench spells them."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--baseline-ref",
        metavar="REF",
        help="also run the bot from this git ref (e.g. perf-baseline), from a temporary git worktree",
    )
    group.add_argument(
        "--baseline-tree",
        type=Path,
        metavar="PATH",
        help="also run the bot from this existing source tree (another checkout or worktree)",
    )


def git(*args: str, repo: Path = REPO) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BaselineError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def resolve_commit(ref: str, repo: Path = REPO) -> str:
    """The short commit `ref` names: what git resolves it to, else the commit of a KNOWN_REFS name."""
    try:
        return git("rev-parse", "--verify", "--short", f"{ref}^{{commit}}", repo=repo)
    except BaselineError:
        if ref not in KNOWN_REFS:
            raise
    return git("rev-parse", "--verify", "--short", f"{KNOWN_REFS[ref]}^{{commit}}", repo=repo)


def compile_package(path: Path) -> None:
    """Compile the tree's package to bytecode, as an installed package and a checkout that has run
    before have it. Where PYTHONDONTWRITEBYTECODE is set (container images set it), Python would
    otherwise compile every module on every start, and a start-up or memory figure would measure the
    compiler (~0.4 s and a few MiB here) instead of the bot."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(path / PACKAGE)], check=True, stdout=subprocess.DEVNULL
    )


def describe_checkout(path: Path) -> str:
    """'0e7d576' or '0e7d576 + uncommitted changes' for a checkout; 'not a git checkout' otherwise."""
    try:
        commit = git("rev-parse", "--short", "HEAD", repo=path)
        dirty = git("status", "--porcelain", "--untracked-files=no", repo=path)
    except BaselineError:
        return "not a git checkout"
    return f"{commit} + uncommitted changes" if dirty else commit


def check_imports_from(tree: SourceTree) -> None:
    """Fail unless a Python started with the tree's bot environment imports the package from the tree:
    a baseline silently measured from the wrong tree would report no change."""
    env = {**os.environ, **tree.bot_env()}
    done = subprocess.run(
        [sys.executable, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    if done.returncode != 0:
        raise BaselineError(f"{tree.describe}: {PACKAGE} does not import: {done.stderr.strip()}")
    imported = Path(done.stdout.strip()).resolve()
    if not imported.is_relative_to(tree.path.resolve()):
        raise BaselineError(f"{tree.describe}: {PACKAGE} imports from {imported}, not from {tree.path}")


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises SystemExit while inside, so `finally` blocks (the worktree's removal) still run;
    by default it would end the process on the spot."""

    def unwind(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def materialised(ref: str, repo: Path = REPO) -> Iterator[tuple[Path, str]]:
    """The tree of `ref` as a detached worktree in a temporary directory: (path, short commit).
    Removed, and git's record of it pruned, on every way out."""
    commit = resolve_commit(ref, repo)
    parent = Path(tempfile.mkdtemp(prefix="translator-bot-baseline-"))
    path = parent / "tree"
    try:
        with _sigterm_unwinds():
            git("worktree", "add", "--detach", str(path), commit, repo=repo)
            yield path, commit
    finally:
        with contextlib.suppress(BaselineError):
            git("worktree", "remove", "--force", str(path), repo=repo)
        shutil.rmtree(parent, ignore_errors=True)
        with contextlib.suppress(BaselineError):
            git("worktree", "prune", repo=repo)


@contextlib.contextmanager
def source_trees(
    baseline_ref: str | None = None, baseline_tree: Path | None = None, repo: Path = REPO
) -> Iterator[list[SourceTree]]:
    """[before, after] with a baseline (a ref or an existing tree), [after] without one. Each tree is
    checked to be the one the bot will import, and its bytecode compiled, before anything is measured.
    While inside, SIGTERM unwinds like Ctrl-C, so a bench stopped by a process manager still stops its
    Janus and bots."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_sigterm_unwinds())  # the bench's own cleanup (Janus, bots) runs too
        trees: list[SourceTree] = []
        if baseline_ref is not None:
            path, commit = stack.enter_context(materialised(baseline_ref, repo))
            trees.append(SourceTree("before", path, f"{baseline_ref} ({commit})"))
        elif baseline_tree is not None:
            path = baseline_tree.resolve()
            trees.append(SourceTree("before", path, f"{path} ({describe_checkout(path)})"))
        trees.append(SourceTree("after", repo, f"this checkout, {repo} ({describe_checkout(repo)})"))
        for tree in trees:
            check_imports_from(tree)
            compile_package(tree.path)
        yield trees


def from_arguments(args: argparse.Namespace) -> contextlib.AbstractContextManager[list[SourceTree]]:
    return source_trees(args.baseline_ref, args.baseline_tree)


def machine_load() -> str:
    """How busy the machine was: figures taken at a load average above the core count are the noise's
    as much as the code's, whatever their medians say."""
    one, five, fifteen = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} cores, load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min)"
    )


def legend(trees: list[SourceTree]) -> str:
    """The lines above a table that say what each column ran."""
    return "\n".join(f"{tree.label:>6}: {tree.describe}" for tree in trees)


def add_report_arguments(parser: argparse.ArgumentParser, runs: int) -> None:
    """The options every before/after bench shares: the baseline, how many runs, where to write JSON."""
    add_arguments(parser)
    parser.add_argument("--runs", type=int, default=runs, help="runs per tree; the table shows medians")
    parser.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the first, uncounted pass over the trees (cold caches, a fresh Janus)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the figures here (read by perf_report)"
    )


def print_figures(title: str, figures: list[Figure], trees: list[SourceTree], json_path: Path | None) -> None:
    """The legend, the before/after table under its title, and the JSON copy when asked for."""
    labels = [tree.label for tree in trees]
    print(f"\n{title}\n{legend(trees)}\n{machine_load()}\n{table(figures, labels)}", flush=True)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(figures_to_json(figures, labels))
