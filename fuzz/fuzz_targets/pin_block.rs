#![no_main]
//! ISO 9564 PIN block decoding (formats 0, 1, 3 and 4) on arbitrary bytes: never panic. The
//! input picks the format, the key, the PAN and the block; a block that decodes names a PIN
//! that encodes back to the same block under the same key, PAN and the block's own fill.
//! `parse_pin_field` (the clear field's check, used by the HSM after deciphering) is fed the
//! raw bytes too, whatever their length.

use libfuzzer_sys::fuzz_target;
use paycrypto::pinblock::{self, PinBlockFormat, PinKey};
use paycrypto::{AesKey, Pan, PinBlock, TdesKey};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    for number in [0, 1, 3, 4] {
        if let Ok(format) = PinBlockFormat::from_number(number) {
            let _ = pinblock::parse_pin_field(format, rest);
        }
    }
    // selector: format (2 bits), key length choice (1 bit), PAN length (5 bits, 12..=19 used).
    let format = [
        PinBlockFormat::Iso0,
        PinBlockFormat::Iso1,
        PinBlockFormat::Iso3,
        PinBlockFormat::Iso4,
    ][usize::from(selector & 3)];
    let key_len = if selector & 4 == 0 { 16 } else { 24 };
    let pan_len = 12 + usize::from((selector >> 3) % 8);
    if rest.len() < key_len + pan_len {
        return;
    }
    let (key, rest) = rest.split_at(key_len);
    let (pan_bytes, block) = rest.split_at(pan_len);
    let digits: String = pan_bytes
        .iter()
        .map(|byte| char::from(b'0' + byte % 10))
        .collect();
    let pan = Pan::new(&digits).ok();
    let Ok(block) = PinBlock::new(block) else {
        return;
    };
    let tdes;
    let aes;
    let pin_key = if format.is_aes() {
        let Ok(key) = AesKey::new(&key[..16]) else {
            return;
        };
        aes = key;
        PinKey::Aes(&aes)
    } else {
        let Ok(key) = TdesKey::new(key) else { return };
        tdes = key;
        PinKey::Tdes(&tdes)
    };
    let Ok(pin) = pinblock::decrypt_pin_block(format, pin_key, &block, pan.as_ref()) else {
        return;
    };
    // Format 0 has fixed fill: the block is the only one for this PIN, key and PAN.
    if format == PinBlockFormat::Iso0 {
        let again = pinblock::encrypt_pin_block(format, pin_key, &pin, pan.as_ref(), &[0; 8]);
        assert_eq!(
            again.ok().as_ref(),
            Some(&block),
            "format 0 decode/encode is not the identity"
        );
    }
});
