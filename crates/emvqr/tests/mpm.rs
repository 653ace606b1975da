#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Merchant-presented QR: published samples, building, rejections and round-trip properties.

use emvqr::{DataObject, Initiation, MerchantAccount, MerchantQr, QrError, verify_crc};
use proptest::prelude::*;

/// EMVCo QRCPS MPM v1.0 sample payload, as quoted by many public parsers (STANDARDS.md §7 [42]).
const EMVCO_SAMPLE: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

/// Pix BR Code manual sample (Banco Central do Brasil), CRC 1D3D (STANDARDS.md §7 [43]).
const PIX_SAMPLE: &str = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";

#[test]
fn emvco_sample_parses_field_by_field() {
    let qr = MerchantQr::parse(EMVCO_SAMPLE).unwrap();
    assert_eq!(qr.initiation, Some(Initiation::Dynamic));
    assert_eq!(qr.accounts.len(), 2);
    assert_eq!(qr.accounts[0].id, 29);
    assert_eq!(qr.accounts[0].gui(), Some("D15600000000"));
    assert_eq!(qr.accounts[1].gui(), Some("D15600000001"));
    assert_eq!(
        (qr.mcc.as_str(), qr.currency.as_str(), qr.country.as_str()),
        ("4111", "156", "CN")
    );
    assert_eq!(
        (qr.name.as_str(), qr.city.as_str()),
        ("BEST TRANSPORT", "BEIJING")
    );
    assert_eq!(qr.amount.as_deref(), Some("23.72"));
    assert_eq!(qr.tip_indicator.as_deref(), Some("01"));
    let language = qr.language.clone().unwrap();
    assert_eq!(
        (
            language.language.as_str(),
            language.name.as_str(),
            language.city.as_deref()
        ),
        ("ZH", "最佳运输", Some("北京"))
    );
    assert_eq!(qr.additional(3), Some("1234"));
    assert_eq!(qr.additional(6), Some("***"));
    assert_eq!(qr.additional(9), Some("ME"));
    assert_eq!(qr.other[0].id, 91);
    assert_eq!(qr.other[0].child(0), Some("A011223344998877"));
}

#[test]
fn pix_sample_parses() {
    let qr = MerchantQr::parse(PIX_SAMPLE).unwrap();
    assert_eq!(qr.accounts[0].gui(), Some("br.gov.bcb.pix"));
    assert_eq!(qr.additional(5), Some("***"));
    assert_eq!(qr.initiation, None);
}

#[test]
fn building_the_sample_content_gives_a_payload_with_a_valid_crc() {
    let qr = MerchantQr::parse(EMVCO_SAMPLE).unwrap();
    let built = qr.encode().unwrap();
    verify_crc(&built).unwrap();
    // Canonical order puts 54 before 64; the sample lists them the other way round.
    assert!(built.starts_with("00020101021229300012D156000000000510A93FO3230Q"));
    assert!(built.contains("520441115303156540523.72550201"));
    assert_eq!(MerchantQr::parse(&built).unwrap(), qr);
}

fn static_qr() -> MerchantQr {
    MerchantQr {
        initiation: Some(Initiation::Static),
        accounts: vec![MerchantAccount {
            id: 26,
            value: String::new(),
            fields: vec![
                DataObject::primitive(0, "com.easypos.wallet"),
                DataObject::primitive(1, "M0001"),
            ],
        }],
        mcc: "5812".into(),
        currency: "156".into(),
        country: "CN".into(),
        name: "小笼包店".into(),
        city: "上海".into(),
        additional: vec![DataObject::primitive(7, "T0001")],
        ..MerchantQr::default()
    }
}

#[test]
fn static_and_dynamic_codes_with_chinese_names() {
    let payload = static_qr().encode().unwrap();
    assert!(payload.contains("5904小笼包店6002上海"), "{payload}");
    let back = MerchantQr::parse(&payload).unwrap();
    assert!(!back.is_dynamic());
    assert_eq!(back.name, "小笼包店");
    let mut dynamic = static_qr();
    dynamic.initiation = Some(Initiation::Dynamic);
    dynamic.amount = Some("88.00".into());
    dynamic
        .additional
        .push(DataObject::primitive(1, "INV-2026-0042"));
    let back = MerchantQr::parse(&dynamic.encode().unwrap()).unwrap();
    assert!(back.is_dynamic());
    assert_eq!(back.amount.as_deref(), Some("88.00"));
    assert_eq!(back.additional(1), Some("INV-2026-0042"));
}

