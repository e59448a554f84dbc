#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, lint, type-check, check the import layering and the
# declared dependencies, then every test (Janus included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
.venv/bin/ruff check translator_bot tests scripts
.venv/bin/ruff format --check translator_bot tests scripts
.venv/bin/mypy
# The layers of the README's "Architecture" section, as contracts in pyproject.toml [tool.importlinter].
.venv/bin/lint-imports --no-cache || {
    echo "test.sh: an import goes against the layering (broken contract above); move the code to the" \
        "layer it belongs to rather than import upwards (README: Architecture)" >&2
    exit 1
}
# Every third-party package the code imports is declared in pyproject.toml, and nothing declared is unused.
.venv/bin/deptry . || {
    echo "test.sh: pyproject.toml's dependencies do not match what the code imports (see above)" >&2
    exit 1
}
exec .venv/bin/pytest -p no:cacheprovider "$@"
