#!/usr/bin/env bash
# Supply-chain checks (deny.toml): licences, banned crates (a second rustls crypto
# provider, OpenSSL, jsonwebtoken < 10.3), crate sources, and RustSec advisories.
# Installs the pinned cargo-deny into .tools/cargo-deny/ once (a few minutes).
# Advisories need the RustSec database from github.com: where it cannot be reached,
# this says so and does not count it as passed (docs/supply-chain.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version="0.20.2"
root=".tools/cargo-deny"
deny="$root/bin/cargo-deny"
if ! { [ -x "$deny" ] && "$deny" --version | grep -q "$version"; }; then
  echo "== installing cargo-deny $version into $root"
  cargo install cargo-deny --version "$version" --locked --root "$root" --quiet
fi
echo "== cargo deny check bans licenses sources"
"$deny" --log-level error check bans licenses sources
echo "== cargo deny check advisories"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if "$deny" --log-level error check advisories >"$log" 2>&1; then
  echo "advisories: 0 (RustSec database fetched)"
elif grep -qiE "failed to fetch|could not resolve|resolve host|network|unable to (fetch|clone|open)|advisory database" "$log"; then
  echo "advisories: NOT CHECKED — the RustSec advisory database (github.com/rustsec/advisory-db) cannot be reached from here"
  tail -n 3 "$log"
else
  cat "$log"
  exit 1
fi
