#![no_main]
//! EMVCo MPM parsing on arbitrary text: never panic, and whatever parses re-encodes to a payload
//! that parses back to the same content.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = emvqr::PaymentCode::parse(text, 1_764_000_000, emvqr::Policy::default());
    check(text);
    // Random mutations almost never keep the CRC right: also try the input with its last four
    // characters replaced by the correct CRC, so the structural checks get exercised.
    if let Some(body) = text.len().checked_sub(4).and_then(|split| text.get(..split)) {
        let fixed = format!("{body}{:04X}", emvqr::crc16_ccitt_false(body.as_bytes()));
        check(&fixed);
    }
});

fn check(text: &str) {
    let _ = emvqr::verify_crc(text);
    if let Ok(qr) = emvqr::MerchantQr::parse(text) {
        let encoded = qr.encode();
        assert!(encoded.is_ok(), "parsed but cannot re-encode: {encoded:?}");
        if let Ok(encoded) = encoded {
            assert_eq!(emvqr::MerchantQr::parse(&encoded), Ok(qr));
        }
    }
}
