#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Terminal messages as they come off the wire (packed and unpacked with `cup-bcd`): each is
//! recognised, checked for what it must carry, and answered with the right skeleton.

use acquirer::{MessageType, Request, classify, response_to};
use iso8583::{Message, Mti, Profile, ResponseCode, Tpdu};

fn cup() -> &'static Profile {
    Profile::builtin("cup-bcd").unwrap()
}

/// A message of `mti` with the fields given, sent through the codec both ways as a terminal's
/// bytes would be.
fn wire(mti: &str, fields: &[(u8, &str)]) -> Vec<u8> {
    let mut message = Message::new(Mti::parse(mti).unwrap());
    message.tpdu = Some(Tpdu {
        id: 0x60,
        destination: 0x0003,
        source: 0x0001,
    });
    message.header = vec![0x60, 0x31, 0x00, 0x31, 0x00, 0x00].into();
    for (field, value) in fields {
        match field {
            52 | 55 | 64 => message.set_bytes(*field, hex::decode(value).unwrap()),
            _ => message.set_text(*field, *value),
        }
    }
    cup().pack(&message).unwrap()
}

const COMMON: [(u8, &str); 3] = [(11, "000042"), (41, "10000001"), (42, "898310058120001")];

fn financial(
    mti: &str,
    processing: &str,
    condition: &str,
    transaction_type: &str,
    extra: &[(u8, &str)],
) -> Vec<u8> {
    let sixty = format!("{transaction_type}000001");
    let mut fields: Vec<(u8, &str)> = vec![
        (2, "6212340000100008"),
        (3, processing),
        (4, "1200"),
        (22, "051"),
        (25, condition),
        (49, "156"),
        (60, &sixty),
        (64, "0102030405060708"),
    ];
    fields.extend(COMMON);
    fields.extend(extra);
    wire(mti, &fields)
}

fn network(mti: &str, code: &str) -> Vec<u8> {
    let sixty = format!("00000001{code}");
    let mut fields: Vec<(u8, &str)> = vec![(60, &sixty)];
    fields.extend(COMMON);
    wire(mti, &fields)
}

#[test]
fn every_message_type_is_recognised() {
    let original = [(37, "251125000042"), (61, "0000010000411125")];
    let cases: Vec<(Vec<u8>, MessageType)> = vec![
        (network("0800", "001"), MessageType::SignOn),
        (network("0800", "003"), MessageType::SignOn),
        (network("0820", "002"), MessageType::SignOff),
        (network("0820", "301"), MessageType::EchoTest),
        (
            financial("0200", "310000", "00", "01", &[]),
            MessageType::BalanceInquiry,
        ),
        (
            financial("0200", "000000", "00", "22", &[]),
            MessageType::Sale,
        ),
        (
            financial("0200", "200000", "00", "23", &original),
            MessageType::SaleVoid,
        ),
        (
            financial("0220", "200000", "00", "25", &original),
            MessageType::Refund,
        ),
        (
            financial("0100", "030000", "06", "10", &[]),
            MessageType::PreAuthorization,
        ),
        (
            financial("0100", "200000", "06", "11", &original),
            MessageType::PreAuthorizationVoid,
        ),
        (
            financial(
                "0200",
                "000000",
                "06",
                "20",
                &[
                    (37, "251125000042"),
                    (38, "123456"),
                    (61, "0000010000411125"),
                ],
            ),
            MessageType::PreAuthorizationCompletion,
        ),
        (
            financial("0200", "200000", "06", "21", &original),
            MessageType::CompletionVoid,
        ),
        (
            financial("0400", "000000", "00", "22", &[(39, "98")]),
            MessageType::Reversal,
        ),
        (
            financial("0401", "000000", "00", "22", &[(39, "98")]),
            MessageType::Reversal,
        ),
    ];
    for (bytes, expected) in cases {
        let message = cup().unpack(&bytes).unwrap();
        assert_eq!(
            classify(cup(), &message).unwrap(),
            expected,
            "{}",
            message.mti.as_str()
        );
        let request =
            Request::parse(cup(), &message).unwrap_or_else(|reject| panic!("{expected}: {reject}"));
        assert_eq!(
            (request.kind, request.stan, request.batch),
            (expected, 42, 1)
        );
        assert_eq!(
            (request.terminal_id.as_str(), request.merchant_id.as_str()),
            ("10000001", "898310058120001")
        );
    }
}

#[test]
fn unknown_combinations_are_invalid_transactions() {
    let cases = [
        financial("0200", "000000", "00", "99", &[]),
        financial("0200", "400000", "00", "22", &[]),
        financial("0100", "030000", "00", "10", &[]),
        network("0600", "001"),
    ];
    for bytes in cases {
        let message = cup().unpack(&bytes).unwrap();
        let reject = classify(cup(), &message).unwrap_err();
        assert_eq!(
            reject.response,
            ResponseCode::InvalidTransaction,
            "{reject}"
        );
    }
    let reject = classify(cup(), &cup().unpack(&network("0820", "999")).unwrap()).unwrap_err();
    assert_eq!(
        (reject.response, reject.field),
        (ResponseCode::FormatError, Some(60))
    );
}

