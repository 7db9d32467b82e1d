#!/usr/bin/env bash
# Supply-chain checks (deny.toml): licences, banned crates (a second rustls crypto
# provider, OpenSSL, jsonwebtoken < 10.3), crate sources, and RustSec advisories.
# Installs the pinned cargo-deny into .tools/cargo-deny/ once (a minute or two, once).
#
# Advisories are checked offline against the RustSec advisory database snapshot
# committed beside this script (the database's git repository cannot be reached
# from the project's machines); the output names the snapshot and its age. To check
# against today's advisories where github.com is reachable, see docs/supply-chain.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version="0.20.2"
root=".tools/cargo-deny"
deny="$root/bin/cargo-deny"
if ! { [ -x "$deny" ] && "$deny" --version | grep -q "$version"; }; then
  echo "== installing cargo-deny $version into $root"
  # Without cargo-deny's own fat LTO and single codegen unit: a third of the
  # build time, for a tool that runs for a second.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install cargo-deny --version "$version" --locked --root "$root" --quiet
fi
echo "== cargo deny check bans licenses sources"
"$deny" --log-level error check bans licenses sources

# The snapshot: RustSec advisory-db at commit $commit, as of $date.
commit="bf5c0d245a92671908518d7e765914d437954ed6"
date="2026-08-21"
snapshot="tests/supply-chain/rustsec-advisory-db-$date-${commit:0:7}.tar.xz"
# deny.toml's db-path; cargo-deny names the database's directory after its URL.
dbs=".tools/advisory-dbs"
db="$dbs/advisory-db-3157b0e258782691"
if [ "$(cat "$dbs/snapshot" 2>/dev/null)" != "$commit" ]; then
  rm -rf "$db" "$dbs/snapshot"
  mkdir -p "$db"
  tar -xJf "$snapshot" -C "$db" --strip-components=1
  # cargo-deny reads the database as a git checkout (its HEAD commit and date).
  (
    cd "$db"
    git init -q
    git add -A
    GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z" \
      git -c user.name=RustSec -c user.email=snapshot@localhost \
      -c commit.gpgsign=false commit -q -m "RustSec advisory-db $commit"
  )
  echo "$commit" >"$dbs/snapshot"
fi
age=$(( ( $(date -u +%s) - $(date -u -d "$date" +%s) ) / 86400 ))
echo "== cargo deny check advisories (offline, snapshot ${commit:0:7})"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if "$deny" --offline --log-level warn check advisories >"$log" 2>&1; then
  ignored=$(grep -c "^\s*{ id = \"RUSTSEC-" deny.toml || true)
  echo "advisories: 0 against the RustSec snapshot ${commit:0:7} of $date ($age days old); $ignored ignored with a reason in deny.toml"
else
  cat "$log"
  echo "advisories: FAILED against the RustSec snapshot ${commit:0:7} of $date ($age days old)"
  exit 1
fi
