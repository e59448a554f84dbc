"""The README opens with the two commands .ci/run executes: install + demo, install + test suite."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_commands", ROOT / "scripts" / "readme_commands.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


opening_commands = _load_script().opening_commands


def test_the_readme_opens_with_install_and_demo_then_install_and_tests() -> None:
    first, second = opening_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert first == "bash scripts/install.sh && .venv/bin/translator-bot demo"
    assert second == "bash scripts/test.sh"
    # The test command installs the system packages and the dev tools itself before testing.
    test_script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "bash scripts/install.sh --dev" in test_script
    assert ".venv/bin/pytest" in test_script


def test_ci_runs_exactly_what_the_readme_says() -> None:
    printed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_commands.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert printed == opening_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/readme_commands.py" in ci and 'bash -c "$command"' in ci


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "# t\n\n```bash\n# one\nbash a.sh\n\n  # two\nbash b.sh\n```\n```bash\nlater\n```\n",
            ["bash a.sh", "bash b.sh"],
        ),
        ("```bash\n```\n", []),
    ],
)
def test_opening_commands_reads_the_first_bash_block(text: str, expected: list[str]) -> None:
    assert opening_commands(text) == expected


def test_a_readme_without_the_block_is_an_error() -> None:
    with pytest.raises(SystemExit, match="no ```bash block"):
        opening_commands("# nothing here\n")


def _ci_copy(tmp_path: Path, readme: str) -> Path:
    """.ci/run and the script it reads, beside a README of the test's choosing."""
    (tmp_path / ".ci").mkdir()
    (tmp_path / "scripts").mkdir()
    for part in (".ci/run", "scripts/readme_commands.py"):
        (tmp_path / part).write_text((ROOT / part).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    return tmp_path / ".ci" / "run"


def test_ci_runs_the_commands_in_order_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    run = _ci_copy(tmp_path, "# t\n```bash\necho first > ran.txt && false\necho second >> ran.txt\n```\n")
    done = subprocess.run(["bash", str(run)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0
    assert (tmp_path / "ran.txt").read_text(encoding="utf-8") == "first\n"


@pytest.mark.parametrize("readme", ["# no commands here\n", "```bash\nonly one\n```\n"])
def test_ci_fails_when_the_readme_does_not_give_its_two_commands(tmp_path: Path, readme: str) -> None:
    run = _ci_copy(tmp_path, readme)
    done = subprocess.run(["bash", str(run)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "::: .ci/run" not in done.stdout


def test_ci_fails_when_the_command_list_cannot_be_read(tmp_path: Path) -> None:
    run = _ci_copy(tmp_path, "```bash\ntrue\ntrue\n```\n")
    (tmp_path / "scripts" / "readme_commands.py").unlink()
    done = subprocess.run(["bash", str(run)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0 and "::: .ci/run" not in done.stdout
