#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Unpack + pack of a typical cup-bcd 0200 chip sale (with field 55): the host's per-request
//! codec cost. Target: ≤ 1 µs median on the project machine.
//!
//! Pack and unpack apart, on cup-bcd and on the same sale in iso87-ascii (no TPDU or header),
//! whose wire form is pyiso8583's `default` spec: `scripts/codec-compare.sh` measures pyiso8583
//! on the very same bytes and puts both in BENCHMARKS.md's codec table.

#[path = "../tests/common/mod.rs"]
mod common;

use iso8583::Profile;

fn main() {
    divan::main();
}

#[divan::bench]
fn unpack_and_pack_cup_sale(bencher: divan::Bencher) {
    let profile = Profile::builtin("cup-bcd").unwrap();
    let icc = common::field55();
    let wire = profile.pack(&common::cup_sale(&icc)).unwrap();
    let mut out = Vec::with_capacity(512);
    bencher.bench_local(|| {
        let message = profile.unpack(divan::black_box(&wire)).unwrap();
        out.clear();
        profile.pack_into(&message, &mut out).unwrap();
        divan::black_box(out.len())
    });
}

#[divan::bench]
fn unpack_cup_sale(bencher: divan::Bencher) {
    let profile = Profile::builtin("cup-bcd").unwrap();
    let icc = common::field55();
    let wire = profile.pack(&common::cup_sale(&icc)).unwrap();
    bencher.bench_local(|| profile.unpack(divan::black_box(&wire)).unwrap().has(55));
}

/// The sale of `cup_sale` as iso87-ascii carries it: no TPDU and no header.
fn iso87_sale(icc: &[u8]) -> iso8583::Message<'_> {
    let mut sale = common::cup_sale(icc);
    sale.tpdu = None;
    sale.header = b"".as_slice().into();
    sale
}

#[divan::bench]
fn pack_cup_sale(bencher: divan::Bencher) {
    let profile = Profile::builtin("cup-bcd").unwrap();
    let icc = common::field55();
    let sale = common::cup_sale(&icc);
    let mut out = Vec::with_capacity(512);
    bencher.bench_local(|| {
        out.clear();
        profile
            .pack_into(divan::black_box(&sale), &mut out)
            .unwrap();
        divan::black_box(out.len())
    });
}

#[divan::bench]
fn pack_iso87_sale(bencher: divan::Bencher) {
    let profile = Profile::builtin("iso87-ascii").unwrap();
    let icc = common::field55();
    let sale = iso87_sale(&icc);
    let mut out = Vec::with_capacity(512);
    bencher.bench_local(|| {
        out.clear();
        profile
            .pack_into(divan::black_box(&sale), &mut out)
            .unwrap();
        divan::black_box(out.len())
    });
}

#[divan::bench]
fn unpack_iso87_sale(bencher: divan::Bencher) {
    let profile = Profile::builtin("iso87-ascii").unwrap();
    let icc = common::field55();
    let wire = profile.pack(&iso87_sale(&icc)).unwrap();
    bencher.bench_local(|| profile.unpack(divan::black_box(&wire)).unwrap().has(55));
}
