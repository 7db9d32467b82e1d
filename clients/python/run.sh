#!/usr/bin/env bash
# Runs a Python program of Liaison's against a running Liaison: the example
# (clients/python/liaison_example.py, also through run_example.sh) or the
# hostile-agency suite (tests/hostile/hostile_agency.py).
# Makes a virtual environment under .tools/python-venv once, installs
# requirements.txt into it when that file changes, generates the liaison.v1
# Python classes from proto/ into a temporary directory (removed on exit),
# puts them and clients/python (the example's helpers) on PYTHONPATH, and
# runs PROGRAM (a path from the repository root, or absolute) with the
# remaining arguments, from the repository root, e.g.
#
#   LIAISON_NATS_URL=nats://127.0.0.1:4222 bash clients/python/run.sh tests/hostile/hostile_agency.py
#
# (the agencies log in with their NKeys, deploy/agencies/dev-keys/AGENCY.nk by default)
#
# Exit status: the program's; 3 when Python 3 or pip is missing, 2 when no
# PROGRAM is given or it does not exist.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/clients/python"
venv="$root/.tools/python-venv"
python="${PYTHON:-python3}"
if [ $# -lt 1 ]; then
  echo "usage: run.sh PROGRAM [ARGUMENTS...]  (e.g. tests/hostile/hostile_agency.py)" >&2
  exit 2
fi
program="$1"
shift
case "$program" in
  /*) ;;
  *) program="$root/$program" ;;
esac
if [ ! -f "$program" ]; then
  echo "run.sh: no such program: $program" >&2
  exit 2
fi

if ! command -v "$python" >/dev/null 2>&1; then
  echo "run.sh: $python not found; install Python 3.9 or newer (Debian: apt-get install python3 python3-venv)" >&2
  exit 3
fi
mkdir -p "$root/.tools"
# One installer at a time (two test runs may start together).
exec 9>"$root/.tools/python-venv.lock"
command -v flock >/dev/null 2>&1 && flock 9
# A virtual environment when Python has the venv module; otherwise (Debian
# without python3-venv) the packages go into a directory of their own with
# pip --target, as deploy/install-nats-server.sh does.
packages=""
if [ ! -x "$venv/bin/python" ] && ! "$python" -m venv "$venv" >/dev/null 2>&1; then
  rm -rf "$venv"
  packages="$root/.tools/python-packages"
fi
if [ -n "$packages" ]; then
  run_python=("$python")
  install=("$python" -m pip install --target "$packages")
  stamp="$packages/.requirements.sha256"
else
  run_python=("$venv/bin/python")
  install=("$venv/bin/python" -m pip install --require-virtualenv)
  stamp="$venv/.requirements.sha256"
fi
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  started=$(date +%s%N)
  # Every package is pinned, what they pull in too: no resolving, no
  # byte-compiling ahead (Python does it on first import).
  if ! "${install[@]}" --quiet --disable-pip-version-check --no-deps --no-compile \
    -r "$here/requirements.txt"; then
    echo "run.sh: installing clients/python/requirements.txt failed; Python 3 with pip is needed (Debian: apt-get install python3-pip python3-venv)" >&2
    exit 3
  fi
  mkdir -p "$(dirname "$stamp")"
  echo "$want" >"$stamp"
  echo "run.sh: installed clients/python/requirements.txt in $(( ($(date +%s%N) - started) / 1000000 )) ms" >&2
fi
flock -u 9 2>/dev/null || true

generated="$(mktemp -d)"
trap 'rm -rf "$generated"' EXIT
path="$generated:$here${packages:+:$packages}"
PYTHONPATH="$path" "${run_python[@]}" -m grpc_tools.protoc -I "$root/proto" --python_out="$generated" \
  "$root"/proto/liaison/v1/*.proto
cd "$root"
PYTHONPATH="$path" "${run_python[@]}" "$program" "$@"
