#!/usr/bin/env bash
# Liaison's main job on one machine: installs nats-server, builds Liaison, and
# runs `liaison demo` — a local nats-server, the gateway, audit, cases,
# linkage and alerts services, and a seeded day of partnership traffic
# through them (~3,600 contributions), with a report.
# Extra arguments go to `liaison demo` (e.g. --contributions 600, --kill-services).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-nats-server.sh
cargo build --locked --bin liaison
exec ./target/debug/liaison demo "$@"
