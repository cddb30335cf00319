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
exec bash "$HERE/../scratch-venv.sh" "$VENV" "$HERE/constraints.txt" "jupyter-server --version" jupyter_server
