#!/usr/bin/env bash
# The full test suite, as CI runs it: installs what it needs (nats-server,
# cargo-deny), then formatting, lints, supply-chain checks, and every test (unit and end to end, each against
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
bash tests/supply-chain.sh
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
RUST_BACKTRACE=0 cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
