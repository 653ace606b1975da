#!/usr/bin/env python3
"""ISO 8583 codec comparison for BENCHMARKS.md: easypos's iso8583 crate against pyiso8583, on the
same chip sale (0200 with PAN, track 2, PIN block, 112 bytes of field 55 and a MAC), measured on
this machine.

  pip install pyiso8583            # from PyPI
  python3 scripts/codec-compare.py # 3 runs; RUNS=5 for more

The message is the one crates/iso8583/benches/cup_sale.rs packs (tests/common/mod.rs): in
iso87-ascii, whose wire form is pyiso8583's `default` spec (ASCII numerics and lengths, binary
bitmap, raw binary fields), and in cup-bcd, which only easypos speaks. Before timing, the script
checks that pyiso8583 packs byte for byte what `easypos tools iso8583 encode --profile iso87-ascii`
packs (with the binary from EASYPOS, default target/release/easypos, when it exists).

Each run times easypos with divan (`cargo bench -p iso8583 --bench cup_sale`, median of its
samples) and pyiso8583 with timeit (median of 7 repeats of 20,000 calls, in the process's CPU
time). The table shows the
median of the runs and their spread (min-max)."""

import json
import os
import re
import statistics
import subprocess
import sys
import time
import timeit

try:
    import iso8583
    from iso8583.specs import default as SPEC
except ImportError:
    sys.exit("pyiso8583 is not installed: pip install pyiso8583")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = int(os.environ.get("RUNS", "3"))

# tests/common/mod.rs: SALE_FIELD55 and cup_sale().
FIELD55 = (
    "9F2608A1B2C3D4E5F60708" "9F270180" "9F101307010103A0A000010A010000000000A1B2C3D4"
    "9F370412345678" "9F36020001" "95050000000000" "9A03261125" "9C0100" "9F0206000000001000"
    "5F2A020156" "82025C00" "9F1A020156" "9F0306000000000000" "9F3303E0F1C8" "9F3403420300"
    "9F350122"
)
FIELDS = {
    "2": "6222021234567890123",
    "3": "000000",
    "4": "000000001000",
    "11": "000042",
    "14": "2812",
    "22": "051",
    "23": "001",
    "25": "00",
    "26": "12",
    "35": "6222021234567890123=28122011234567890",
    "41": "TERM0001",
    "42": "898310048990001",
    "49": "156",
    "52": "1B9C1845EB993A7A",
    "53": "2600000000000000",
    "55": FIELD55,
    "60": "22000001000500",
    "64": "1122334455667788",
}


def python_pack():
    message = {"t": "0200", **FIELDS}
    wire, _ = iso8583.encode(message, SPEC)
    return wire


def same_bytes_as_easypos(wire):
    binary = os.environ.get("EASYPOS", os.path.join(ROOT, "target/release/easypos"))
    if not os.path.exists(binary):
        print(f"note: {binary} not found; the byte-for-byte check is skipped (set EASYPOS)")
        return
    message = json.dumps({"mti": "0200", "fields": FIELDS})
    out = subprocess.run(
        [binary, "tools", "iso8583", "encode", "--profile", "iso87-ascii", message],
        check=True, capture_output=True, text=True,
    ).stdout
    found = re.search(r"\b([0-9A-F]{200,})\b", out)
    if not found:
        sys.exit(f"no packed hex in easypos's output:\n{out}")
    if bytes.fromhex(found.group(1)) != wire:
        sys.exit(f"pyiso8583 and easypos pack different bytes:\n{wire.hex().upper()}\n{found.group(1)}")
    print(f"same {len(wire)} bytes from pyiso8583 and easypos (iso87-ascii)")


def python_times():
    wire = python_pack()
    message = {"t": "0200", **FIELDS}
    number = 20_000
    # CPU time of this process, not wall time: the machine is shared with other builds.
    clock = time.process_time
    pack = timeit.repeat(lambda: iso8583.encode(dict(message), SPEC), repeat=7, number=number, timer=clock)
    unpack = timeit.repeat(lambda: iso8583.decode(wire, SPEC), repeat=7, number=number, timer=clock)
    to_ns = lambda runs: statistics.median(runs) / number * 1e9
    return {"pack": to_ns(pack), "unpack": to_ns(unpack)}


UNITS = {"ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def rust_times():
    out = subprocess.run(
        ["cargo", "bench", "-q", "-p", "iso8583", "--bench", "cup_sale"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    times = {}
    for line in out.splitlines():
        # ├─ pack_cup_sale   301.2 ns │ 1.2 µs │ 310.5 ns │ 320 ns │ 100 │ 1600
        found = re.match(r"^\W*(\w+)\s+([\d.]+) (\S+)\s+│\s+[\d.]+ \S+\s+│\s+([\d.]+) (\S+)", line)
        if found:
            times[found.group(1)] = float(found.group(4)) * UNITS[found.group(5)]
    wanted = ["pack_cup_sale", "unpack_cup_sale", "pack_iso87_sale", "unpack_iso87_sale"]
    missing = [name for name in wanted if name not in times]
    if missing:
        sys.exit(f"divan's output lacks {missing}:\n{out}")
    return times


def main():
    wire = python_pack()
    same_bytes_as_easypos(wire)
    print(f"pyiso8583 {getattr(iso8583, '__version__', '?')}, Python {sys.version.split()[0]}; {RUNS} runs")
    rows = {
        ("easypos", "iso87-ascii", "pack"): [],
        ("easypos", "iso87-ascii", "unpack"): [],
        ("easypos", "cup-bcd", "pack"): [],
        ("easypos", "cup-bcd", "unpack"): [],
        ("pyiso8583", "iso87-ascii", "pack"): [],
        ("pyiso8583", "iso87-ascii", "unpack"): [],
    }
    for run in range(RUNS):
        rust = rust_times()
        python = python_times()
        rows[("easypos", "iso87-ascii", "pack")].append(rust["pack_iso87_sale"])
        rows[("easypos", "iso87-ascii", "unpack")].append(rust["unpack_iso87_sale"])
        rows[("easypos", "cup-bcd", "pack")].append(rust["pack_cup_sale"])
        rows[("easypos", "cup-bcd", "unpack")].append(rust["unpack_cup_sale"])
        rows[("pyiso8583", "iso87-ascii", "pack")].append(python["pack"])
        rows[("pyiso8583", "iso87-ascii", "unpack")].append(python["unpack"])
        print(f"run {run + 1}: " + ", ".join(f"{k[0]} {k[1]} {k[2]} {v[-1]:.0f} ns" for k, v in rows.items()))
    print()
    print("| codec | profile | operation | median | spread (min-max) | vs pyiso8583 |")
    print("|---|---|---|---|---|---|")
    for (codec, profile, operation), values in rows.items():
        median = statistics.median(values)
        python = statistics.median(rows[("pyiso8583", "iso87-ascii", operation)])
        print(f"| {codec} | {profile} | {operation} | {median:,.0f} ns | {min(values):,.0f}-{max(values):,.0f} ns | {python / median:,.1f}× faster |"
              if codec == "easypos" else
              f"| {codec} | {profile} | {operation} | {median:,.0f} ns | {min(values):,.0f}-{max(values):,.0f} ns | 1× |")


if __name__ == "__main__":
    main()
