//! Property tests: PIN block round trips for every PIN length and format, and device-side and
//! host-side DUKPT agreeing for random transaction counts, and the constant-time comparisons.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use paycrypto::dukpt::{aes as aes_dukpt, tdes};
use paycrypto::pinblock::{self, PinBlockFormat, PinKey};
use paycrypto::{AesKey, Pan, Pin, TdesKey, mac};
use proptest::prelude::*;

fn pin_strategy() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9]{4,12}").unwrap()
}
fn pan_strategy() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9]{8,19}").unwrap()
}

proptest! {
    #[test]
    fn tdes_formats_round_trip(pin in pin_strategy(), pan in pan_strategy(), key in any::<[u8; 16]>(), random in any::<[u8; 8]>(), format in prop::sample::select(vec![0u8, 1, 3])) {
        let format = PinBlockFormat::from_number(format).unwrap();
        let key = TdesKey::new(&key).unwrap();
        let pan = Pan::new(&pan).unwrap();
        let fill = pinblock::fill_from_random(format, &random);
        let block = pinblock::encrypt_pin_block(format, PinKey::Tdes(&key), &Pin::new(&pin).unwrap(), Some(&pan), &fill).unwrap();
        let decoded = pinblock::decrypt_pin_block(format, PinKey::Tdes(&key), &block, Some(&pan)).unwrap();
        let got = decoded.expose();
        prop_assert_eq!(got.as_str(), pin.as_str());
    }

    #[test]
    fn prepared_tdes_pin_keys_make_the_same_blocks(pin in pin_strategy(), pan in pan_strategy(), key in any::<[u8; 16]>(), random in any::<[u8; 8]>(), format in prop::sample::select(vec![0u8, 1, 3])) {
        let format = PinBlockFormat::from_number(format).unwrap();
        let key = TdesKey::new(&key).unwrap();
        let prepared = mac::PreparedTdesKey::new(&key).unwrap();
        let (pan, pin) = (Pan::new(&pan).unwrap(), Pin::new(&pin).unwrap());
        let fill = pinblock::fill_from_random(format, &random);
        let plain = pinblock::encrypt_pin_block(format, PinKey::Tdes(&key), &pin, Some(&pan), &fill).unwrap();
        let block = pinblock::encrypt_pin_block(format, PinKey::PreparedTdes(&prepared), &pin, Some(&pan), &fill).unwrap();
        prop_assert_eq!(block.as_bytes(), plain.as_bytes());
        let decoded = pinblock::decrypt_pin_block(format, PinKey::PreparedTdes(&prepared), &plain, Some(&pan)).unwrap();
        let (got, sent) = (decoded.expose(), pin.expose());
        prop_assert_eq!(got.as_str(), sent.as_str());
    }

    #[test]
    fn prepared_hmac_sha256_agrees_with_the_hmac_crate(key in proptest::collection::vec(any::<u8>(), 0..150), message in proptest::collection::vec(any::<u8>(), 0..200)) {
        use hmac::Mac;
        let mut reference = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        reference.update(&message);
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        prop_assert_eq!(mac::PreparedHmacSha256::new(&key).mac(&message), expected);
    }

    #[test]
    fn format4_round_trips(pin in pin_strategy(), pan in pan_strategy(), key in any::<[u8; 32]>(), random in any::<[u8; 8]>()) {
        let key = AesKey::new(&key).unwrap();
        let pan = Pan::new(&pan).unwrap();
        let block = pinblock::encrypt_pin_block(PinBlockFormat::Iso4, PinKey::Aes(&key), &Pin::new(&pin).unwrap(), Some(&pan), &random).unwrap();
        let decoded = pinblock::decrypt_pin_block(PinBlockFormat::Iso4, PinKey::Aes(&key), &block, Some(&pan)).unwrap();
        let got = decoded.expose();
        prop_assert_eq!(got.as_str(), pin.as_str());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The device steps through `steps` transactions from a random start (KSN and initial key);
    /// the host derives each key from the BDK alone.
    #[test]
    fn tdes_device_and_host_agree(steps in 1usize..600, bdk in any::<[u8; 16]>(), ksn_prefix in any::<[u8; 8]>()) {
        let bdk = TdesKey::new(&bdk).unwrap();
        let mut ksn_bytes = [0u8; 10];
        ksn_bytes[..8].copy_from_slice(&ksn_prefix);
        ksn_bytes[7] &= 0xE0;
        let ksn = tdes::Ksn::new(&ksn_bytes).unwrap();
        let mut device = tdes::Device::load_initial_key(&tdes::derive_ipek(&bdk, &ksn).unwrap(), &ksn).unwrap();
        let mut last = None;
        for _ in 0..steps {
            last = Some(device.next_transaction().unwrap());
        }
        let (used, key) = last.unwrap();
        prop_assert_eq!(tdes::host_transaction_key(&bdk, &used).unwrap(), key.clone());
        // And the MAC keys the two sides derive authenticate the same message.
        let terminal_mac = mac::iso9797_alg3(&tdes::working_key(&key, tdes::Variant::MacRequest).unwrap(), b"0200", mac::Padding::Method1).unwrap();
        let host_key = tdes::working_key(&tdes::host_transaction_key(&bdk, &used).unwrap(), tdes::Variant::MacRequest).unwrap();
        prop_assert_eq!(mac::iso9797_alg3(&host_key, b"0200", mac::Padding::Method1).unwrap(), terminal_mac);
    }

    #[test]
    fn aes_device_and_host_agree(steps in 1usize..600, bdk in any::<[u8; 32]>(), ikid in any::<[u8; 8]>(), aes256 in any::<bool>()) {
        let bdk = if aes256 { AesKey::new(&bdk).unwrap() } else { AesKey::new(&bdk[..16]).unwrap() };
        let mut device = aes_dukpt::Device::load_initial_key(&aes_dukpt::initial_key(&bdk, &ikid).unwrap(), &ikid);
        let mut last = None;
        for _ in 0..steps {
            last = Some(device.next_transaction().unwrap());
        }
        let (ksn, derivation) = last.unwrap();
        let usage = aes_dukpt::KeyUsage::PinEncryption;
        let key_type = if aes256 { aes_dukpt::KeyType::Aes256 } else { aes_dukpt::KeyType::Aes128 };
        let device_key = aes_dukpt::working_key(&derivation, &ksn, usage, key_type).unwrap();
        prop_assert_eq!(aes_dukpt::host_working_key(&bdk, &ksn, usage, key_type).unwrap(), device_key);
    }
}

/// Counters far from the start: the host derivation agrees with a device that was stepped there
/// one transaction at a time (checked at a few thousand transactions, covering several carries).
#[test]
fn tdes_device_reaches_counter_with_many_bits() {
    let bdk = TdesKey::new(&[0x11; 16]).unwrap();
    let ksn = tdes::Ksn::new(&[0xFF, 0xFF, 0x98, 0x76, 0x54, 0x32, 0x10, 0xE0, 0, 0]).unwrap();
    let mut device =
        tdes::Device::load_initial_key(&tdes::derive_ipek(&bdk, &ksn).unwrap(), &ksn).unwrap();
    let mut expected = ksn.with_counter(1).unwrap();
    for _ in 0..5000 {
        let (used, key) = device.next_transaction().unwrap();
        assert_eq!(used, expected);
        if used.counter().count_ones() >= 9 {
            assert_eq!(tdes::host_transaction_key(&bdk, &used).unwrap(), key);
        }
        expected = used.next().unwrap();
    }
}

/// The comparisons of secrets (MACs and cryptograms, PVVs, CVVs and PIN offsets) answer as
/// equality does, whatever differs and wherever; they run in constant time through `subtle`.
mod constant_time_comparisons {
    use paycrypto::card::digits_equal;
    use paycrypto::mac::macs_equal;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn macs_compare_as_equality(a in proptest::collection::vec(any::<u8>(), 0..16),
                                    b in proptest::collection::vec(any::<u8>(), 0..16)) {
            prop_assert_eq!(macs_equal(&a, &b), a == b);
            prop_assert!(macs_equal(&a, &a.clone()));
        }

        #[test]
        fn digits_compare_as_equality(a in "[0-9]{0,6}", b in "[0-9]{0,6}") {
            prop_assert_eq!(digits_equal(&a, &b), a == b);
        }
    }

    #[test]
    fn a_difference_in_the_last_byte_or_the_length_is_found() {
        assert!(!macs_equal(&[1, 2, 3, 4], &[1, 2, 3, 5]));
        assert!(!macs_equal(&[1, 2, 3, 4], &[1, 2, 3]));
        assert!(!macs_equal(&[], &[0]));
        assert!(macs_equal(&[], &[]));
        assert!(!digits_equal("123", "1234"));
        assert!(!digits_equal("1234", "1235"));
    }
}

