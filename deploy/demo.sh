#!/usr/bin/env bash
# Liaison's main job on one machine: installs nats-server, builds Liaison, and
# runs `liaison demo` — a local nats-server, the gateway and audit services,
# and a day of partnership traffic through them, with a report.
# Extra arguments go to `liaison demo` (e.g. --contributions 3600).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-nats-server.sh
cargo build --locked --bin liaison
exec ./target/debug/liaison demo "$@"
