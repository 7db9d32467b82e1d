#!/usr/bin/env bash
# The full test suite, as CI runs it: installs what it needs (nats-server,
# cargo-deny, and Debian's chromium for the operator console's browser test),
# then formatting, lints, supply-chain checks, and every test (unit and end to
# end, each against its own real nats-server on a random port).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-nats-server.sh
if ! command -v chromium >/dev/null 2>&1; then
  # Non-interactive: as root directly, otherwise through sudo without a prompt;
  # the package lists are refreshed only when the first attempt fails.
  export DEBIAN_FRONTEND=noninteractive
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
  install=("${as_root[@]}" apt-get install -y -q --no-install-recommends chromium)
  "${install[@]}" || { "${as_root[@]}" apt-get update -q && "${install[@]}"; }
fi
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
