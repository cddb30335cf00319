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
SCRATCH_MARKER=.nbflask-swift-ready SCRATCH_PYTHON=${SWIFT_PYTHON:-python3} exec bash "$HERE/../scratch-venv.sh" "$SWIFT_VENV" "$HERE/constraints.txt" \
    "python -c 'import swift.proxy.server, swiftclient'" swift python-swiftclient
