#![no_main]
//! The wallet page's upload reader (`wallet::image::decode_qr`) on arbitrary bytes: PNG and JPEG
//! headers that lie about their size, truncated or corrupt streams, pictures with no code or
//! a damaged one. It must never panic, never allocate past its bounds (run with
//! `-rss_limit_mb`, as scripts/fuzz.sh does), and only ever answer a text or a refusal.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match wallet::image::decode_qr(data) {
        Ok(_) => {}
        Err(wallet::WalletError::BadImage(_) | wallet::WalletError::NoCodeInImage) => {}
        Err(other) => panic!("an upload can only be a bad picture or have no code: {other}"),
    }
});
