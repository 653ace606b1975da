#![no_main]
//! Unpack arbitrary bytes with cup-bcd; whatever unpacks must dump without panicking and pack
//! back to exactly the same bytes.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = iso8583::Profile::builtin("cup-bcd") else { return };
    if let Ok(message) = profile.unpack(data) {
        let _ = profile.dump(&message);
        let _ = message.pan();
        let _ = message.track2();
        let packed = profile.pack(&message);
        assert_eq!(packed.as_deref(), Ok(data), "unpack/pack is not the identity");
    }
});
