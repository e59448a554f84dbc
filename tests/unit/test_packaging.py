"""Packaging promises: `join` needs none of the demo extra's heavy stack (librosa, numba, llvmlite,
scikit-learn, scipy, soxr), the commands that do need it say so, the constraints the image is built
with satisfy pyproject.toml, and the project metadata carries its license and addresses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.test_startup_imports import join_imports
from translator_bot.extras import DEMO_MODULES

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# The demo extra and what librosa brings with it.
HEAVY = ("librosa", "numba", "llvmlite", "sklearn", "scipy", "soxr")

# Imports what `join` imports: the CLI with its parser, the app, and every module of the packages
# the bot runs (some engines are imported only when a lane starts), with the heavy packages made
# unimportable, so a module that needs one fails here with its traceback.
_JOIN_IMPORTS = """
import importlib, pkgutil, sys
HEAVY = {heavy!r}

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ModuleNotFoundError(f"{{name}} blocked: join must not need it", name=name)
        return None

sys.meta_path.insert(0, Absent())
import translator_bot.cli
translator_bot.cli.build_parser()
import translator_bot.app
for package in ("audio", "engine", "interpreter", "room", "system"):
    root = importlib.import_module(f"translator_bot.{{package}}")
    for info in pkgutil.walk_packages(root.__path__, f"translator_bot.{{package}}."):
        importlib.import_module(info.name)
for module in ("ops", "settings", "metrics", "logs", "redact", "tasks", "languages", "errors", "addresses"):
    importlib.import_module(f"translator_bot.{{module}}")
loaded = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)
print("heavy modules loaded:", loaded)
sys.exit(1 if loaded else 0)
"""


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_join_imports_nothing_of_the_demo_extra() -> None:
    done = run_python(_JOIN_IMPORTS.format(heavy=HEAVY))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_real_join_run_loads_nothing_of_the_demo_extra(tmp_path: Path) -> None:
    """`translator-bot join` run for real until it gives up on an unreachable room server, with
    -X importtime listing every module it imported."""
    imported = join_imports(tmp_path)
    assert "translator_bot.app" in imported
    heavy = sorted({name.split(".")[0] for name in imported if name.split(".")[0] in HEAVY})
    assert not heavy, f"join imported {heavy}"


def test_fake_and_demo_without_the_extra_say_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['librosa'] = None  # as if the demo extra were not installed\n"
        "from translator_bot.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    for argv in (["fake-realtime", "--port", "0"], ["demo"]):
        done = run_python(code, *argv)
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"`translator-bot {argv[0]}` needs the 'demo' extra (librosa not installed)" in done.stderr
        assert "pip install 'translator-bot[demo]'" in done.stderr
        assert "Traceback" not in done.stderr


def test_the_demo_extra_is_what_the_commands_check_for() -> None:
    extra = {canonicalize_name(Requirement(r).name) for r in PROJECT["optional-dependencies"]["demo"]}
    assert extra == set(DEMO_MODULES)
    runtime = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert not runtime & {"librosa", "numba", "llvmlite", "scikit-learn", "scipy", "soxr"}
    dev = [Requirement(r) for r in PROJECT["optional-dependencies"]["dev"]]
    assert any(r.name == "translator-bot" and r.extras == {"demo"} for r in dev)
    install = (ROOT / "scripts" / "install.sh").read_text(encoding="utf-8")
    # The README's first command (install.sh without flags) sets up what the demo needs.
    default = re.search(r'^extras="\[([a-z,]+)\]"', install, re.M)
    assert default is not None and "demo" in default.group(1).split(","), default
    build_venv = (ROOT / "docker" / "build-venv.sh").read_text(encoding="utf-8")
    assert "[demo]" not in build_venv and "[dev]" not in build_venv


def test_openai_has_an_upper_bound_that_the_installed_sdk_meets() -> None:
    (openai,) = [Requirement(r) for r in PROJECT["dependencies"] if Requirement(r).name == "openai"]
    assert any(spec.operator in ("<", "<=", "~=", "==") for spec in openai.specifier), openai
    import openai as sdk

    assert openai.specifier.contains(sdk.__version__), (openai, sdk.__version__)


def test_the_constraints_pin_every_dependency_within_its_range() -> None:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: not an exact pin: {line}"
            pins[canonicalize_name(name)] = version.strip()
    declared = [
        *PROJECT["dependencies"],
        *PROJECT["optional-dependencies"]["demo"],
        *PROJECT["optional-dependencies"]["dev"],
    ]
    for requirement in map(Requirement, declared):
        if requirement.name == "translator-bot":
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in constraints.txt: run scripts/lock-constraints.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}"
        )
    for script in ("docker/build-venv.sh", "scripts/install.sh"):
        text = (ROOT / script).read_text(encoding="utf-8")
        assert re.search(r"--constraint \S*constraints\.txt", text), f"{script} does not use constraints.txt"
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY .*\bconstraints\.txt\b", dockerfile, re.M)


def test_license_and_project_urls() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    for name in PROJECT["license-files"]:
        text = (ROOT / name).read_text(encoding="utf-8")
        assert "Apache License" in text and "Version 2.0" in text
    assert {"Homepage", "Source", "Issues"} <= set(PROJECT["urls"])
    assert all(url.startswith("https://") for url in PROJECT["urls"].values())


def test_the_image_builds_janus_js_with_a_supported_node_lts() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    match = re.search(r"^ARG NODE_IMAGE=node:(\d+)-", dockerfile, re.M)
    assert match is not None
    major = int(match.group(1))
    # Even majors are the LTS lines; 20 reached its end of life in April 2026.
    assert major % 2 == 0 and major >= 22, major
