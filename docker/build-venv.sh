#!/usr/bin/env bash
# Builds translator-bot as a wheel and installs it, with its runtime dependencies only (no dev
# extras, not editable), into a new virtual environment at PREFIX.
#   docker/build-venv.sh PREFIX [SOURCE_DIR]
# SOURCE_DIR (default: this repository) holds pyproject.toml, README.md, LICENSE, constraints.txt
# and translator_bot/; the image's builder stage and docker/check-image-steps.sh both run this script.
# Dependencies are installed at the versions of constraints.txt (scripts/lock-constraints.sh).
# PYTHON picks the interpreter (default python3; it must be the one the runtime image has, since the
# venv links to it).
set -euo pipefail

usage() { echo "usage: build-venv.sh PREFIX [SOURCE_DIR]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
prefix=$1
src=${2:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
python=${PYTHON:-python3}

[[ -f "$src/pyproject.toml" ]] || { echo "build-venv.sh: no pyproject.toml in $src" >&2; exit 2; }
[[ -f "$src/constraints.txt" ]] || { echo "build-venv.sh: no constraints.txt in $src" >&2; exit 2; }
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "build-venv.sh: Python >= 3.11 is required ($("$python" --version 2>&1))" >&2; exit 2; }
if [[ -e "$prefix" ]] && [[ -n "$(ls -A "$prefix")" ]]; then
    echo "build-venv.sh: $prefix is not empty; it must be a new prefix" >&2; exit 2
fi

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT

"$python" -m venv "$prefix"
# pip builds the wheel in an isolated environment with the backend pyproject.toml names, so the
# build tools never end up in the venv.
"$prefix/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$src"
shopt -s nullglob
built=("$wheels"/translator_bot-*.whl)
[[ ${#built[@]} -eq 1 ]] || { echo "build-venv.sh: expected one translator_bot wheel, got: ${built[*]:-none}" >&2; exit 1; }
# pip also compiles the bytecode here, once: the runtime filesystem may be read-only.
"$prefix/bin/python" -m pip install --quiet --constraint "$src/constraints.txt" "${built[0]}"
echo "build-venv.sh: installed $(basename "${built[0]}") into $prefix"