/// A clear PIN field of any length but 8 bytes is refused, never a panic (the fuzz target
/// `pin_block` found that an empty or short one indexed out of bounds).
#[test]
fn pin_fields_of_the_wrong_length_are_refused() {
    for format in [0, 1, 3, 4] {
        let format = PinBlockFormat::from_number(format).unwrap();
        for length in [0, 1, 2, 7, 9, 16] {
            let field = vec![0x04; length];
            assert!(
                matches!(
                    pinblock::parse_pin_field(format, &field),
                    Err(paycrypto::Error::Length { .. })
                ),
                "{format:?}, {length} bytes"
            );
        }
    }
    // The same check passes a well-formed field: format 0, PIN 1234, fill F.
    let field = [0x04, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    assert!(pinblock::parse_pin_field(PinBlockFormat::Iso0, &field).is_ok());
}

/// Every message length up to three blocks, so that each padding case (the length fits the
/// last block, needs another, whole blocks) is met for certain, not by chance.
#[test]
fn prepared_hmac_sha256_agrees_with_the_hmac_crate_at_every_length() {
    use hmac::Mac;
    let data: Vec<u8> = (0..=200u8).map(|byte| byte.wrapping_mul(151)).collect();
    for key_length in [0, 1, 32, 63, 64, 65, 131] {
        let key = &data[..key_length];
        let prepared = mac::PreparedHmacSha256::new(key);
        for length in 0..=192 {
            let mut reference = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            reference.update(&data[..length]);
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            assert_eq!(
                prepared.mac(&data[..length]),
                expected,
                "key {key_length}, message {length}"
            );
        }
    }
}
