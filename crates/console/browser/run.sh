#!/usr/bin/env bash
# Runs the console's browser tests: Debian's Chromium (installed with apt-get when missing;
# Playwright never downloads a browser), playwright-core from the npm registry, and a debug
# build of easypos. CI calls this from .ci/run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cargo build -q -p easypos --manifest-path "$root/Cargo.toml"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$here"
npm ci --no-audit --no-fund --silent
EASYPOS_BIN="$target/debug/easypos" npm test
