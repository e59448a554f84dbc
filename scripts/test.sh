#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, lint, type-check, then every test (Janus included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
.venv/bin/ruff check translator_bot tests scripts
.venv/bin/ruff format --check translator_bot tests scripts
.venv/bin/mypy
exec .venv/bin/pytest -p no:cacheprovider "$@"