#[test]
fn rejects_a_bad_crc() {
    let bad = EMVCO_SAMPLE.replace("6304A13A", "6304A13B");
    assert_eq!(
        MerchantQr::parse(&bad),
        Err(QrError::BadCrc {
            found: "A13B".into(),
            computed: "A13A".into()
        })
    );
    let tampered = EMVCO_SAMPLE.replace("23.72", "93.72");
    assert!(matches!(
        MerchantQr::parse(&tampered),
        Err(QrError::BadCrc { .. })
    ));
}

#[test]
fn rejects_structural_errors() {
    assert_eq!(
        MerchantQr::parse(&EMVCO_SAMPLE[6..]),
        Err(QrError::FormatIndicator)
    );
    assert_eq!(
        MerchantQr::parse(&EMVCO_SAMPLE[..EMVCO_SAMPLE.len() - 8]),
        Err(QrError::CrcPlacement)
    );
    assert!(matches!(
        MerchantQr::parse("0002010102115204411"),
        Err(QrError::ValuePastEnd {
            id: 52,
            len: 4,
            available: 3
        })
    ));
    assert!(matches!(
        MerchantQr::parse("0002010X"),
        Err(QrError::BadId { .. })
    ));
    assert!(matches!(
        MerchantQr::parse("000201011"),
        Err(QrError::BadLength { id: 1 })
    ));
    assert!(matches!(
        MerchantQr::parse("000201010011"),
        Err(QrError::BadLength { id: 1 })
    ));
    assert!(matches!(
        MerchantQr::parse("000201000201"),
        Err(QrError::Duplicate { id: 0 })
    ));
    let long = "0".repeat(600);
    assert!(matches!(
        MerchantQr::parse(&long),
        Err(QrError::TooLong { .. })
    ));
}

#[test]
fn rejects_missing_and_malformed_values() {
    let mut no_account = static_qr();
    no_account.accounts.clear();
    assert!(matches!(no_account.encode(), Err(QrError::Missing { .. })));
    let mut bad_mcc = static_qr();
    bad_mcc.mcc = "58A2".into();
    assert!(matches!(
        bad_mcc.encode(),
        Err(QrError::Invalid { id: 52, .. })
    ));
    let mut long_name = static_qr();
    long_name.name = "A".repeat(26);
    assert!(matches!(
        long_name.encode(),
        Err(QrError::Invalid { id: 59, .. })
    ));
    let mut bad_amount = static_qr();
    bad_amount.amount = Some("1.2.3".into());
    assert!(matches!(
        bad_amount.encode(),
        Err(QrError::Invalid { id: 54, .. })
    ));
    let mut no_gui = static_qr();
    no_gui.accounts[0].fields.remove(0);
    assert!(matches!(
        no_gui.encode(),
        Err(QrError::Invalid { id: 26, .. })
    ));
    let mut fee = static_qr();
    fee.tip_indicator = Some("02".into());
    assert!(matches!(fee.encode(), Err(QrError::Missing { id: 56, .. })));
}

proptest! {
    #[test]
    fn build_then_parse_round_trips(
        name in "[A-Za-z0-9 \u{4e00}-\u{4e80}]{1,25}",
        city in "[A-Za-z\u{4e00}-\u{4e80}]{1,15}",
        amount in proptest::option::of("[0-9]{1,7}\\.[0-9]{2}"),
        bill in proptest::option::of("[A-Z0-9-]{1,25}"),
    ) {
        let mut qr = static_qr();
        qr.name = name;
        qr.city = city;
        qr.amount = amount;
        if let Some(bill) = bill {
            qr.additional.insert(0, DataObject::primitive(1, bill));
        }
        let payload = qr.encode().unwrap();
        prop_assert_eq!(MerchantQr::parse(&payload).unwrap(), qr);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        let _ = MerchantQr::parse(&text);
        let _ = verify_crc(&text);
    }
}
