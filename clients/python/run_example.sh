#!/usr/bin/env bash
# Runs the Python example (liaison_example.py) against a running Liaison.
# Makes a virtual environment under .tools/python-venv once, installs
# requirements.txt into it when that file changes, generates the liaison.v1
# Python classes from proto/ into a temporary directory (removed on exit),
# and passes its arguments to the example, e.g.
#
#   LIAISON_NATS_URL=nats://127.0.0.1:4222 SCHOOL_NATS_PASSWORD=… POLICE_NATS_PASSWORD=… \
#     bash clients/python/run_example.sh
#
# Exit status: the example's; 3 when Python 3 or its venv module is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/clients/python"
venv="$root/.tools/python-venv"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "run_example.sh: $python not found; install Python 3.9 or newer (Debian: apt-get install python3 python3-venv)" >&2
  exit 3
fi
mkdir -p "$root/.tools"
# One installer at a time (two test runs may start together).
exec 9>"$root/.tools/python-venv.lock"
command -v flock >/dev/null 2>&1 && flock 9
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" >/dev/null; then
    rm -rf "$venv"
    echo "run_example.sh: '$python -m venv' failed; install the venv module (Debian: apt-get install python3-venv)" >&2
    exit 3
  fi
fi
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  started=$(date +%s%N)
  # Every package is pinned, what they pull in too: no resolving, no
  # byte-compiling ahead (Python does it on first import); then check.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv \
    --no-deps --no-compile -r "$here/requirements.txt"
  "$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null
  echo "$want" >"$stamp"
  echo "run_example.sh: installed clients/python/requirements.txt in $(( ($(date +%s%N) - started) / 1000000 )) ms" >&2
fi
flock -u 9 2>/dev/null || true

generated="$(mktemp -d)"
trap 'rm -rf "$generated"' EXIT
"$venv/bin/python" -m grpc_tools.protoc -I "$root/proto" --python_out="$generated" \
  "$root"/proto/liaison/v1/*.proto
cd "$root"
PYTHONPATH="$generated" "$venv/bin/python" "$here/liaison_example.py" "$@"
