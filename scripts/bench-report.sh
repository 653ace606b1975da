#!/usr/bin/env bash
# The measurements of BENCHMARKS.md, each run RUNS times (default 3), with their medians and
# spread. Needs a release build (`cargo build --release -p easypos`), PostgreSQL for the
# baseline and pgbench (127.0.0.1:5432 as postgres unless PGHOST/PGPORT/PGUSER say otherwise),
# and perf (linux-perf) for the CPU split. Results go to OUT (default bench-results/), one JSON
# per run, and the summary to stdout.
#
#   scripts/bench-report.sh                 # everything
#   scripts/bench-report.sh sales baseline  # some parts: sales open risk baseline split postgres pgbench
set -euo pipefail
cd "$(dirname "$0")/.."

EASYPOS="${EASYPOS:-${CARGO_TARGET_DIR:-target}/release/easypos}"
RUNS="${RUNS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
TERMINALS="${TERMINALS:-400}"
RATE="${RATE:-1500}"
CLIENTS="${CLIENTS:-16}"
OUT="${OUT:-bench-results}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export EASYPOS_LOG_LEVEL=warn
parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(sales open risk baseline split postgres pgbench)
[[ -x "$EASYPOS" ]] || { echo "FATAL: no $EASYPOS: cargo build --release -p easypos" >&2; exit 2; }
EASYPOS="$(realpath "$EASYPOS")"
mkdir -p "$OUT"

wants() { [[ " ${parts[*]} " == *" $1 "* ]]; }

# bench sales in one process (generator and host share it): closed loop, with and without
# the risk engine, and open loop at RATE.
if wants sales; then
    for run in $(seq 1 "$RUNS"); do
        "$EASYPOS" bench sales --terminals "$TERMINALS" --seconds "$SECONDS_PER_RUN" --json > "$OUT/sales-$run.json"
    done
fi
if wants risk; then
    for run in $(seq 1 "$RUNS"); do
        "$EASYPOS" bench sales --terminals "$TERMINALS" --seconds "$SECONDS_PER_RUN" --no-risk --json > "$OUT/sales-no-risk-$run.json"
    done
fi
if wants open; then
    for run in $(seq 1 "$RUNS"); do
        "$EASYPOS" bench sales --terminals "$TERMINALS" --seconds "$SECONDS_PER_RUN" --rate "$RATE" --json > "$OUT/sales-open-$run.json"
    done
fi

# The conventional baseline, in a scratch database.
if wants baseline; then
    db="easypos_baseline_$$"
    psql -d postgres -qc "CREATE DATABASE $db"
    for run in $(seq 1 "$RUNS"); do
        "$EASYPOS" bench baseline --database-url "postgres://$PGUSER@$PGHOST:$PGPORT/$db" \
            --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --json > "$OUT/baseline-$run.json" || status=$?
        [[ -z "${status:-}" ]] || { psql -d postgres -qc "DROP DATABASE $db WITH (FORCE)"; exit "$status"; }
    done
    psql -d postgres -qc "DROP DATABASE $db WITH (FORCE)"
fi

# The host in `easypos up` on a provisioned data directory, the generator in `bench sales
# --target`; perf stat counts the host's CPU during each run. `split`: on SQLite (the CPU split
# between generator and host); `postgres`: on a scratch PostgreSQL database (prefix `pg`).
target_runs() {
    local prefix="$1" database_url="$2"
    local dir up address
    dir="$(mktemp -d)"
    export EASYPOS_DATA_DIR="$dir/data"
    if [[ -n "$database_url" ]]; then export EASYPOS_DATABASE_URL="$database_url"; else unset EASYPOS_DATABASE_URL; fi
    (cd "$dir" && "$EASYPOS" bench provision --terminals "$TERMINALS" --fleet "$dir/fleet.json" >/dev/null)
    (cd "$dir" && exec "$EASYPOS" up --http 127.0.0.1:0 --iso8583 127.0.0.1:0 > "$dir/up.log" 2>&1) &
    up=$!   # the subshell exec'd easypos up
    for _ in $(seq 1 1200); do grep -q "ISO 8583 " "$dir/up.log" 2>/dev/null && break; sleep 0.1; done
    address="$(grep -o 'ISO 8583 *[0-9.]*:[0-9]*' "$dir/up.log" | grep -o '[0-9.]*:[0-9]*$' | head -n1 || true)"
    if [[ -z "$address" ]]; then
        cat "$dir/up.log" >&2; kill "$up" 2>/dev/null || true
        echo "FATAL: easypos up did not say its ISO 8583 address" >&2; exit 1
    fi
    for run in $(seq 1 "$RUNS"); do
        perf stat -x, -e task-clock -p "$up" -o "$OUT/$prefix-host-$run.perf" &
        perf=$!
        "$EASYPOS" bench sales --target "$address" --fleet "$dir/fleet.json" --seconds "$SECONDS_PER_RUN" --json > "$OUT/$prefix-$run.json"
        kill -INT "$perf"; wait "$perf" || true
    done
    kill "$up"; wait "$up" || true
    rm -rf "$dir"
    unset EASYPOS_DATA_DIR EASYPOS_DATABASE_URL
}
if wants split; then
    target_runs split ""
