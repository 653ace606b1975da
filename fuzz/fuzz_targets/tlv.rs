#![no_main]
//! Strict BER-TLV, DOL and field-55 parsing on arbitrary bytes: never panic, and a flat parse
//! re-encodes to the same bytes (the parser accepts minimal encodings only).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = emv::tlv::parse_tree(data);
    let _ = emv::field55::parse(data);
    if let Ok(entries) = emv::dol::parse(data) {
        let _ = emv::dol::build(&entries, |_| None);
    }
    if let Ok(objects) = emv::tlv::parse(data) {
        let mut again = Vec::new();
        for object in &objects {
            assert!(emv::tlv::write(object.tag, object.value, &mut again).is_ok());
        }
        assert_eq!(again, data);
    }
});
