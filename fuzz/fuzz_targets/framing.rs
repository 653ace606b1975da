#![no_main]
//! Frame splitting and TPDU parsing on arbitrary streams: never panic, never return a payload
//! longer than the frame limit, and re-framing a split frame gives the same bytes.

use iso8583::{LengthPrefix, Tpdu, frame::MAX_FRAME_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for prefix in [LengthPrefix::Binary2, LengthPrefix::Ascii4] {
        if let Ok(Some((payload, used))) = prefix.split(data) {
            assert!(payload.len() <= MAX_FRAME_LEN);
            // Binary lengths have one spelling; ASCII ones too (exactly 4 digits).
            assert_eq!(prefix.frame(payload).ok().as_deref(), Some(&data[..used]));
        }
    }
    if let Ok(tpdu) = Tpdu::parse(data) {
        assert_eq!(&tpdu.to_bytes()[..], &data[..5]);
    }
});
