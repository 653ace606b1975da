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
# The guides' screenshots show Chinese (the language switch, 中文): without a CJK font Chromium
# draws boxes. Debian's Droid Sans Fallback is the font the receipts' PDFs embed a subset of.
if [ "${EASYPOS_UPDATE_SCREENSHOTS:-}" = 1 ] && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-droid-fallback >/dev/null
fi
cargo build -q -p easypos --manifest-path "$root/Cargo.toml"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$here"
npm ci --no-audit --no-fund --silent
EASYPOS_BIN="$target/debug/easypos" npm test
