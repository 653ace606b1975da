//! Small helpers shared by the modules: hex, XOR, digit packing, odd parity.

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
        out.push(char::from(HEX_UPPER[usize::from(byte & 0x0F)]));
    }
    out
}

pub(crate) fn xor_in_place(target: &mut [u8], other: &[u8]) {
    for (t, o) in target.iter_mut().zip(other) {
        *t ^= o;
    }
}

pub(crate) fn xor8(a: &[u8; 8], b: &[u8; 8]) -> [u8; 8] {
    let mut out = *a;
    xor_in_place(&mut out, b);
    out
}

/// Packs nibble values (0..=15), two per byte, high nibble first. `nibbles` must have even length.
pub(crate) fn pack_nibbles(nibbles: &[u8]) -> Vec<u8> {
    nibbles
        .chunks(2)
        .map(|pair| (pair[0] << 4) | pair.get(1).copied().unwrap_or(0))
        .collect()
}

pub(crate) fn unpack_nibbles(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]).collect()
}

/// Decimal digit text to nibble values; the caller has already checked the characters.
pub(crate) fn digit_values(digits: &str) -> Vec<u8> {
    digits.bytes().map(|b| b - b'0').collect()
}

pub(crate) fn all_decimal(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

/// Sets odd parity on each byte, as DES keys conventionally carry it.
pub(crate) fn odd_parity(key: &mut [u8]) {
    for byte in key.iter_mut() {
        let ones = (*byte & 0xFE).count_ones();
        *byte = (*byte & 0xFE) | u8::from(ones % 2 == 0);
    }
}

/// Copies a slice that the caller has length-checked into a fixed array.
pub(crate) fn array8(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

pub(crate) fn array16(bytes: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&bytes[..16]);
    out
}
