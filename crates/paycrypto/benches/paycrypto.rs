//! The pure building blocks under the HSM hot paths, to see where time goes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use divan::{Bencher, black_box};
use paycrypto::dukpt::{aes as aes_dukpt, tdes};
use paycrypto::emv;
use paycrypto::mac::Padding;
use paycrypto::pinblock::{self, PinBlockFormat, PinKey};
use paycrypto::{AesKey, Pan, PinBlock, TdesKey};

fn main() {
    divan::main();
}

fn bytes(hex: &str) -> Vec<u8> {
    hex::decode(hex).unwrap()
}

#[divan::bench]
fn aes_dukpt_host_pin_key(bencher: Bencher) {
    let bdk = AesKey::new(&bytes("FEDCBA9876543210F1F1F1F1F1F1F1F1")).unwrap();
    // A counter with 8 one bits: a typical mid-life device.
    let ksn = aes_dukpt::Ksn::from_parts(
        &[0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56],
        0x0000_00FF,
    );
    let usage = aes_dukpt::KeyUsage::PinEncryption;
    bencher.bench_local(|| {
        aes_dukpt::host_working_key(black_box(&bdk), &ksn, usage, aes_dukpt::KeyType::Aes128)
            .unwrap()
    });
}

#[divan::bench]
fn tdes_dukpt_host_pin_key(bencher: Bencher) {
    let bdk = TdesKey::new(&bytes("0123456789ABCDEFFEDCBA9876543210")).unwrap();
    let ksn = tdes::Ksn::new(&bytes("FFFF9876543210E000FF")).unwrap();
    bencher.bench_local(|| {
        tdes::working_key(
            &tdes::host_transaction_key(black_box(&bdk), &ksn).unwrap(),
            tdes::Variant::Pin,
        )
        .unwrap()
    });
}

#[divan::bench]
fn format4_decode(bencher: Bencher) {
    let key = AesKey::new(&bytes("AF8CB133A78F8DC2D1359F18527593FB")).unwrap();
    let block = PinBlock::new(&bytes("A912150391AB65A67E52883D81CE2D15")).unwrap();
    let pan = Pan::new("4111111111111111").unwrap();
    bencher.bench_local(|| {
        pinblock::decrypt_pin_block(
            PinBlockFormat::Iso4,
            PinKey::Aes(&key),
            black_box(&block),
            Some(&pan),
        )
        .unwrap()
    });
}

#[divan::bench]
fn arqc_verify_from_issuer_master_key(bencher: Bencher) {
    let imk = TdesKey::new(&bytes("0123456789ABCDEFFEDCBA9876543210")).unwrap();
    let pan = Pan::new("4761739001010119").unwrap();
    let data = bytes("000000002000000000000000012400000080000124110309003804823E5C00000103A4A002");
    bencher.bench_local(|| {
        let icc = emv::icc_master_key(black_box(&imk), &pan, 1).unwrap();
        let session = emv::session_key(&icc, [0, 1], emv::SessionKeyDerivation::Common).unwrap();
        emv::verify_arqc(&session, &data, Padding::Method2, &[0; 8]).unwrap()
    });
}