fi
if wants postgres; then
    db="easypos_bench_pg_$$"
    psql -d postgres -qc "CREATE DATABASE $db"
    target_runs pg "postgres://$PGUSER@$PGHOST:$PGPORT/$db"
    psql -d postgres -qc "DROP DATABASE $db WITH (FORCE)"
fi

if wants pgbench; then
    RUNS="$RUNS" scripts/pgbench-baseline.sh | tee "$OUT/pgbench.txt"
fi

python3 - "$OUT" <<'PY'
import glob, json, os, re, statistics, sys
out = sys.argv[1]

def runs(prefix):
    files = sorted(glob.glob(os.path.join(out, f"{prefix}-[0-9]*.json")))
    return [json.load(open(f)) for f in files]

def show(name, values, unit="", digits=0):
    if not values:
        return
    med = statistics.median(values)
    print(f"{name}: median {med:,.{digits}f}{unit} (min {min(values):,.{digits}f}, max {max(values):,.{digits}f}; {len(values)} runs)")

for prefix, label in [("sales", "bench sales, closed loop, risk rules on"),
                      ("sales-no-risk", "bench sales, closed loop, no risk engine"),
                      ("sales-open", "bench sales, open loop"),
                      ("split", "bench sales --target (generator and host in two processes)"),
                      ("pg", "bench sales --target, easypos up on PostgreSQL")]:
    reports = runs(prefix)
    if not reports:
        continue
    print(f"== {label}")
    show("  sales/s", [r["sales_per_second"] for r in reports])
    show("  p50", [r["p50_micros"] / 1000 for r in reports], " ms", 1)
    show("  p99", [r["p99_micros"] / 1000 for r in reports], " ms", 1)
    show("  p99.9", [r["p999_micros"] / 1000 for r in reports], " ms", 1)
    cpu = [r["cpu_micros"] / r["sales"] for r in reports if r.get("cpu_micros") and r["sales"]]
    show("  CPU per sale, this process" + (" (generator)" if prefix in ("split", "pg") else ""), cpu, " µs", 1)
    if prefix in ("split", "pg"):
        host = []
        for index, report in enumerate(reports, 1):
            text = open(os.path.join(out, f"{prefix}-host-{index}.perf")).read()
            found = re.search(r"^([\d.]+),msec,task-clock", text, re.M)
            if found and report["sales"]:
                host.append(float(found.group(1)) * 1000 / report["sales"])
        show("  CPU per sale, host (easypos up, perf stat)", host, " µs", 1)
reports = runs("baseline")
if reports:
    print("== bench baseline (PostgreSQL, one transaction per authorization)")
    show("  authorizations/s", [r["authorizations_per_second"] for r in reports])
    show("  p50", [r["p50_micros"] / 1000 for r in reports], " ms", 1)
    show("  p99", [r["p99_micros"] / 1000 for r in reports], " ms", 1)
    show("  client CPU per authorization", [r["client_cpu_micros"] / r["authorizations"] for r in reports if r.get("client_cpu_micros")], " µs", 1)
    show("  server CPU per authorization", [r["server_cpu_micros"] / r["authorizations"] for r in reports if r.get("server_cpu_micros")], " µs", 1)
    print(f"  synchronous_commit={reports[0]['synchronous_commit']} fsync={reports[0]['fsync']}")
PY
