#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Pack/unpack behaviour of both built-in profiles, published samples and rejections.

mod common;

use iso8583::{Error, FieldError, Message, Mti, Profile, Stan, Value};

fn cup() -> &'static Profile {
    Profile::builtin("cup-bcd").unwrap()
}

fn iso87() -> &'static Profile {
    Profile::builtin("iso87-ascii").unwrap()
}

/// pyiso8583's `default_ascii` spec (hex-text bitmap) is our iso87-ascii with `bitmap = "hex"`:
/// load it through the same spec loader.
fn iso87_hex_bitmap() -> Profile {
    Profile::from_toml(
        &iso8583::ISO87_ASCII_SPEC.replace("bitmap = \"binary\"", "bitmap = \"hex\""),
    )
    .unwrap()
}

fn field_reason(error: Error) -> (u8, FieldError) {
    match error {
        Error::Field { field, reason, .. } => (field, reason),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn pyiso8583_readme_decode_sample() {
    // Source: pyiso8583 README (github.com/knovichikhin/pyiso8583), "Encoding & Decoding":
    // b'02004000000000000000101234567890' decodes to t=0200, p=4000000000000000, 2=1234567890.
    let profile = iso87_hex_bitmap();
    let message = profile.unpack(b"02004000000000000000101234567890").unwrap();
    assert_eq!(message.mti.as_str(), "0200");
    assert_eq!(message.iter().map(|(n, _)| n).collect::<Vec<_>>(), [2]);
    assert_eq!(message.get(2).unwrap().to_text(), "1234567890");
}

#[test]
fn pyiso8583_readme_encode_sample() {
    // Same README: t=0210 with field 39 = "05" encodes to b'0210000000000200000005'.
    let profile = iso87_hex_bitmap();
    let mut message = Message::new(Mti::parse("0210").unwrap());
    message.set_text(39, "05");
    assert_eq!(profile.pack(&message).unwrap(), b"0210000000000200000005");
}

#[test]
fn published_bitmap_example_unpacks_in_iso87_ascii() {
    // STANDARDS.md §1.2 [1]: bitmap 4210001102C04804 = fields 2, 7, 12, 28, 32, 39, 41, 42, 50, 53, 62.
    let mut wire = b"0200".to_vec();
    wire.extend_from_slice(&hex::decode("4210001102C04804").unwrap());
    for chunk in [
        "164761739001010119",
        "1125104512",
        "104512",
        "C00000150",
        "06123456",
        "00",
        "TERM0001",
        "MERCHANT0000001",
        "156",
        "0000000000000000",
        "005HELLO",
    ] {
        wire.extend_from_slice(chunk.as_bytes());
    }
    let message = iso87().unpack(&wire).unwrap();
    let fields: Vec<u8> = message.iter().map(|(n, _)| n).collect();
    assert_eq!(fields, [2, 7, 12, 28, 32, 39, 41, 42, 50, 53, 62]);
    assert_eq!(message.get(28).unwrap().to_text(), "C00000150");
    assert_eq!(
        iso87().pack(&message).unwrap(),
        wire,
        "packing what we unpacked gives the same bytes"
    );
}

#[test]
fn cup_sale_round_trips_and_getters_read_it() {
    let icc = common::field55();
    let sale = common::cup_sale(&icc);
    let wire = cup().pack(&sale).unwrap();
    // TPDU, header, BCD MTI, then the binary bitmap.
    assert_eq!(hex::encode_upper(&wire[..13]), "60000300006031003110000200");
    let back = cup().unpack(&wire).unwrap();
    assert_eq!(back.mti.as_str(), "0200");
    assert_eq!(back.stan().unwrap(), Stan::new(42).unwrap());
    assert_eq!(back.amount().unwrap(), 1000);
    assert_eq!(back.pan().unwrap().expose(), "6222021234567890123");
    assert_eq!(back.track2().unwrap().expiry(), Some("2812"));
    assert_eq!(back.terminal_id().unwrap(), "TERM0001");
    assert_eq!(&*back.icc_data().unwrap(), &icc[..]);
    assert_eq!(cup().subfield_text(&back, 60, 1).as_deref(), Some("22"));
    assert_eq!(cup().subfield_text(&back, 60, 2).as_deref(), Some("000001"));
    assert_eq!(cup().pack(&back).unwrap(), wire);
}

#[test]
fn cup_numerics_are_packed_bcd_with_bcd_prefixes() {
    let mut message = Message::new(Mti::parse("0800").unwrap());
    message.tpdu = Some(iso8583::Tpdu {
        id: 0x60,
        destination: 3,
        source: 0,
    });
    message.header = vec![0; 6].into();
    message.set_text(2, "6222021234567890123");
    message.set_text(11, "123456");
    message.set_text(60, "00000001003");
    let wire = cup().pack(&message).unwrap();
    let body = &wire[11..];
    assert_eq!(hex::encode_upper(&body[..2]), "0800");
    assert_eq!(hex::encode_upper(&body[2..10]), "4020000000000010");
    // DE2: 1-byte BCD length 19, left-aligned digits, pad nibble after.
    assert_eq!(
        hex::encode_upper(&body[10..21]),
        "196222021234567890123 0".replace(' ', "")
    );
    assert_eq!(hex::encode_upper(&body[21..24]), "123456");
    // DE60: 2-byte BCD length 011, left-aligned.
    assert_eq!(hex::encode_upper(&body[24..]), "0011000000010030");
}

#[test]
fn fixed_fields_are_padded_by_type() {
    let mut message = Message::new(Mti::parse("0200").unwrap());
    message.set_text(4, "1000");
    message.set_text(41, "T1");
    let wire = iso87().pack(&message).unwrap();
    assert_eq!(&wire[12..], b"000000001000T1      ");
}

#[test]
fn secondary_bitmap_is_added_for_fields_above_64() {
    let mut message = Message::new(Mti::parse("0800").unwrap());
    message.set_text(7, "1125104512");
    message.set_text(11, "000001");
    message.set_text(70, "301");
    let wire = iso87().pack(&message).unwrap();
    assert_eq!(
        hex::encode_upper(&wire[4..20]),
        "82200000000000000400000000000000"
    );
    let back = iso87().unpack(&wire).unwrap();
    assert_eq!(back.get(70).unwrap().to_text(), "301");
}

#[test]
fn dump_masks_card_data() {
    let icc = common::field55();
    let mut sale = common::cup_sale(&icc);
    let mut with_card = icc.clone();
    with_card.extend_from_slice(&hex::decode("5A0862220212345678905F340101").unwrap());
    sale.set_bytes(55, with_card);
    let wire = cup().pack(&sale).unwrap();
    let dump = cup().dump(&cup().unpack(&wire).unwrap());
    let expected = "\
MTI     0200 ISO 8583:1987 financial request from acquirer
TPDU    6000030000
header  603100311000
bitmap  702406C020C09A11
002     Primary account number             622202*********0123
003     Processing code                    000000
004     Amount, transaction                000000001000
011     System trace audit number          000042
014     Expiration date (YYMM)             2812
022     POS entry mode                     051
  22.1    PAN entry mode                   05
  22.2    PIN entry capability             1
023     Card sequence number               001
025     POS condition code                 00
  25.1    Condition code (00 normal, 06 pre-authorisation) 00
026     POS PIN capture code               12
035     Track 2 data                       622202*********0123=*****************
  35.1    PAN                              622202*********0123
  35.2    Expiry date (YYMM)               ****
  35.3    Service code                     201
  35.4    Discretionary data               **********
041     Card acceptor terminal id          TERM0001
042     Card acceptor id code              898310048990001
049     Currency code, transaction         156
052     PIN data                           **** (8 bytes, masked)
053     Security related control information 2600000000000000
055     ICC system related data            (126 bytes of BER-TLV)
  9F26    Application Cryptogram           A1B2C3D4E5F60708
  9F27    Cryptogram Information Data      80
  9F10    Issuer Application Data          07010103A0A000010A010000000000A1B2C3D4
  9F37    Unpredictable Number             12345678
  9F36    Application Transaction Counter  0001
  95      Terminal Verification Results    0000000000
  9A      Transaction Date                 261125
  9C      Transaction Type                 00
  9F02    Amount, Authorised (Numeric)     000000001000
  5F2A    Transaction Currency Code        0156
  82      Application Interchange Profile  5C00
  9F1A    Terminal Country Code            0156
  9F03    Amount, Other (Numeric)          000000000000
  9F33    Terminal Capabilities            E0F1C8
  9F34    Cardholder Verification Method Results 420300
  9F35    Terminal Type                    22
  5A      Application PAN                  **** (8 bytes, masked)
  5F34    PAN Sequence Number              01
060     Reserved private (transaction type, batch) 22000001000500
  60.1    Transaction type code            22
  60.2    Batch number                     000001
  60.3    Network management information code 000
  60.4    Terminal read capability         5
  60.5    IC card condition code           0
  60.6    Reserved                         0
064     Message authentication code        1122334455667788
";
    assert_eq!(dump, expected);
    for secret in [
        "6222021234567890123",
        "2812201",
        "1B9C1845",
        "6222021234567890",
    ] {
        assert!(!dump.contains(secret), "dump leaks {secret}");
    }
}

#[test]
fn debug_output_never_shows_values() {
    let icc = common::field55();
    let sale = common::cup_sale(&icc);
    let debug = format!("{sale:?}");
    assert!(!debug.contains("6222021234567890123"));
    assert!(debug.contains("fields: [2, 3, 4"));
}

// ---- rejections: every malformed input names the field and the reason ----

#[test]
fn rejects_truncated_messages() {
    let icc = common::field55();
    let wire = cup().pack(&common::cup_sale(&icc)).unwrap();
    for cut in [3, 8, 12, 15, 40, wire.len() - 1] {
        assert!(cup().unpack(&wire[..cut]).is_err(), "cut at {cut} accepted");
    }
    let (field, reason) = field_reason(cup().unpack(&wire[..wire.len() - 1]).unwrap_err());
    assert_eq!(
        (field, reason),
        (
            64,
            FieldError::Truncated {
                needed: 8,
                available: 7
            }
        )
    );
}

#[test]
fn rejects_bitmap_bits_with_no_data() {
    let mut wire = b"0200".to_vec();
    wire.extend_from_slice(&hex::decode("2000000000000000").unwrap());
    let (field, reason) = field_reason(iso87().unpack(&wire).unwrap_err());
    assert_eq!(
        (field, reason),
        (
            3,
            FieldError::Truncated {
                needed: 6,
                available: 0
            }
        )
    );
}

#[test]
fn rejects_trailing_bytes() {
    let mut wire = b"0200".to_vec();
    wire.extend_from_slice(&hex::decode("2000000000000000").unwrap());
    wire.extend_from_slice(b"000000XY");
    assert_eq!(
        iso87().unpack(&wire).unwrap_err(),
        Error::TrailingBytes { count: 2 }
    );
}

#[test]
fn rejects_non_numeric_data_in_numeric_fields() {
    // pyiso8583 accepts `12A4B6` in DE11 (STANDARDS.md §9 finding 6); we must not.
    let mut wire = b"0200".to_vec();
    wire.extend_from_slice(&hex::decode("0020000000000000").unwrap());
    wire.extend_from_slice(b"12A4B6");
    let error = iso87().unpack(&wire).unwrap_err();
    assert_eq!(
        error.to_string(),
        "field 11 (System trace audit number): character 2 (0x41) is not allowed in a field of type n"
    );
    let mut cup_wire = cup().pack(&common::cup_sale(&common::field55())).unwrap();
    cup_wire[13 + 8 + 1] = 0x6A; // first PAN byte: nibble A
    let (field, reason) = field_reason(cup().unpack(&cup_wire).unwrap_err());
    assert_eq!(
        (field, reason),
        (
            2,
            FieldError::BadBcd {
                position: 1,
                nibble: 0xA
            }
        )
    );
    let mut message = Message::new(Mti::parse("0200").unwrap());
    message.set_text(4, "10.00");
    assert!(matches!(
        field_reason(iso87().pack(&message).unwrap_err()),
        (4, FieldError::BadCharacter { .. })
    ));
}

#[test]
fn rejects_length_prefixes_beyond_the_maximum() {
    let mut wire = b"0200".to_vec();
    wire.extend_from_slice(&hex::decode("4000000000000000").unwrap());
    wire.extend_from_slice(b"2012345678901234567890");
    let (field, reason) = field_reason(iso87().unpack(&wire).unwrap_err());
    assert_eq!(
        (field, reason),
        (2, FieldError::TooLong { len: 20, max: 19 })
    );
    let mut bad_prefix = b"0200".to_vec();
    bad_prefix.extend_from_slice(&hex::decode("4000000000000000").unwrap());
    bad_prefix.extend_from_slice(b"1X");
    assert!(matches!(
        field_reason(iso87().unpack(&bad_prefix).unwrap_err()),
        (2, FieldError::BadLengthPrefix { .. })
    ));
    let mut message = Message::new(Mti::parse("0200").unwrap());
    message.set_text(2, "12345678901234567890");
    assert_eq!(
        field_reason(iso87().pack(&message).unwrap_err()),
        (2, FieldError::TooLong { len: 20, max: 19 })
    );
}

#[test]
fn rejects_missing_secondary_bitmap() {
    let mut wire = b"0800".to_vec();
    wire.extend_from_slice(&hex::decode("8220000000000000").unwrap());
    wire.extend_from_slice(b"0000");
    let error = iso87().unpack(&wire).unwrap_err();
    assert!(
        matches!(&error, Error::Bitmap(text) if text.contains("secondary bitmap missing")),
        "{error}"
    );
    // Fuzzing found this one: bit 1 set with an all-zero secondary bitmap.
    let mut empty = b"0100".to_vec();
    empty.extend_from_slice(&hex::decode("80000000000400000000000000000000").unwrap());
    empty.extend_from_slice(b"000");
    let error = iso87().unpack(&empty).unwrap_err();
    assert_eq!(
        error,
        Error::Bitmap("bit 1 is set but the secondary bitmap is empty".into())
    );
    // cup-bcd has no secondary bitmap at all: bit 1 is an error, and so is packing field 70.
    let mut cup_wire = cup().pack(&common::cup_sale(&common::field55())).unwrap();
    cup_wire[13] |= 0x80;
    assert!(matches!(
        cup().unpack(&cup_wire).unwrap_err(),
        Error::Bitmap(_)
    ));
}

#[test]
fn rejects_fields_the_profile_does_not_define() {
    let mut message = Message::new(Mti::parse("0800").unwrap());
    message.tpdu = Some(iso8583::Tpdu {
        id: 0x60,
        destination: 3,
        source: 0,
    });
    message.header = vec![0; 6].into();
    message.set_text(5, "000000000100");
    assert!(matches!(
        field_reason(cup().pack(&message).unwrap_err()),
        (5, FieldError::NotInProfile { .. })
    ));
}

#[test]
fn rejects_oversize_input_and_bad_mti() {
    let huge = vec![b'0'; iso8583::frame::MAX_FRAME_LEN + 1];
    assert!(matches!(iso87().unpack(&huge), Err(Error::TooLarge { .. })));
    assert!(matches!(iso87().unpack(b"02X0"), Err(Error::Mti(_))));
    assert!(matches!(iso87().unpack(b"02"), Err(Error::Mti(_))));
    assert!(matches!(
        cup().unpack(&[0x60, 0, 3, 0, 0, 0, 0]),
        Err(Error::Header {
            expected: 6,
            available: 2
        })
    ));
}

#[test]
fn values_set_by_hand_are_validated_on_pack() {
    let mut message = Message::new(Mti::parse("0200").unwrap());
    message.set(52, Value::bytes(vec![1, 2, 3]));
    assert_eq!(
        field_reason(iso87().pack(&message).unwrap_err()),
        (
            52,
            FieldError::WrongLength {
                len: 3,
                expected: 8
            }
        )
    );
    let mut message = Message::new(Mti::parse("0200").unwrap());
    message.set_text(35, "4761739001010119D2512");
    assert!(matches!(
        field_reason(iso87().pack(&message).unwrap_err()),
        (35, FieldError::BadCharacter { position: 16, .. })
    ));
}

#[test]
fn iso87_dump_shows_positional_subfields() {
    let mut reversal = Message::new(Mti::parse("0420").unwrap());
    reversal.set_text(2, "4761739001010119");
    reversal.set_text(4, "000000001000");
    reversal.set_text(11, "000043");
    reversal.set_text(43, "EASYPOS COFFEE         SHANGHAI     SHCN");
    reversal.set_text(90, "020000004211251045120000000123400000000000");
    let wire = iso87().pack(&reversal).unwrap();
    let dump = iso87().dump(&iso87().unpack(&wire).unwrap());
    let expected = "\
MTI     0420 ISO 8583:1987 reversal/chargeback advice from acquirer
bitmap  D020000000200000 0000004000000000
002     Primary account number             476173******0119
004     Amount, transaction                000000001000
011     System trace audit number          000043
043     Card acceptor name/location        EASYPOS COFFEE         SHANGHAI     SHCN
  43.1    Name                             EASYPOS COFFEE         
  43.2    City                             SHANGHAI     
  43.3    Region                           SH
  43.4    Country                          CN
090     Original data elements             020000004211251045120000000123400000000000
  90.1    Original MTI                     0200
  90.2    Original STAN                    000042
  90.3    Original transmission date and time 1125104512
  90.4    Original acquiring institution id 00000001234
  90.5    Original forwarding institution id 00000000000
";
    assert_eq!(dump, expected);
}
