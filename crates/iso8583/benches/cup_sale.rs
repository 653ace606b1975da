#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Unpack + pack of a typical cup-bcd 0200 chip sale (with field 55): the host's per-request
//! codec cost. Target: ≤ 1 µs median on the project machine.

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
