"""The baseline tree of the before/after benchmarks, with real git on a throw-away repository: the ref's
files, the bot importing from the tree it is meant to, and nothing left behind on any way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.baseline import (
    KNOWN_REFS,
    BaselineError,
    SourceTree,
    check_imports_from,
    describe_checkout,
    materialised,
    resolve_commit,
    source_trees,
)


def run_git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose translator_bot says which version it is: 'old' at tag v1, 'new' at HEAD."""
    path = tmp_path / "repo"
    (path / "translator_bot").mkdir(parents=True)
    run_git(path, "init", "-q")
    init = path / "translator_bot" / "__init__.py"
    init.write_text("VERSION = 'old'\n")
    run_git(path, "add", ".")
    run_git(path, "commit", "-q", "-m", "old")
    run_git(path, "tag", "v1")
    init.write_text("VERSION = 'new'\n")
    run_git(path, "commit", "-q", "-am", "new")
    return path


def worktrees(repo: Path) -> list[str]:
    return [
        line
        for line in run_git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def test_the_baseline_has_the_refs_files_and_is_gone_afterwards(repo: Path) -> None:
    with materialised("v1", repo) as (path, commit):
        assert (path / "translator_bot" / "__init__.py").read_text() == "VERSION = 'old'\n"
        assert commit == run_git(repo, "rev-parse", "--short", "v1")
        assert len(worktrees(repo)) == 2
    assert not path.parent.exists()
    assert len(worktrees(repo)) == 1
    assert (repo / "translator_bot" / "__init__.py").read_text() == "VERSION = 'new'\n"


def test_the_baseline_is_removed_when_the_bench_fails(repo: Path) -> None:
    with pytest.raises(RuntimeError, match="bench broke"), materialised("v1", repo) as (path, _):
        raise RuntimeError("bench broke")
    assert not path.parent.exists()
    assert len(worktrees(repo)) == 1


def test_the_baseline_is_removed_when_the_bench_is_terminated(repo: Path) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, materialised("v1", repo) as (path, _):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs as os.kill returns
        pytest.fail("SIGTERM did not unwind the with block")
    assert stopped.value.code == 128 + signal.SIGTERM
    assert not path.parent.exists()
    assert len(worktrees(repo)) == 1
    assert signal.getsignal(signal.SIGTERM) is previous


def test_an_unknown_ref_is_an_error_that_leaves_nothing(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="no-such-ref"), materialised("no-such-ref", repo):
        pass
    assert len(worktrees(repo)) == 1


def test_a_known_baseline_name_resolves_in_a_clone_without_its_tag(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh clone has no tags: `perf-baseline` must still name the same commit."""
    old = run_git(repo, "rev-parse", "v1")
    monkeypatch.setitem(KNOWN_REFS, "the-old-code", old)
    with pytest.raises(BaselineError):
        resolve_commit("the-old-code-missing", repo)  # a name that is not known stays an error
    assert resolve_commit("the-old-code", repo) == run_git(repo, "rev-parse", "--short", "v1")
    with materialised("the-old-code", repo) as (path, commit):
        assert (path / "translator_bot" / "__init__.py").read_text() == "VERSION = 'old'\n"
        assert old.startswith(commit)


def test_source_trees_are_before_then_after_and_import_from_themselves(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as in container images and this workplace's shells: Python writes no bytecode of its own, so
    # what is there was compiled by source_trees (a start-up figure must not measure the compiler)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    with source_trees(baseline_ref="v1", repo=repo) as trees:
        assert [t.label for t in trees] == ["before", "after"]
        before, after = trees
        assert before.describe.startswith("v1 (")
        assert after.path == repo
        for tree, version in ((before, "old"), (after, "new")):
            out = subprocess.run(
                [sys.executable, "-c", "import translator_bot; print(translator_bot.VERSION)"],
                env={**os.environ, **tree.bot_env()},
                cwd="/",
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert out == version
            assert list((tree.path / "translator_bot").glob("__pycache__/*.pyc"))
    assert not before.path.exists()


def test_without_a_baseline_there_is_only_after(repo: Path) -> None:
    with source_trees(repo=repo) as trees:
        assert [t.label for t in trees] == ["after"]


def test_an_existing_tree_can_serve_as_baseline(repo: Path, tmp_path: Path) -> None:
    with materialised("v1", repo) as (path, _), source_trees(baseline_tree=path, repo=repo) as trees:
        assert trees[0].path == path.resolve()
        assert trees[0].label == "before"


def test_a_tree_the_bot_would_not_import_from_is_refused(tmp_path: Path) -> None:
    """A tree without the package: the import falls through to the installed one, which would measure
    the wrong code under the baseline's name."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BaselineError, match=r"not from|does not import"):
        check_imports_from(SourceTree("before", empty, "empty"))


def test_describe_says_whether_the_checkout_has_changes(repo: Path, tmp_path: Path) -> None:
    commit = run_git(repo, "rev-parse", "--short", "HEAD")
    assert describe_checkout(repo) == commit
    (repo / "translator_bot" / "__init__.py").write_text("VERSION = 'newer'\n")
    assert describe_checkout(repo) == f"{commit} + uncommitted changes"
    assert describe_checkout(tmp_path) == "not a git checkout"
