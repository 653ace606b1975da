#!/usr/bin/env bash
# Run one fuzz target for a while: scripts/fuzz.sh TARGET SECONDS
# Targets: iso8583_cup_bcd iso8583_iso87_ascii framing tlv qr qr_image pin_block handler (or
# "all"). handler drives the host's message handler over the demo world on SQLite (in /dev/shm
# when there is one).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on the stable toolchain cargo-fuzz's
# sanitizer flags need RUSTC_BOOTSTRAP=1, which this script sets.
set -euo pipefail

targets=(iso8583_cup_bcd iso8583_iso87_ascii framing tlv qr qr_image pin_block handler)
target="${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}"
seconds="${2:?usage: scripts/fuzz.sh TARGET|all SECONDS}"
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

run_one() {
    local name="$1"
    mkdir -p "$root/fuzz/corpus/$name"
    echo "== fuzzing $name for ${seconds}s"
    # New inputs go to corpus/ (ignored by git); seeds/ holds committed valid messages.
    (cd "$root/fuzz" && RUSTC_BOOTSTRAP=1 cargo fuzz run "$name" "corpus/$name" "seeds/$name" -- \
        -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024)
}

if [[ "$target" == all ]]; then
    for name in "${targets[@]}"; do run_one "$name"; done
else
    [[ " ${targets[*]} " == *" $target "* ]] || { echo "unknown target $target (${targets[*]})" >&2; exit 2; }
    run_one "$target"
fi
