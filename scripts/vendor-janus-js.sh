#!/usr/bin/env bash
# Vendors the browser's Janus client for the meeting page, from the npm registry:
#   janus-gateway  -> janus.js   (the ES module build, npm/dist/janus.es.js)
#   webrtc-adapter -> adapter.js (its standalone browser build, out/adapter.js; janus.js needs it for
#                                 browser detection and the version is the one janus-gateway pins)
# into translator_bot/web/static/vendor/ (not committed), with their licences and VENDORED.json
# recording each package's version and the registry's sha512 integrity, which the tarball must match.
#   scripts/vendor-janus-js.sh           vendor unless the pinned versions are already there
#   scripts/vendor-janus-js.sh --force   vendor again
# Needs node and npm (Debian: apt-get install nodejs npm).
set -euo pipefail
cd "$(dirname "$0")/.."

JANUS_VERSION=1.4.2
ADAPTER_VERSION=9.0.3 # must equal janus-gateway@JANUS_VERSION's own dependency (checked below)
dest=translator_bot/web/static/vendor

die() { echo "vendor-janus-js.sh: $*" >&2; exit 1; }
command -v npm >/dev/null || die "npm is not installed (Debian: apt-get install nodejs npm)"
command -v node >/dev/null || die "node is not installed (Debian: apt-get install nodejs)"

if [[ "${1:-}" != "--force" && -f "$dest/VENDORED.json" && -f "$dest/janus.js" && -f "$dest/adapter.js" ]] &&
    grep -q "\"janus-gateway@$JANUS_VERSION\"" "$dest/VENDORED.json" &&
    grep -q "\"webrtc-adapter@$ADAPTER_VERSION\"" "$dest/VENDORED.json"; then
    echo "vendor-janus-js.sh: janus-gateway@$JANUS_VERSION already vendored in $dest"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

npm_q() { npm --loglevel=error --no-fund --no-audit "$@" 2>"$work/npm.err" || {
    cat "$work/npm.err" >&2; die "npm $* failed"; }; }

wanted=$(npm_q view "janus-gateway@$JANUS_VERSION" dependencies.webrtc-adapter)
[[ "$wanted" == "$ADAPTER_VERSION" ]] ||
    die "janus-gateway@$JANUS_VERSION depends on webrtc-adapter@$wanted, not $ADAPTER_VERSION: update ADAPTER_VERSION"

# Fetch one package tarball, check it against the registry's integrity and unpack it in $work/<name>.
fetch() {
    local spec=$1 name=$2 integrity file actual
    integrity=$(npm_q view "$spec" dist.integrity)
    [[ "$integrity" == sha512-* ]] || die "$spec: the registry gave no sha512 integrity ($integrity)"
    file=$(cd "$work" && npm_q pack "$spec" --silent | tail -n 1)
    actual="sha512-$(node -e 'const c=require("crypto"),f=require("fs");
        process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' \
        "$work/$file")"
    [[ "$actual" == "$integrity" ]] || die "$spec: tarball sha512 $actual does not match the registry's $integrity"
    mkdir -p "$work/$name"
    tar -xzf "$work/$file" -C "$work/$name"
    echo "$integrity"
}

janus_integrity=$(fetch "janus-gateway@$JANUS_VERSION" janus)
adapter_integrity=$(fetch "webrtc-adapter@$ADAPTER_VERSION" adapter)

janus_src="$work/janus/package/npm/dist/janus.es.js"
adapter_src="$work/adapter/package/out/adapter.js"
[[ -f "$janus_src" ]] || die "janus-gateway@$JANUS_VERSION has no npm/dist/janus.es.js"
[[ -f "$adapter_src" ]] || die "webrtc-adapter@$ADAPTER_VERSION has no out/adapter.js"
grep -q "export { Janus as default }" "$janus_src" || die "janus.es.js no longer exports Janus as default"

mkdir -p "$dest"
cp "$janus_src" "$dest/janus.js"
cp "$adapter_src" "$dest/adapter.js"
cp "$work/janus/package/COPYING" "$dest/janus.LICENSE"
cp "$work/adapter/package/LICENSE.md" "$dest/adapter.LICENSE"

sha256() { sha256sum "$1" | cut -d' ' -f1; }
cat >"$dest/VENDORED.json" <<EOF
{
  "janus.js": {
    "package": "janus-gateway@$JANUS_VERSION",
    "file": "npm/dist/janus.es.js",
    "integrity": "$janus_integrity",
    "sha256": "$(sha256 "$dest/janus.js")",
    "license": "MIT"
  },
  "adapter.js": {
    "package": "webrtc-adapter@$ADAPTER_VERSION",
    "file": "out/adapter.js",
    "integrity": "$adapter_integrity",
    "sha256": "$(sha256 "$dest/adapter.js")",
    "license": "BSD-3-Clause"
  }
}
EOF
echo "vendor-janus-js.sh: vendored janus-gateway@$JANUS_VERSION and webrtc-adapter@$ADAPTER_VERSION into $dest"
