//! The issuer's share of a full-check chip sale with PIN: status, expiry, ARQC verification
//! (ICC master key and session key derived per call), ATC check, PIN verification against a
//! PVV, daily limit — and the ARPC for the response.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hsm::{Hsm, KeySpec, PinSource, SoftHsm};
use iso8583::ResponseCode;
use issuer::*;
use money::{Amount, Currency};
use paycrypto::emv::{self, CryptogramVersion};
use paycrypto::pinblock::{self, PinBlockFormat, PinKey};
use paycrypto::{Pan, Pin, TdesKey};

fn main() {
    divan::main();
}

const TEST_KEY: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZONE_KEY: &str = "89B07B35A1B3F47E89B07B35A1B3F47E";
const CDOL1_DATA: &str =
    "000000002000000000000000015600000080000156251125003804823E5C00000103A4A002";

#[divan::bench]
fn chip_sale_with_pin(bencher: divan::Bencher) {
    let hsm = SoftHsm::new(&[0x42; 32]).unwrap();
    let clear = TdesKey::new(&hex::decode(TEST_KEY).unwrap()).unwrap();
    let zone_clear = TdesKey::new(&hex::decode(ZONE_KEY).unwrap()).unwrap();
    let keys = CardKeys {
        cvk: hsm
            .import_clear_key(&KeySpec::cvk(), clear.expose())
            .unwrap(),
        pvk: hsm
            .import_clear_key(&KeySpec::pvk_visa(), clear.expose())
            .unwrap(),
        imk_ac: hsm
            .import_clear_key(&KeySpec::issuer_master_key(), clear.expose())
            .unwrap(),
    };
    let zone = hsm
        .import_clear_key(&KeySpec::pin_zone_tdes(), zone_clear.expose())
        .unwrap();
    let pan = Pan::new("6212340000100008").unwrap();
    let pin = Pin::new("1234").unwrap();
    let card = CardProfile {
        status: CardStatus::Active,
        expiry: YearMonth::parse_yymm("3012").unwrap(),
        service_code: "201".into(),
        currency: Currency::CNY,
        pin: Some(PinReference::VisaPvv {
            pvki: 1,
            pvv: paycrypto::card::pvv(&clear, &pan, 1, &pin).unwrap(),
        }),
        pin_failures: 0,
        last_atc: Some(4),
        cryptogram_version: CryptogramVersion::Visa18,
        daily_limit: None,
        spent: Amount::zero(Currency::CNY),
        spent_on: None,
    };
    let data = hex::decode(CDOL1_DATA).unwrap();
    let un = [0x38, 0x04, 0x82, 0x3E];
    let icc = emv::icc_master_key(&clear, &pan, 1).unwrap();
    let session = emv::session_key(
        &icc,
        [0, 5],
        CryptogramVersion::Visa18.session_derivation(un),
    )
    .unwrap();
    let chip = ChipData {
        psn: 1,
        atc: 5,
        unpredictable_number: un,
        data: &data,
        arqc: emv::generate_arqc(&session, &data, CryptogramVersion::Visa18.padding()).unwrap(),
    };
    let block = pinblock::encrypt_pin_block(
        PinBlockFormat::Iso0,
        PinKey::Tdes(&zone_clear),
        &pin,
        Some(&pan),
        &[0; 8],
    )
    .unwrap();
    let request = AuthorizationRequest {
        kind: TransactionKind::Purchase,
        amount: Amount::new(12_000, Currency::CNY),
        pan: &pan,
        presentation: Presentation::Chip(chip),
        pin: Some(PinData {
            block: &block,
            source: PinSource::Zone {
                key: &zone,
                format: PinBlockFormat::Iso0,
            },
        }),
        today: BusinessDate {
            year: 2026,
            month: 11,
            day: 25,
        },
    };
    assert_eq!(
        decide(&hsm, &card, &keys, &request).response,
        ResponseCode::Approved
    );
    bencher.bench_local(|| {
        let decision = decide(&hsm, &card, &keys, divan::black_box(&request));
        arpc(&hsm, &card, &keys, &pan, &chip, decision.response).unwrap()
    });
}
