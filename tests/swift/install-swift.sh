#!/usr/bin/env bash
# install-swift.sh - make sure the venv holding a real OpenStack Swift server exists.
#
# The Swift server (swift + eventlet + PasteDeploy + pyeclib + xattr ...) lives in its own venv,
# outside the repo, shared by every worktree and test run: building it takes 10-20 s, starting
# Swift from it about 3 s. CI runs this script once before pytest; the test fixture runs it too,
# so a bare `pytest` on a fresh machine works.
#
#   SWIFT_VENV     where the venv lives        [${XDG_CACHE_HOME:-$HOME/.cache}/nbflask/swift-venv]
#   SWIFT_PYTHON   interpreter to build it     [python3]
#
# Versions are pinned in constraints.txt beside this script. Prints the venv path on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SWIFT_VENV=${SWIFT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nbflask/swift-venv}
# A marker written last says the venv is complete: an interrupted install is rebuilt, not
# trusted. flock keeps two concurrent runs (CI step, parallel pytest sessions) from mixing.
READY="$SWIFT_VENV/.nbflask-swift-ready"
if [ ! -f "$READY" ]; then
    mkdir -p "$(dirname "$SWIFT_VENV")"
    exec 9>"$SWIFT_VENV.lock"
    flock 9
    if [ ! -f "$READY" ]; then
        echo "install-swift: creating $SWIFT_VENV" >&2
        rm -rf "$SWIFT_VENV"
        "${SWIFT_PYTHON:-python3}" -m venv "$SWIFT_VENV" >&2
        "$SWIFT_VENV/bin/pip" install -q -c "$HERE/constraints.txt" swift python-swiftclient >&2
        "$SWIFT_VENV/bin/python" -c 'import swift.proxy.server, swiftclient' >&2
        touch "$READY"
    fi
    exec 9>&-
fi
echo "$SWIFT_VENV"
