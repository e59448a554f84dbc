#!/usr/bin/env bash
# Installs everything translator-bot needs on a Debian machine with Python >= 3.11:
# system packages (Janus, espeak-ng, sox, iproute2, Node.js for vendoring the meeting page's janus.js),
# the page's janus.js from the npm registry, and a virtual environment in ./.venv.
#   scripts/install.sh          the bot, the fake Realtime server and the demo (the [demo] extra)
#   scripts/install.sh --dev    plus test, lint and type-check tools and Chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."

extras="[demo,plots]"  # demo: fake-realtime and demo need it (`join` alone would not); plots: its timeline picture
[[ "${1:-}" == "--dev" ]] && extras="[dev,plots,kubernetes]"

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install.sh: run as root or install sudo" >&2; exit 2; }
    sudo_cmd=(sudo)
fi

packages=(janus espeak-ng sox iproute2 util-linux ca-certificates)
[[ "$extras" == *dev* ]] && packages+=(chromium coturn)  # coturn: the browsers' TURN credentials are tested against a real one
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere than Debian; only npm itself is needed.
command -v npm >/dev/null || missing+=(nodejs npm)
python=${PYTHON:-python3}
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
fi
if ((${#missing[@]})); then
    echo "install.sh: installing system packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts the packaged Janus (and coturn) as system services; the bot and its tests run their own.
for service in janus coturn; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
        "${sudo_cmd[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
    fi
done

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "install.sh: Python >= 3.11 is required ($("$python" --version))" >&2; exit 2; }
bash scripts/vendor-janus-js.sh
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The versions the tests and the image use (scripts/lock-constraints.sh writes them).
.venv/bin/python -m pip install -q --constraint constraints.txt -e ".${extras}"
# pip compiles what it installs, but an editable install leaves the package as sources: where
# PYTHONDONTWRITEBYTECODE is set (many shells and images set it), every start would compile it again.
.venv/bin/python -m compileall -q translator_bot >/dev/null
echo "install.sh: ready: $(.venv/bin/translator-bot --version)"
