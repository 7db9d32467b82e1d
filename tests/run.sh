#!/usr/bin/env bash
# The full test suite, as CI runs it: installs what it needs (nats-server),
# then formatting, lints, and every test (unit and end to end, each against
# its own real nats-server on a random port).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-nats-server.sh
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
RUST_BACKTRACE=0 cargo test --workspace --locked