#[test]
fn missing_or_malformed_fields_are_format_errors_that_name_the_field() {
    // A sale without its MAC, a void without the original's reference, a sale without a card.
    let without_mac = {
        let mut message = cup()
            .unpack(&financial("0200", "000000", "00", "22", &[]))
            .unwrap()
            .into_owned();
        message.remove(64);
        message
    };
    let reject = Request::parse(cup(), &without_mac).unwrap_err();
    assert_eq!(
        (reject.response, reject.field),
        (ResponseCode::FormatError, Some(64))
    );

    let void_without_original = cup()
        .unpack(&financial("0200", "200000", "00", "23", &[]))
        .unwrap()
        .into_owned();
    assert_eq!(
        Request::parse(cup(), &void_without_original)
            .unwrap_err()
            .field,
        Some(37)
    );

    let mut without_card = cup()
        .unpack(&financial("0200", "000000", "00", "22", &[]))
        .unwrap()
        .into_owned();
    without_card.remove(2);
    let reject = Request::parse(cup(), &without_card).unwrap_err();
    assert_eq!(reject.field, Some(2));
    assert!(reject.reason.contains("card number"), "{reject}");

    let zero = cup()
        .unpack(&financial("0200", "000000", "00", "22", &[(4, "0")]))
        .unwrap()
        .into_owned();
    assert_eq!(
        Request::parse(cup(), &zero).unwrap_err().response,
        ResponseCode::InvalidAmount
    );

    let short_terminal = cup()
        .unpack(&financial("0200", "000000", "00", "22", &[(41, "T1")]))
        .unwrap()
        .into_owned();
    assert_eq!(
        Request::parse(cup(), &short_terminal).unwrap_err().field,
        Some(41)
    );
}

#[test]
fn the_answer_turns_the_tpdu_round_echoes_what_the_terminal_expects_and_never_card_data() {
    let bytes = financial(
        "0200",
        "000000",
        "00",
        "22",
        &[
            (35, "6212340000100008=30122010000000000000"),
            (52, "1122334455667788"),
        ],
    );
    let request = cup().unpack(&bytes).unwrap();
    let answer = response_to(&request, ResponseCode::InsufficientFunds).unwrap();
    assert_eq!(answer.mti.as_str(), "0210");
    assert_eq!(
        answer.tpdu,
        Some(Tpdu {
            id: 0x60,
            destination: 0x0001,
            source: 0x0003
        })
    );
    assert_eq!(&*answer.header, &*request.header);
    assert_eq!(answer.response_code().unwrap(), "51");
    for field in [3, 4, 11, 22, 25, 41, 42, 49, 60] {
        assert_eq!(
            answer.get(field).map(|value| value.to_text()),
            request.get(field).map(|value| value.to_text()),
            "field {field} echoed"
        );
    }
    for field in [2, 35, 52, 55, 64] {
        assert!(!answer.has(field), "field {field} is not echoed");
    }
    // The skeleton packs as it is, and a response is not answered again.
    let packed = cup().pack(&answer).unwrap();
    let back = cup().unpack(&packed).unwrap();
    assert_eq!(back.mti.as_str(), "0210");
    assert!(response_to(&back, ResponseCode::Approved).is_none());
}

#[test]
fn a_transmission_time_that_is_no_moment_is_a_format_error_naming_field_7() {
    // Field 7 travels on the switch link (iso87-ascii); cup-bcd terminals do not send it.
    let link = Profile::builtin("iso87-ascii").unwrap();
    let sale = |transmission: &str| -> Message<'static> {
        let mut message = Message::new(Mti::parse("0200").unwrap());
        for (field, value) in [
            (2, "6212340000100008"),
            (3, "000000"),
            (4, "000000001200"),
            (7, transmission),
            (11, "000042"),
            (22, "051"),
            (25, "00"),
            (41, "10000001"),
            (42, "898310058120001"),
            (49, "156"),
            (60, "22000001"),
        ] {
            message.set_text(field, value.to_owned());
        }
        message
    };
    assert!(Request::parse_unmaced(link, &sale("1125173005")).is_ok());
    assert!(
        Request::parse_unmaced(link, &sale("0229235959")).is_ok(),
        "a leap day"
    );
    for bad in [
        "1325173005",
        "0230120000",
        "1125240000",
        "1125126000",
        "0000000000",
    ] {
        let reject = Request::parse_unmaced(link, &sale(bad)).unwrap_err();
        assert_eq!(
            (reject.response, reject.field),
            (ResponseCode::FormatError, Some(7)),
            "{bad}"
        );
    }
}
