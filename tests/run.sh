#!/usr/bin/env bash
# The full test suite, as CI runs it: installs what it needs (nats-server,
# cargo-deny, and Debian's chromium for the operator console's browser test),
# then formatting, lints, supply-chain checks, and every test (unit and end to
# end, each against its own real nats-server on a random port).
#
# The tests run under cargo-nextest when it is installed (as on the project's
# machines: one process per test, several at a time, the slow ones in the
# `heavy` group of .config/nextest.toml), otherwise under `cargo test`.
# TEST_LOG=1 shows the services' logs of a failing test.
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
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
export RUST_BACKTRACE=0
if cargo nextest --version >/dev/null 2>&1; then
  echo "== cargo nextest run"
  profile=default
  [ "${CI:-}" = true ] && profile=ci
  cargo nextest run --workspace --locked --profile "$profile" 2>&1 | tee "$log" || status=$?
  echo "== cargo test --doc"
  cargo test --workspace --locked --doc 2>&1 | tee -a "$log" || status=$?
else
  echo "== cargo test (cargo-nextest is not installed)"
  cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
fi
# One closing line for the whole suite: nextest's summary plus the doc tests
# (or, under cargo test, every binary's "test result" line).
awk '
  /^test result:/ { passed += $4; failed += $6; ignored += $8 }
  /^ *Summary \[/ {
    for (i = 1; i <= NF; i++) {
      w = $i; gsub(/[,;]/, "", w)
      if (w == "passed") passed += $(i - 1)
      if (w == "failed" || w == "timed") failed += $(i - 1)
      if (w == "skipped") ignored += $(i - 1)
    }
  }
  END { printf "tests: %d passed, %d failed, %d ignored\n", passed, failed, ignored }
' "$log"
exit "$status"
