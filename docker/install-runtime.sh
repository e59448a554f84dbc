#!/usr/bin/env bash
# The runtime stage's installation: system packages the venv needs (none, see below), the
# unprivileged user the bot runs as, and the transcript directory it writes to.
#   docker/install-runtime.sh
# ROOT (default /) installs into another root filesystem: docker/check-image-steps.sh runs this
# script for real against a scratch copy of /etc instead of changing the machine it runs on.
set -euo pipefail

ROOT=${ROOT:-/}
APP_USER=translator
APP_UID=10001
TRANSCRIPT_DIR=/var/lib/translator-bot/transcripts

# System packages needed at run time: none. Every compiled dependency is a manylinux wheel that
# carries its own libraries (av: FFmpeg with Opus and VPX; pylibsrtp: libsrtp; numpy: OpenBLAS),
# and what they link against besides
# (libc6, libgcc-s1, libstdc++6, zlib1g) is part of the Debian base image. check-image-steps.sh
# fails if an installed library needs anything else: add its Debian package here and its soname
# to the list of libraries that check accepts.
RUNTIME_PACKAGES=()

if ((${#RUNTIME_PACKAGES[@]})); then
    if [[ "$ROOT" != / ]]; then
        echo "install-runtime.sh: apt packages can only be installed into /" >&2
        exit 2
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${RUNTIME_PACKAGES[@]}"
    rm -rf /var/lib/apt/lists/*
fi

prefix_args=()
[[ "$ROOT" != / ]] && prefix_args=(--prefix "$ROOT")
groupadd "${prefix_args[@]}" --gid "$APP_UID" "$APP_USER"
useradd "${prefix_args[@]}" --uid "$APP_UID" --gid "$APP_UID" --no-create-home \
    --home-dir /nonexistent --shell /usr/sbin/nologin "$APP_USER"
install -d -o "$APP_UID" -g "$APP_UID" -m 0750 "${ROOT%/}$TRANSCRIPT_DIR"
echo "install-runtime.sh: user $APP_USER ($APP_UID), transcripts in $TRANSCRIPT_DIR, system packages: ${RUNTIME_PACKAGES[*]:-none}"
