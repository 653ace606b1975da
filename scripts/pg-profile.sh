#!/usr/bin/env bash
# Statements per sale on the PostgreSQL backend (BENCHMARKS.md, "The PostgreSQL backend,
# profiled"): provisions a scratch database, runs `easypos up` on it with every statement of
# that database logged (log_min_duration_statement = 0, set on the scratch database only),
# drives it with `bench sales --target`, and prints the run and, per statement, how many times
# PostgreSQL parsed, bound and executed it and how long it took there.
#
#   scripts/pg-profile.sh [EASYPOS] [TERMINALS] [SECONDS]
#
# Needs PostgreSQL on 127.0.0.1:5432 as postgres (PGHOST/PGPORT/PGUSER to change) and read
# access to its log (LOG, default /var/log/postgresql/postgresql-15-main.log).
set -euo pipefail
cd "$(dirname "$0")/.."
EASYPOS="$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/easypos}")"
TERMINALS="${2:-200}"
SECONDS_TO_RUN="${3:-8}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
LOG="${LOG:-/var/log/postgresql/postgresql-15-main.log}"
[[ -x "$EASYPOS" ]] || { echo "FATAL: no $EASYPOS (cargo build --release -p easypos)" >&2; exit 2; }
[[ -r "$LOG" ]] || { echo "FATAL: cannot read the PostgreSQL log $LOG (set LOG)" >&2; exit 2; }

db="easypos_profile_$$"
dir="$(mktemp -d)"
up=""
cleanup() {
    [[ -n "$up" ]] && kill "$up" 2>/dev/null && wait "$up" 2>/dev/null || true
    psql -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    rm -rf "$dir"
}
trap cleanup EXIT
psql -d postgres -qc "CREATE DATABASE $db"
psql -d postgres -qc "ALTER DATABASE $db SET log_min_duration_statement = 0"
export EASYPOS_DATA_DIR="$dir/data" EASYPOS_DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$db" EASYPOS_LOG_LEVEL=warn
(cd "$dir" && "$EASYPOS" bench provision --terminals "$TERMINALS" --fleet "$dir/fleet.json" >/dev/null)
(cd "$dir" && exec "$EASYPOS" up --http 127.0.0.1:0 --iso8583 127.0.0.1:0 > "$dir/up.log" 2>&1) &
up=$!
for _ in $(seq 1 600); do grep -q "ISO 8583 " "$dir/up.log" 2>/dev/null && break; sleep 0.1; done
address="$(grep -o 'ISO 8583 *[0-9.]*:[0-9]*' "$dir/up.log" | grep -o '[0-9.]*:[0-9]*$' | head -n1 || true)"
[[ -n "$address" ]] || { cat "$dir/up.log" >&2; echo "FATAL: easypos up did not start" >&2; exit 1; }
# Sign-ons and first statements out of the way, then the measured run.
"$EASYPOS" bench sales --target "$address" --fleet "$dir/fleet.json" --seconds 2 --json > /dev/null
start="$(stat -c %s "$LOG")"
commits_before="$(psql -d "$db" -qAtc "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")"
"$EASYPOS" bench sales --target "$address" --fleet "$dir/fleet.json" --seconds "$SECONDS_TO_RUN" --json > "$dir/run.json"
sleep 1
commits_after="$(psql -d "$db" -qAtc "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")"
tail -c +"$((start + 1))" "$LOG" > "$dir/statements.log"
python3 - "$dir/run.json" "$dir/statements.log" "$((commits_after - commits_before))" <<'PY'
import json, re, sys
from collections import defaultdict
run = json.load(open(sys.argv[1]))
sales = run["sales"]
print(f"{sales} sales, {run['sales_per_second']:.0f}/s, p50 {run['p50_micros'] // 1000} ms, "
      f"p99 {run['p99_micros'] // 1000} ms, errors {run['errors']}; "
      f"{int(sys.argv[3])} transactions ({int(sys.argv[3]) / max(sales, 1):.2f} per sale)")
count, total = defaultdict(int), defaultdict(float)
pattern = re.compile(r"duration: ([0-9.]+) ms  (parse|bind|execute) [^:]*: (.{0,60})")
for line in open(sys.argv[2], errors="replace"):
    found = pattern.search(line)
    if found:
        key = (found.group(2), re.sub(r"\$\d+", "$", found.group(3)))
        count[key] += 1
        total[key] += float(found.group(1))
print(f"{'count':>7} {'per sale':>8} {'ms total':>9}  step statement")
for key in sorted(count, key=lambda k: -total[k])[:25]:
    print(f"{count[key]:>7} {count[key] / max(sales, 1):>8.2f} {total[key]:>9.1f}  {key[0]:<7} {key[1]}")
PY
