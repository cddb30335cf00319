#!/usr/bin/env bash
# install-jupyter-server.sh - make sure the scratch venv holding Jupyter Server exists.
#
# Jupyter Server is a real client of ours (its gateway client relays kernels to nbflask) and
# never our dependency, so it lives in its own venv outside the repo, shared by every
# worktree and test run. CI runs this once before pytest; the test fixture runs it too.
#
#   JUPYTER_SERVER_VENV  where the venv lives  [${XDG_CACHE_HOME:-$HOME/.cache}/nbflask/jupyter-server-venv]
#
# The version is pinned in constraints.txt beside this script. Prints the venv path on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${JUPYTER_SERVER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nbflask/jupyter-server-venv}
READY="$VENV/.nbflask-ready"
if [ ! -f "$READY" ]; then
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if [ ! -f "$READY" ]; then
        echo "install-jupyter-server: creating $VENV" >&2
        rm -rf "$VENV"
        python3 -m venv "$VENV" >&2
        "$VENV/bin/pip" install -q -c "$HERE/constraints.txt" jupyter_server >&2
        "$VENV/bin/jupyter-server" --version >&2
        touch "$READY"
    fi
    exec 9>&-
fi
echo "$VENV"
