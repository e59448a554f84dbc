#!/usr/bin/env bash
# Starts the interpreter for one meeting as a Kubernetes Job rendered from translator-bot-job.yaml.
#   docker/k8s/launch-job.sh MEETING_ID            create the Job (kubectl's current context/namespace)
#   docker/k8s/launch-job.sh --print MEETING_ID    print the manifest instead
# IMAGE picks the image (default translator-bot:0.1.0). The Job is named after the meeting, and
# `kubectl create` refuses a second Job of the same name: one interpreter per meeting.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { echo "usage: launch-job.sh [--print] MEETING_ID" >&2; exit 2; }
print=false
if [[ ${1:-} == --print ]]; then print=true; shift; fi
[[ $# -eq 1 ]] || usage
id=$1
image=${IMAGE:-translator-bot:0.1.0}

# The ids the meeting page accepts: a numeric or plain string room id. Nothing else can reach the
# manifest, so it cannot break out of its YAML string or the sed expressions below.
[[ $id =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || {
    echo "launch-job.sh: '$id' is not a meeting id (letters, digits, _ . -; at most 64)" >&2; exit 2; }
[[ $image =~ ^[A-Za-z0-9][A-Za-z0-9./:@_-]*$ ]] || { echo "launch-job.sh: odd IMAGE '$image'" >&2; exit 2; }

# Job names are DNS labels (lowercase, digits, '-', at most 63 with the prefix). An id that had to
# change gets a hash of the original, so "Room_A" and "room-a" stay two Jobs.
name=$(tr 'A-Z_.' 'a-z--' <<<"$id")
if [[ $name != "$id" || ${#name} -gt 39 ]]; then
    hash=$(printf '%s' "$id" | sha256sum | cut -c1-8)
    name="${name:0:39}"
    name="${name%%-}-$hash"
fi

manifest=$(sed -e "s|\${MEETING_ID}|$id|g" -e "s|\${MEETING_NAME}|$name|g" -e "s|\${IMAGE}|$image|g" \
    "$here/translator-bot-job.yaml")
if $print; then
    printf '%s\n' "$manifest"
else
    kubectl create -f - <<<"$manifest"
fi
