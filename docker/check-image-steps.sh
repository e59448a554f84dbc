#!/usr/bin/env bash
# What CI runs in place of `docker build -f docker/Dockerfile .` (there is no Docker engine): the
# install steps of the image's three stages, for real, in a scratch directory, then checks of what
# they produced. Prints each check; exits non-zero at the first that fails.
#   bash docker/check-image-steps.sh
# Needs what the image build needs (python3 >= 3.11, network access to PyPI, and whatever
# scripts/vendor-janus-js.sh needs to fetch janus-gateway from npm) plus ldd.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dockerfile=$repo/docker/Dockerfile
work=$(mktemp -d "${TMPDIR:-/tmp}/check-image-steps.XXXXXX")
stub_pid=""
cleanup() {
    if [[ -n $stub_pid ]]; then kill "$stub_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

checked=()
step() { echo "check-image-steps: --- $*"; }
pass() { checked+=("$1"); echo "check-image-steps: ok: $1"; }
fail() { echo "check-image-steps: FAILED: $*" >&2; exit 1; }

# --- build context: what a fresh clone holds (tracked files plus new ones git does not ignore) ----
ctx=$work/context
mkdir -p "$ctx"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -xf - -C "$ctx"
    step "build context: $(cd "$ctx" && find . -type f | wc -l) files from git ls-files"
else
    tar -C "$repo" --exclude=./.venv --exclude=./.git --exclude='__pycache__' -cf - . | tar -xf - -C "$ctx"
    step "build context: working tree without .venv, .git, __pycache__ (no git checkout)"
fi

# --- stage janus-js: COPY scripts/ scripts/; RUN bash scripts/vendor-janus-js.sh ----------------
step "stage janus-js: scripts/vendor-janus-js.sh"
js=$work/janus-js
mkdir -p "$js"
[[ -f $ctx/scripts/vendor-janus-js.sh ]] \
    || fail "scripts/vendor-janus-js.sh is missing: the image's janus-js stage runs it"
cp -r "$ctx/scripts" "$js/"
(cd "$js" && bash scripts/vendor-janus-js.sh) || fail "scripts/vendor-janus-js.sh exited with $?"
vendor=translator_bot/web/static/vendor
[[ -s $js/$vendor/janus.js ]] || fail "scripts/vendor-janus-js.sh did not write $vendor/janus.js"
pass "janus-js stage writes $vendor/janus.js ($(wc -c <"$js/$vendor/janus.js") bytes)"

# --- stage builder: the files the Dockerfile copies, then docker/build-venv.sh --------------------
step "stage builder: docker/build-venv.sh"
src=$work/src
mkdir -p "$src/docker" "$src/$vendor"
cp "$ctx/pyproject.toml" "$ctx/README.md" "$ctx/LICENSE" "$ctx/constraints.txt" "$src/"
cp -r "$ctx/translator_bot" "$src/"
cp -r "$js/$vendor/." "$src/$vendor/"
cp "$ctx/docker/build-venv.sh" "$src/docker/"
prefix=$work/opt/translator-bot
bash "$src/docker/build-venv.sh" "$prefix" "$src" || fail "docker/build-venv.sh exited with $?"
pass "build-venv.sh built the wheel and a venv ($(du -sm "$prefix" | cut -f1) MB)"

# --- stage runtime: docker/install-runtime.sh against a scratch root ------------------------------
step "stage runtime: docker/install-runtime.sh (ROOT=scratch copy of a Debian base /etc)"
root=$work/root
mkdir -p "$root/etc"
# The account files of a Debian base image (no other users), so a clash shows here as in the image.
printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
printf 'root:*::\nnogroup:*::\n' >"$root/etc/gshadow"
ROOT=$root bash "$ctx/docker/install-runtime.sh" || fail "docker/install-runtime.sh exited with $?"
user_line=$(grep -E '^USER ' "$dockerfile" | tail -n 1)
ids=${user_line#USER }
grep -qE "^[^:]+:x:${ids%%:*}:${ids##*:}:" "$root/etc/passwd" \
    || fail "install-runtime.sh made no user with the Dockerfile's '$user_line'"
transcripts=$(grep -oE 'TRANSLATOR_TRANSCRIPT_DIR=[^ \\]+' "$dockerfile" | head -n 1 | cut -d= -f2)
[[ -n $transcripts && -d $root$transcripts ]] \
    || fail "install-runtime.sh did not make TRANSLATOR_TRANSCRIPT_DIR ($transcripts) of the Dockerfile"
[[ $(stat -c %u "$root$transcripts") == "${ids%%:*}" ]] \
    || fail "$transcripts is not owned by the Dockerfile's USER ${ids%%:*}"
pass "install-runtime.sh makes the USER $ids of the Dockerfile and its writable $transcripts"

# --- the result, run as the container would: its own environment, outside the source tree -------
step "the installed bot"
run_dir=$work/run
mkdir -p "$run_dir/home" "$run_dir/transcripts" "$run_dir/tmp"
in_image() {
    (cd "$run_dir" && env -i PATH="$prefix/bin:/usr/bin:/bin" HOME="$run_dir/home" LANG=C.UTF-8 \
        TMPDIR="$run_dir/tmp" PYTHONDONTWRITEBYTECODE=1 \
        TRANSLATOR_TRANSCRIPT_DIR="$run_dir/transcripts" "$@")
}

want=$("$prefix/bin/python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$src/pyproject.toml")
got=$(in_image translator-bot --version) || fail "translator-bot --version exited with $?"
[[ $got == "translator-bot $want" ]] || fail "translator-bot --version says '$got', pyproject.toml says $want"
pass "translator-bot --version: $got"

help=$(in_image translator-bot --help) || fail "translator-bot --help exited with $?"
for command in join fake-realtime demo doctor web healthcheck completion; do
    grep -qw -- "$command" <<<"$help" || fail "translator-bot --help does not list '$command'"
done
pass "translator-bot --help lists join, fake-realtime, demo, doctor, web, healthcheck, completion"

set +e
err=$(in_image translator-bot join 1234 2>&1 >/dev/null)
rc=$?
set -e
[[ $rc -eq 2 && $err == *OPENAI_API_KEY* ]] \
    || fail "translator-bot join 1234 without a key should exit 2 naming OPENAI_API_KEY; got $rc: $err"
pass "translator-bot join 1234 (the image's 'docker run IMAGE join 1234') parses and asks for OPENAI_API_KEY (exit 2)"

set +e
doctor_out=$(in_image translator-bot doctor 2>&1)
rc=$?
set -e
if [[ $doctor_out == *Traceback* || $rc -gt 4 ]]; then
    fail "translator-bot doctor crashed (exit $rc):
$doctor_out"
fi
pass "translator-bot doctor runs to its verdict (exit $rc, no traceback)"

in_image python - "$prefix" <<'EOF' || fail "the installed package is incomplete (see above)"
import importlib.util
import sys
from pathlib import Path

import translator_bot
from translator_bot.fixtures import fixtures_dir, load_manifest, read_pcm

prefix = Path(sys.argv[1]).resolve()
package = Path(translator_bot.__file__).resolve().parent
assert package.is_relative_to(prefix), f"translator_bot is imported from {package}, not from the venv"
recordings = fixtures_dir().resolve()
assert recordings.is_relative_to(package), f"recordings found at {recordings}, outside the package"
utterances = load_manifest()
samples = sum(len(read_pcm(u)) for u in utterances)
assert len(utterances) >= 12 and samples > 0, f"{len(utterances)} recordings, {samples} samples"
janus_js = package / "web" / "static" / "vendor" / "janus.js"
assert janus_js.is_file() and janus_js.stat().st_size > 0, f"{janus_js} is not in the wheel"
dev = [m for m in ("pytest", "ruff", "mypy", "playwright", "kubernetes_validate", "hatchling")
       if importlib.util.find_spec(m) is not None]
assert not dev, f"development tools installed in the runtime venv: {dev}"
demo = [m for m in ("librosa", "numba", "llvmlite", "sklearn", "scipy", "soxr")
        if importlib.util.find_spec(m) is not None]
assert not demo, f"the demo extra's packages are in the production venv: {demo}"
# What `join`, `web`, `doctor` and `healthcheck` import once past their argument parsing, so a
# runtime dependency left out of pyproject.toml shows here rather than in a running container.
for module in ("translator_bot.app", "translator_bot.room.peers", "translator_bot.web.server",
               "translator_bot.doctor.command", "translator_bot.healthcheck", "translator_bot.completion"):
    importlib.import_module(module)
print(f"package {package}: {len(utterances)} recordings, {samples / 24000:.0f} s of speech; janus.js; "
      "runtime modules import; no dev tools, no demo extra")
EOF
pass "non-editable install: package, recordings and janus.js inside the venv; runtime modules import; no dev or demo extras"

set +e
err=$(in_image translator-bot fake-realtime 2>&1 >/dev/null)
rc=$?
set -e
[[ $rc -eq 2 && $err == *"translator-bot[demo]"* ]] \
    || fail "translator-bot fake-realtime without the demo extra should exit 2 naming it; got $rc: $err"
pass "translator-bot fake-realtime says it needs the demo extra (exit 2)"

# Every shared library the venv's compiled modules load must come with the venv or be in the Debian
# base image (install-runtime.sh installs no system package).
allowed=" libc.so.6 libm.so.6 libmvec.so.1 libpthread.so.0 libdl.so.2 librt.so.1 libutil.so.1 libresolv.so.2 libgcc_s.so.1 libstdc++.so.6 libz.so.1 "
libs=0
missing=()
# Wheels keep their bundled libraries in *.libs folders; one bundled library that needs another is
# resolved by the loader through the module that loads both, which ldd of the library alone misses.
bundled=" $(find "$prefix" -type f -name '*.so*' -printf '%f ') "
while IFS= read -r -d '' so; do
    libs=$((libs + 1))
    while read -r soname arrow path _; do
        [[ $arrow == "=>" ]] || continue
        [[ $path == "$prefix"/* ]] && continue
        [[ $allowed == *" $soname "* || $bundled == *" $soname "* ]] && continue
        missing+=("${so#"$prefix"/} needs $soname ($path)")
    done < <(ldd "$so" 2>/dev/null || true)
done < <(find "$prefix" -type f -name '*.so*' -print0)
((${#missing[@]} == 0)) || fail "system libraries the runtime image does not have:
$(printf '  %s\n' "${missing[@]}")"
pass "$libs compiled modules load only bundled libraries and libc/libstdc++/libgcc/zlib"

# The HEALTHCHECK of the Dockerfile, run as written (its python is the venv's in the image).
step "the Dockerfile's HEALTHCHECK"
health_cmd=$work/healthcheck.json
python3 - "$dockerfile" >"$health_cmd" <<'EOF'
import json
import sys

text = open(sys.argv[1], encoding="utf-8").read().replace("\\\n", " ")
lines = [line.strip() for line in text.splitlines() if line.strip().startswith("HEALTHCHECK")]
if len(lines) != 1:
    sys.exit(f"expected one HEALTHCHECK in {sys.argv[1]}, found {len(lines)}")
argv = json.loads(lines[0].split(" CMD ", 1)[1])
print(json.dumps(argv))
EOF
# The bot's health port as an operator would set it (not the default 9464), so the check shows
# that the HEALTHCHECK follows the configured port.
health_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
healthcheck() {
    local -a argv
    mapfile -t argv < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))))' "$health_cmd")
    in_image env TRANSLATOR_METRICS_PORT="$health_port" "${argv[@]}" >/dev/null 2>&1
}
port_open() { python3 -c 'import socket, sys; s = socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))))' "$health_port"; }
if port_open; then
    fail "something already listens on 127.0.0.1:$health_port; the health check test needs that port free"
fi
if healthcheck; then fail "the HEALTHCHECK passed with nothing listening on $health_port"; fi
pass "HEALTHCHECK fails when nothing listens on TRANSLATOR_METRICS_PORT ($health_port)"

serve_health() {
    python3 - "$1" "$health_port" <<'EOF' &
import http.server
import sys

status = int(sys.argv[1])

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), Health).serve_forever()
EOF
    stub_pid=$!
    for _ in $(seq 50); do port_open && return 0; sleep 0.1; done
    fail "the stand-in /readyz server did not start"
}
stop_health() { kill "$stub_pid"; wait "$stub_pid" 2>/dev/null || true; stub_pid=""; }

serve_health 200
healthcheck || fail "the HEALTHCHECK failed against a /readyz answering 200"
stop_health
pass "HEALTHCHECK passes when /readyz answers 200"
serve_health 503
if healthcheck; then fail "the HEALTHCHECK passed against a /readyz answering 503"; fi
stop_health
pass "HEALTHCHECK fails when /readyz answers 503"

echo "check-image-steps: all ${#checked[@]} checks passed:"
printf '  - %s\n' "${checked[@]}"
