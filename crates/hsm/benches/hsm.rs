//! HSM hot paths, target ≤ 3 µs each: PIN translation AES DUKPT → TDES zone key (format 4 →
//! format 0), and ARQC verification with ARPC (Visa CVN 18). Keys are imported once; the
//! software HSM caches unwrapped keys, as a hardware HSM keeps them in its memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use divan::{Bencher, black_box};
use hsm::{ArpcInput, ArqcRequest, Hsm, KeySpec, PinDestination, PinSource, SoftHsm};
use paycrypto::dukpt::aes as aes_dukpt;
use paycrypto::emv::{self, CryptogramVersion};
use paycrypto::pinblock::PinBlockFormat;
use paycrypto::{Pan, PinBlock, TdesKey};

fn main() {
    divan::main();
}

fn bytes(hex: &str) -> Vec<u8> {
    hex::decode(hex).unwrap()
}

#[divan::bench]
fn translate_pin_aes_dukpt_to_zone(bencher: Bencher) {
    let hsm = SoftHsm::new(&[0x42; 32]).unwrap();
    let bdk = hsm
        .import_clear_key(
            &KeySpec::bdk_aes(16),
            &bytes("FEDCBA9876543210F1F1F1F1F1F1F1F1"),
        )
        .unwrap();
    let zone = hsm
        .import_clear_key(
            &KeySpec::pin_zone_tdes(),
            &bytes("0123456789ABCDEFFEDCBA9876543210"),
        )
        .unwrap();
    let block = PinBlock::new(&bytes("A912150391AB65A67E52883D81CE2D15")).unwrap();
    let ikid = [0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56];
    let source = PinSource::AesDukpt {
        bdk: &bdk,
        ksn: aes_dukpt::Ksn::from_parts(&ikid, 1),
        key_type: aes_dukpt::KeyType::Aes128,
    };
    let destination = PinDestination {
        key: &zone,
        format: PinBlockFormat::Iso0,
    };
    let pan = Pan::new("4111111111111111").unwrap();
    bencher.bench_local(|| {
        hsm.translate_pin(black_box(&block), &source, &destination, &pan)
            .unwrap()
    });
}

#[divan::bench]
fn verify_arqc_and_arpc_cvn18(bencher: Bencher) {
    let hsm = SoftHsm::new(&[0x42; 32]).unwrap();
    let imk_clear = TdesKey::new(&bytes("0123456789ABCDEFFEDCBA9876543210")).unwrap();
    let imk = hsm
        .import_clear_key(&KeySpec::issuer_master_key(), imk_clear.expose())
        .unwrap();
    let pan = Pan::new("4761739001010119").unwrap();
    let data = bytes("000000002000000000000000012400000080000124110309003804823E5C00000103A4A002");
    let version = CryptogramVersion::Visa18;
    let icc = emv::icc_master_key(&imk_clear, &pan, 1).unwrap();
    let session = emv::session_key(&icc, [0, 1], version.session_derivation([0; 4])).unwrap();
    let arqc = emv::generate_arqc(&session, &data, version.padding()).unwrap();
    let request = ArqcRequest {
        issuer_master_key: &imk,
        pan: &pan,
        psn: 1,
        atc: [0, 1],
        unpredictable_number: [0; 4],
        cryptogram_version: version,
        data: &data,
        arqc,
    };
    let arpc = ArpcInput::Method2 {
        csu: [0, 0x82, 0, 0],
        proprietary: vec![],
    };
    bencher.bench_local(|| {
        let outcome = hsm.verify_arqc(black_box(&request), Some(&arpc)).unwrap();
        assert!(outcome.arqc_valid);
        outcome
    });
}
