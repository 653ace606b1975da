#!/usr/bin/env bash
# Run fuzz targets for a while: scripts/fuzz.sh TARGET|all SECONDS [fast|asan]
#
# Targets: iso8583_cup_bcd iso8583_iso87_ascii framing tlv qr qr_image pin_block handler (or
# "all", one after the other). handler drives the host's message handler over the demo world on
# SQLite (in /dev/shm when there is one).
#
# Modes:
#   fast (the default): no sanitizer (`cargo fuzz -s none`), optimised with debug assertions and
#        overflow checks (`-O -a`). Every crate the targets reach is safe Rust, so
#        AddressSanitizer finds little that a bounds-checked panic does not, and it costs more
#        than half of the speed; the long runs toward the issue's 100,000,000 executions per
#        target use this mode.
#   asan: AddressSanitizer, cargo-fuzz's default, for the C underneath (SQLite) and for a
#        release of a dependency with unsafe code.
# Each mode builds into a directory of its own under the target directory (CARGO_TARGET_DIR,
# or fuzz/target), so switching modes does not rebuild the other.
#
# Environment:
#   FUZZ_FORKS=N  run N fuzzing processes at once (libFuzzer's -fork=N; the corpus is shared).
#   FUZZ_RUNS=N   stop a target after N executions (or SECONDS, whichever comes first).
#
# Each target ends with a line "== TARGET: N executions in S s (R/s)"; a crash stops the script
# with libFuzzer's report and the input saved under fuzz/artifacts/TARGET/.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on the stable toolchain cargo-fuzz's flags need
# RUSTC_BOOTSTRAP=1, which this script sets.
set -euo pipefail

targets=(iso8583_cup_bcd iso8583_iso87_ascii framing tlv qr qr_image pin_block handler)
usage="usage: scripts/fuzz.sh TARGET|all SECONDS [fast|asan]"
target="${1:?$usage}"
seconds="${2:?$usage}"
mode="${3:-fast}"
forks="${FUZZ_FORKS:-1}"
runs="${FUZZ_RUNS:--1}"
root="$(cd "$(dirname "$0")/.." && pwd)"

case "$mode" in
    fast) build_flags=(-s none -O -a) ;;
    asan) build_flags=(-s address -O -a) ;;
    *) echo "unknown mode $mode (fast or asan); $usage" >&2; exit 2 ;;
esac
[[ "$forks" =~ ^[1-9][0-9]*$ ]] || { echo "FUZZ_FORKS must be a positive number" >&2; exit 2; }
[[ "$runs" =~ ^(-1|[1-9][0-9]*)$ ]] || { echo "FUZZ_RUNS must be a positive number" >&2; exit 2; }
target_dir="${CARGO_TARGET_DIR:-$root/fuzz/target}/$mode"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

# The longest input a target reads: pin_block uses a selector byte, a key of up to 24 bytes, a
# PAN of up to 19 and a block of up to 16 (60 bytes); longer inputs only repeat the length
# check, so they would just make each execution slower. The others parse messages and pictures.
max_len() {
    case "$1" in
        pin_block) echo 64 ;;
        *) echo 4096 ;;
    esac
}

run_one() {
    local name="$1" log
    mkdir -p "$root/fuzz/corpus/$name"
    echo "== fuzzing $name for ${seconds}s ($mode, $forks process(es))"
    log="$(mktemp)"
    local options=(-max_total_time="$seconds" -max_len="$(max_len "$name")" -rss_limit_mb=1024
        -runs="$runs")
    if ((forks > 1)); then
        options+=(-fork="$forks")
    fi
    # New inputs go to corpus/ (ignored by git); seeds/ holds committed valid messages.
    if ! (cd "$root/fuzz" && RUSTC_BOOTSTRAP=1 cargo fuzz run "${build_flags[@]}" \
        --target-dir "$target_dir" "$name" "corpus/$name" "seeds/$name" -- "${options[@]}") \
        2>&1 | tee "$log"; then
        rm -f "$log"
        echo "== $name: FAILED (see the report above)" >&2
        exit 1
    fi
    summarise "$name" "$log"
    rm -f "$log"
}

# One line per target from libFuzzer's own report: "Done N runs in S second(s)" for one
# process; with -fork, the last "#N: cov: ..." status line and the "exiting ... time: Ss" line.
summarise() {
    local name="$1" log="$2" executions elapsed
    if done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)" && [[ -n "$done_line" ]]; then
        executions="$(awk '{print $2}' <<<"$done_line")"
        elapsed="$(awk '{print $5}' <<<"$done_line")"
    else
        executions="$(grep -oE '^#[0-9]+:' "$log" | tail -n 1 | tr -d '#:')"
        elapsed="$(grep -oE 'exiting: [0-9]+ time: [0-9]+s' "$log" | tail -n 1 | grep -oE '[0-9]+s$' | tr -d s)"
    fi
    executions="${executions:-0}"
    elapsed="${elapsed:-0}"
    echo "== $name: $executions executions in ${elapsed} s ($((executions / (elapsed > 0 ? elapsed : 1)))/s)"
}

if [[ "$target" == all ]]; then
    for name in "${targets[@]}"; do run_one "$name"; done
else
    [[ " ${targets[*]} " == *" $target "* ]] || { echo "unknown target $target (${targets[*]})" >&2; exit 2; }
    run_one "$target"
fi
