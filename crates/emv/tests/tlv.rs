#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Behaviour of the strict BER-TLV parser, the field-55 helpers and round-trips.

use emv::tlv::{self, MAX_DEPTH, Tag, TlvError};
use proptest::prelude::*;

fn bytes(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

#[test]
fn multi_byte_tags_and_all_three_length_forms() {
    // 9F26 (2-byte tag), 81 80 (2-byte length), 82 0100 (3-byte length).
    let mut input = bytes("9F260811223344556677889F10");
    input.extend_from_slice(&[0x81, 0x80]);
    input.extend(std::iter::repeat_n(0xAB, 0x80));
    input.extend_from_slice(&[0xDF, 0x81, 0x01, 0x82, 0x01, 0x00]);
    input.extend(std::iter::repeat_n(0xCD, 0x100));
    let objects = tlv::parse(&input).unwrap();
    assert_eq!(objects.len(), 3);
    assert_eq!(objects[0].tag, Tag(0x9F26));
    assert_eq!(objects[1].value.len(), 0x80);
    assert_eq!(objects[2].tag, Tag(0xDF8101));
    assert_eq!(objects[2].value.len(), 0x100);
    let mut again = Vec::new();
    for object in &objects {
        tlv::write(object.tag, object.value, &mut again).unwrap();
    }
    assert_eq!(again, input);
}

#[test]
fn constructed_templates_nest() {
    // Response template 77 holding 9F27 and 9F36; issuer script 71 holding 9F18 and 86.
    let input = bytes("77099F2701809F36020001710A9F180400000001860100");
    let tree = tlv::parse_tree(&input).unwrap();
    assert_eq!(tree[0].tlv.tag, Tag(0x77));
    assert_eq!(tree[0].children.len(), 2);
    assert_eq!(tree[1].children[1].tlv.tag, Tag(0x86));
}

#[test]
fn rejects_indefinite_and_long_length_forms() {
    assert!(matches!(
        tlv::parse(&bytes("9F2680")),
        Err(TlvError::IndefiniteLength { offset: 2, .. })
    ));
    assert!(matches!(
        tlv::parse(&bytes("9F268300000108")),
        Err(TlvError::LengthTooLong { form: 0x83, .. })
    ));
    assert!(matches!(
        tlv::parse(&bytes("9F2685")),
        Err(TlvError::LengthTooLong { form: 0x85, .. })
    ));
    assert!(matches!(
        tlv::parse(&bytes("5A8105")),
        Err(TlvError::NonMinimalLength { len: 5, .. })
    ));
}

#[test]
fn rejects_lengths_past_the_buffer_and_trailing_bytes() {
    assert_eq!(
        tlv::parse(&bytes("9F260811223344")),
        Err(TlvError::ValuePastEnd {
            offset: 0,
            tag: Tag(0x9F26),
            len: 8,
            available: 4
        })
    );
    // One stray byte after a complete object is a truncated tag, not silently ignored.
    assert_eq!(
        tlv::parse(&bytes("9C01009F")),
        Err(TlvError::TruncatedTag { offset: 3 })
    );
    assert_eq!(tlv::parse(&bytes("9C0100")).unwrap().len(), 1);
}

#[test]
fn rejects_overlong_tags_and_deep_nesting() {
    assert!(matches!(
        tlv::parse(&bytes("9F8181818101")),
        Err(TlvError::TagTooLong { .. })
    ));
    let mut nested = vec![0x9C, 0x01, 0x00];
    for _ in 0..MAX_DEPTH {
        let mut outer = vec![0x70, nested.len() as u8];
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    assert!(matches!(
        tlv::parse_tree(&nested),
        Err(TlvError::TooDeep { .. })
    ));
    assert!(tlv::parse(&nested).is_ok(), "flat parsing does not descend");
}

#[test]
fn field55_rejects_duplicates_and_oversize_values() {
    assert_eq!(
        emv::field55::parse(&bytes("9C01009C0100")),
        Err(TlvError::Duplicate { tag: Tag(0x9C) })
    );
    assert!(matches!(
        emv::field55::parse(&bytes("9F2609010203040506070809")),
        Err(TlvError::ValueTooLong { len: 9, max: 8, .. })
    ));
    let built = emv::field55::build(&[(Tag(0x9F36), &[0, 1]), (Tag(0x9C), &[0])]).unwrap();
    assert_eq!(hex::encode_upper(built), "9F360200019C0100");
}

#[test]
fn display_masks_card_data() {
    assert_eq!(emv::display_value(Tag(0x9F36), &[0, 1]), "0001");
    assert_eq!(
        emv::display_value(Tag(0x5A), &[0x47, 0x61]),
        "**** (2 bytes, masked)"
    );
}

fn any_tag() -> impl Strategy<Value = Tag> {
    prop_oneof![
        (0u32..=0xFF)
            .prop_filter("single", |t| t & 0x1F != 0x1F)
            .prop_map(Tag),
        (0u32..=0x7F).prop_map(|second| Tag(0x9F00 | second)),
        (0x80u32..=0xFF, 0u32..=0x7F).prop_map(|(a, b)| Tag(0xDF0000 | (a << 8) | b)),
    ]
}

proptest! {
    #[test]
    fn encode_then_parse_round_trips(
        objects in proptest::collection::vec((any_tag(), proptest::collection::vec(any::<u8>(), 0..300)), 0..5)
    ) {
        let pairs: Vec<(Tag, &[u8])> = objects.iter().map(|(t, v)| (*t, v.as_slice())).collect();
        let encoded = tlv::encode(&pairs).unwrap();
        let parsed = tlv::parse(&encoded).unwrap();
        let back: Vec<(Tag, &[u8])> = parsed.iter().map(|o| (o.tag, o.value)).collect();
        prop_assert_eq!(back, pairs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = tlv::parse_tree(&input);
        let _ = emv::dol::parse(&input);
    }
}
