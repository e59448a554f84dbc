"""The import layering of pyproject.toml's [tool.importlinter]: every module of the package has a
place in it, scripts/test.sh checks it before the tests, and the checker really fails on an import
that goes the wrong way (shown on a copy of the package with one bad import added)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "translator_bot"


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = config["tool"]["importlinter"]["contracts"]
    assert isinstance(found, list)
    return found


def layered_modules() -> set[str]:
    (layers,) = [c for c in contracts() if c["type"] == "layers"]
    names: set[str] = set()
    for layer in layers["layers"]:  # type: ignore[attr-defined]
        names.update(name.strip() for name in re.split(r"[|:]", layer))
    return names


def lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    if beside.is_file():
        return str(beside)
    found = shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports (import-linter) is not installed: bash scripts/install.sh --dev")
    return found


def test_every_module_of_the_package_has_a_layer() -> None:
    top_level = {
        f"translator_bot.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    unplaced = sorted(top_level - layered_modules())
    assert not unplaced, (
        f"modules without a layer in pyproject.toml [tool.importlinter]: {unplaced}; "
        "add each where it belongs (README: Architecture)"
    )
    assert not layered_modules() - top_level, "a layer names a module that does not exist"


def test_the_test_script_checks_the_layering_before_the_tests() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8").splitlines()
    lint = next(i for i, line in enumerate(script) if "lint-imports" in line)
    tests = next(i for i, line in enumerate(script) if "pytest" in line)
    assert lint < tests


@pytest.mark.parametrize(
    ("module", "bad_import", "broken"),
    [
        ("doctor/model.py", "import translator_bot.testbed.janus", "doctor runs in the production image"),
        ("audio/formats.py", "import translator_bot.engine.base", "Tools on top"),
        ("room/__init__.py", "import translator_bot.engine", "room adapter knows audio"),
        ("interpreter/__init__.py", "import translator_bot.room", "Tools on top"),
    ],
)
def test_an_import_against_the_layering_fails_the_check(
    tmp_path: Path, module: str, bad_import: str, broken: str
) -> None:
    shutil.copytree(PACKAGE, tmp_path / "translator_bot", ignore=shutil.ignore_patterns("recordings"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "translator_bot" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{bad_import}\n", encoding="utf-8")

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [lint_imports(), "--config", str(tmp_path / "pyproject.toml"), "--no-cache"],
            cwd=tmp_path,
            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )

    done = check()
    assert done.returncode != 0, done.stdout
    report = " ".join(done.stdout.split("Broken contracts", 1)[-1].split())  # unwrapped
    assert broken in report, done.stdout
    importer = "translator_bot." + module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    assert f"{importer} -> {bad_import.split()[-1]}" in report, done.stdout
