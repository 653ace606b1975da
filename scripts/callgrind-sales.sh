#!/usr/bin/env bash
# Instructions per sale of `easypos bench sales` (docs/performance.md, "Instructions per
# sale"): two runs under callgrind that differ only in how long they sell. The difference of
# their instruction counts over the difference of their sales leaves the setup out (the
# world, its password hashes, the sign-ons). Instruction counts do not depend on the machine's
# load, so versions compare on a shared machine; sales/s under callgrind mean nothing.
#
#   scripts/callgrind-sales.sh [EASYPOS] [TERMINALS] [SHORT_SECONDS] [LONG_SECONDS] [TOP]
#
# Prints the instructions per sale of the whole process and of its parts (the host's handler
# tasks, connections and receipt signer; the SQLite writer; the load generator), then the TOP
# functions by inclusive instructions per sale. The build needs line tables (the release
# profile has them). Keeps the callgrind files in $OUT (default: a temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
EASYPOS="$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/easypos}")"
TERMINALS="${2:-50}"
SHORT="${3:-10}"
LONG="${4:-40}"
TOP="${5:-40}"
OUT="${OUT:-$(mktemp -d)}"
[[ -x "$EASYPOS" ]] || { echo "FATAL: no $EASYPOS (cargo build --release -p easypos)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "FATAL: valgrind is not installed" >&2; exit 2; }

for seconds in "$SHORT" "$LONG"; do
    EASYPOS_LOG_LEVEL=warn valgrind --tool=callgrind --callgrind-out-file="$OUT/s$seconds.out" \
        "$EASYPOS" bench sales --terminals "$TERMINALS" --seconds "$seconds" --json \
        >"$OUT/s$seconds.json" 2>"$OUT/s$seconds.err" &
done
wait
echo "callgrind files in $OUT"

python3 - "$OUT/s$SHORT" "$OUT/s$LONG" "$TOP" <<'PY'
import json, re, subprocess, sys

short, long_, top = sys.argv[1], sys.argv[2], int(sys.argv[3])

def load(prefix):
    sales = json.load(open(prefix + ".json"))["sales"]
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--auto=no", "--threshold=100", prefix + ".out"],
        capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        if not m or m.group(2).startswith("=>"):
            continue
        name = re.sub(r" \[[^\]]*\]$", "", m.group(2))
        name = name.split(":", 1)[1] if ":" in name else name
        # Inlined code is listed once per source file: keep the largest (the whole function).
        costs[name] = max(costs.get(name, 0), int(m.group(1).replace(",", "")))
    return sales, costs

(s1, a), (s2, b) = load(short), load(long_)
per_sale = lambda name: (b.get(name, 0) - a.get(name, 0)) / (s2 - s1)
print(f"sales: {s1} and {s2}")
print(f"instructions per sale, whole process: {per_sale('PROGRAM TOTALS'):,.0f}")
parts = {
    "host: handler tasks (listener's spawn_handler)": ["host::listener::spawn_handler::{{closure}}"],
    "host: connections (read, write)": ["host::listener::Listener::serve::{{closure}}::{{closure}}"],
    "host: receipt signer": ["aftersale::batcher::run::{{closure}}"],
    "SQLite writer thread": ["store::sqlite::Writer::run"],
    "load generator": ["bench::sales::sell::{{closure}}"],
}
host = 0
for label, names in parts.items():
    value = sum(per_sale(name) for name in names)
    host += value if label.startswith("host") else 0
    print(f"  {label}: {value:,.0f}")
print(f"  host, the three together: {host:,.0f}")
skip = re.compile(r"^(tokio::|std::|core::|alloc::|<std|<core|<alloc|<tokio|\(below|main$|PROGRAM|"
                  r"__libc|start_thread|easypos::|bench::sales::sales_throughput|bench::world|demo::|"
                  r"events annotated|\?\?\?)")
print(f"top {top} by inclusive instructions per sale:")
rows = sorted(((per_sale(name), name) for name in set(a) | set(b) if not skip.search(name)), reverse=True)
for value, name in rows[:top]:
    print(f"{value:>10,.0f}  {name[:150]}")
PY
