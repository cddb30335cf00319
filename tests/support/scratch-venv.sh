#!/usr/bin/env bash
# scratch-venv.sh VENV CONSTRAINTS CHECK PACKAGE... - make sure a venv for a tool the tests run
# (never a dependency of nbflask) exists, built from PACKAGEs pinned by CONSTRAINTS.
#
# The venv lives outside the repo, shared by every worktree and test run. A marker written
# last says it is complete: an interrupted install is rebuilt, not trusted. flock keeps two
# concurrent runs (a CI step, parallel pytest sessions) from mixing; SCRATCH_MARKER names the
# marker. CHECK is a command run inside the venv (e.g. `python -c 'import swift'`) before the
# marker is written.
# Prints the venv path on stdout.
set -euo pipefail
VENV=$1 CONSTRAINTS=$2 CHECK=$3
shift 3
READY="$VENV/${SCRATCH_MARKER:-.nbflask-ready}"
if [ ! -f "$READY" ]; then
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if [ ! -f "$READY" ]; then
        echo "scratch-venv: creating $VENV" >&2
        rm -rf "$VENV"
        "${SCRATCH_PYTHON:-python3}" -m venv "$VENV" >&2
        "$VENV/bin/pip" install -q -c "$CONSTRAINTS" "$@" >&2
        (cd "$VENV/bin" && eval "./$CHECK") >&2
        touch "$READY"
    fi
    exec 9>&-
fi
echo "$VENV"
