#!/usr/bin/env bash
# pgbench TPC-B on this machine, for BENCHMARKS.md: the conventional yardstick issue 13 compares
# easypos with. Makes a scratch database, `pgbench -i -s 10`, then RUNS runs of
# `pgbench -c 16 -j 2 -T SECONDS` (built-in TPC-B-like script), prints each run's tps and the
# median, and drops the database.
#
#   scripts/pgbench-baseline.sh                 # 3 runs of 30 s against 127.0.0.1:5432 as postgres
#   RUNS=1 SECONDS_PER_RUN=5 scripts/pgbench-baseline.sh
#
# Connection: PGHOST, PGPORT, PGUSER as for psql (defaults 127.0.0.1, 5432, postgres).
set -euo pipefail

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
runs="${RUNS:-3}"
seconds="${SECONDS_PER_RUN:-30}"
clients="${CLIENTS:-16}"
threads="${THREADS:-2}"
scale="${SCALE:-10}"
db="easypos_pgbench_$$"

for tool in pgbench psql; do
    command -v "$tool" >/dev/null || { echo "FATAL: $tool is not installed (Debian: postgresql-client)" >&2; exit 2; }
done
psql -d postgres -qAtc 'SELECT 1' >/dev/null || { echo "FATAL: PostgreSQL is not reachable at $PGHOST:$PGPORT as $PGUSER" >&2; exit 2; }

psql -d postgres -qc "CREATE DATABASE $db"
trap 'psql -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true' EXIT

echo "== server: $(psql -d postgres -qAtc 'SELECT version()')"
echo "== synchronous_commit=$(psql -d postgres -qAtc 'SHOW synchronous_commit') fsync=$(psql -d postgres -qAtc 'SHOW fsync') shared_buffers=$(psql -d postgres -qAtc 'SHOW shared_buffers')"
echo "== pgbench -i -s $scale"
pgbench -i -q -s "$scale" "$db" 2>&1 | tail -n 1

results=()
for run in $(seq 1 "$runs"); do
    echo "== run $run: pgbench -c $clients -j $threads -T $seconds"
    output="$(pgbench -c "$clients" -j "$threads" -T "$seconds" "$db" 2>&1)"
    echo "$output" | grep -E 'latency average|tps =' | sed 's/^/   /'
    tps="$(echo "$output" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')"
    [[ -n "$tps" ]] || { echo "$output" >&2; echo "FATAL: no tps in pgbench's output" >&2; exit 1; }
    results+=("$tps")
done
sorted="$(printf '%s\n' "${results[@]}" | sort -g)"
median="$(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")"
echo "pgbench TPC-B tps: $(echo "$sorted" | paste -sd ' ') (median $median, min $(echo "$sorted" | head -n1), max $(echo "$sorted" | tail -n1))"
