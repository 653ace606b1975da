#!/usr/bin/env bash
# Throughput of 1, 2 and 3 easypos hosts on one PostgreSQL behind HAProxy (docs/scaling.md):
#   scripts/multinode-bench.sh [EASYPOS_BINARY] [TERMINALS] [SECONDS] [RUNS]
# Makes a fresh database on the PostgreSQL at $PGURL (default postgres://postgres@127.0.0.1:5432),
# provisions the bench world into it, then for 1, 2 and 3 hosts: starts them (each its own
# ports and data directory, one HSM master key), HAProxy with packaging/haproxy/easypos.cfg,
# and RUNS closed-loop `easypos bench sales --target` runs through HAProxy; prints one line
# per run and drops the database at the end. Everything runs on this machine: the load
# generator, the hosts, HAProxy and PostgreSQL share its cores.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
easypos="${1:-$root/target/release/easypos}"
terminals="${2:-200}"
seconds="${3:-10}"
runs="${4:-3}"
pgurl="${PGURL:-postgres://postgres@127.0.0.1:5432}"
db="easypos_multinode_$$"
work="$(mktemp -d /tmp/easypos-multinode.XXXXXX)"
pids=()

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_all() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}

cleanup() {
    stop_all
    psql "$pgurl/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

psql "$pgurl/postgres" -qc "CREATE DATABASE $db"
url="$pgurl/$db"
cd "$work"
printf 'data_dir = "."\n[database]\nurl = "%s"\n[log]\nlevel = "warn"\n' "$url" > easypos.toml
"$easypos" bench provision --terminals "$terminals" --cards-per-terminal 4 --fleet fleet.json >/dev/null

hosts=()
for index in 1 2 3; do
    dir="$work/host$index"
    mkdir -p "$dir"
    port="$(free_port)"
    hosts+=("127.0.0.1:$port")
    printf 'data_dir = "."\n[database]\nurl = "%s"\n[http]\nlisten = "127.0.0.1:%s"\n[iso8583]\nlisten = "127.0.0.1:%s"\n[hsm]\nlmk_file = "%s"\n[risk]\nrules = "%s"\n[log]\nlevel = "warn"\n' \
        "$url" "$(free_port)" "$port" "$work/hsm-lmk.key" "$work/risk.toml" > "$dir/easypos.toml"
done

for count in 1 2 3; do
    for index in $(seq 1 "$count"); do
        (cd "$work/host$index" && exec "$easypos" up > up.out 2> up.log) &
        pids+=("$!")
        until grep -q "Press Ctrl-C" "$work/host$index/up.out" 2>/dev/null; do sleep 0.2; done
    done
    lb="127.0.0.1:$(free_port)"
    # HAProxy spreads connections over the hosts that run; the others are down from the start.
    EASYPOS_LB_LISTEN="$lb" EASYPOS_LB_MAXCONN=5000 \
        EASYPOS_HOST1="${hosts[0]}" EASYPOS_HOST2="$( [ "$count" -ge 2 ] && echo "${hosts[1]}" || echo 127.0.0.1:1 )" \
        EASYPOS_HOST3="$( [ "$count" -ge 3 ] && echo "${hosts[2]}" || echo 127.0.0.1:1 )" \
        haproxy -f "$root/packaging/haproxy/easypos.cfg" -db > haproxy.log 2>&1 &
    pids+=("$!")
    # Listening, and the absent hosts marked down by two failed health checks.
    until python3 -c 'import socket,sys; socket.create_connection(sys.argv[1].split(":"), 1)' "$lb" 2>/dev/null; do sleep 0.2; done
    sleep 3
    for run in $(seq 1 "$runs"); do
        report="$("$easypos" bench sales --target "$lb" --fleet fleet.json --seconds "$seconds" --json || true)"
        echo "hosts=$count run=$run $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("sales_per_second=%.0f approvals=%d errors=%d p50_ms=%.1f p99_ms=%.1f" % (r["sales_per_second"], r["approvals"], r["errors"], r["p50_micros"]/1000, r["p99_micros"]/1000))' "$report")"
    done
    stop_all
done
