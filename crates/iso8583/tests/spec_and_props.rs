#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The spec loader, and round-trip properties for every field type, length type and encoding.

use iso8583::{Message, Mti, Profile, SpecError};
use proptest::prelude::*;

/// One profile per (numeric encoding, prefix encoding, bitmap), each with a field of every
/// type × length combination the issue lists.
fn profile(numeric: &str, prefix: &str, bitmap: &str, pad: &str) -> Profile {
    let fields = r#"
field = [
  { number = 2, name = "n llvar", type = "n", length = "llvar", max = 19 },
  { number = 3, name = "n fixed", type = "n", length = "fixed", max = 7 },
  { number = 4, name = "n lllvar", type = "n", length = "lllvar", max = 120 },
  { number = 5, name = "n llllvar", type = "n", length = "llllvar", max = 1200 },
  { number = 6, name = "an fixed", type = "an", length = "fixed", max = 5 },
  { number = 7, name = "an llvar", type = "an", length = "llvar", max = 40 },
  { number = 8, name = "ans lllvar", type = "ans", length = "lllvar", max = 300 },
  { number = 9, name = "ans llllvar", type = "ans", length = "llllvar", max = 1000 },
  { number = 10, name = "b fixed", type = "b", length = "fixed", max = 8 },
  { number = 11, name = "b lllvar", type = "b", length = "lllvar", max = 255 },
  { number = 12, name = "b hex llvar", type = "b", length = "llvar", max = 40, encoding = "hex" },
  { number = 13, name = "z llvar", type = "z", length = "llvar", max = 37 },
  { number = 14, name = "x+n fixed", type = "xn", length = "fixed", max = 9 },
  { number = 15, name = "n ascii in any profile", type = "n", length = "llvar", max = 11, encoding = "ascii" },
  { number = 70, name = "n fixed above 64", type = "n", length = "fixed", max = 3 },
]"#;
    let text = format!(
        "name = \"t\"\nmti = \"{numeric}\"\nbitmap = \"{bitmap}\"\nnumeric = \"{numeric}\"\nprefix = \"{prefix}\"\n{}",
        fields.replace("max = 19 }", &format!("max = 19, pad = \"{pad}\" }}"))
    );
    Profile::from_toml(&text).unwrap()
}

fn all_profiles() -> Vec<Profile> {
    let mut out = Vec::new();
    for numeric in ["ascii", "bcd"] {
        for prefix in ["ascii", "bcd", "binary"] {
            for bitmap in ["binary", "hex"] {
                for pad in ["left", "right"] {
                    out.push(profile(numeric, prefix, bitmap, pad));
                }
            }
        }
    }
    out
}

fn digits(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..10, 0..=max)
        .prop_map(|d| d.iter().map(|x| char::from(b'0' + x)).collect())
}

fn text(class: &'static str, min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[{class}]{{{min},{max}}}")).unwrap()
}

#[derive(Debug, Clone)]
struct Sample {
    n_var: String,
    n_fixed: String,
    n_lll: String,
    n_llll: String,
    an_fixed: String,
    an_var: String,
    ans_lll: String,
    ans_llll: String,
    b_fixed: Vec<u8>,
    b_lll: Vec<u8>,
    b_hex: Vec<u8>,
    z: String,
    xn: String,
    n_ascii: String,
    n_high: String,
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        (
            digits(19),
            digits(7).prop_map(|d| format!("{d:0>7}")),
            digits(120),
            digits(1200),
        ),
        (
            text("A-Za-z0-9 ", 5, 5),
            text("A-Za-z0-9 ", 0, 40),
            text(" -~", 0, 300),
            text(" -~", 0, 1000),
        ),
        (
            proptest::collection::vec(any::<u8>(), 8),
            proptest::collection::vec(any::<u8>(), 0..=255),
            proptest::collection::vec(any::<u8>(), 0..=40),
        ),
        (
            text("0-9=", 0, 37),
            ("[CD]", digits(8)).prop_map(|(s, d)| format!("{s}{d:0>8}")),
            digits(11),
            digits(3),
        ),
    )
        .prop_map(
            |(
                (n_var, n_fixed, n_lll, n_llll),
                (an_fixed, an_var, ans_lll, ans_llll),
                (b_fixed, b_lll, b_hex),
                (z, xn, n_ascii, n_high),
            )| Sample {
                n_var,
                n_fixed,
                n_lll,
                n_llll,
                an_fixed,
                an_var,
                ans_lll,
                ans_llll,
                b_fixed,
                b_lll,
                b_hex,
                z,
                xn,
                n_ascii,
                n_high: format!("{n_high:0>3}"),
            },
        )
}

fn message(sample: &Sample) -> Message<'_> {
    let mut message = Message::new(Mti::parse("0200").unwrap());
    message.set_text(2, sample.n_var.as_str());
    message.set_text(3, sample.n_fixed.as_str());
    message.set_text(4, sample.n_lll.as_str());
    message.set_text(5, sample.n_llll.as_str());
    message.set_text(6, sample.an_fixed.as_str());
    message.set_text(7, sample.an_var.as_str());
    message.set_text(8, sample.ans_lll.as_str());
    message.set_text(9, sample.ans_llll.as_str());
    message.set_bytes(10, sample.b_fixed.as_slice());
    message.set_bytes(11, sample.b_lll.as_slice());
    message.set_bytes(12, sample.b_hex.as_slice());
    message.set_text(13, sample.z.as_str());
    message.set_text(14, sample.xn.as_str());
    message.set_text(15, sample.n_ascii.as_str());
    message.set_text(70, sample.n_high.as_str());
    message
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_type_and_encoding_round_trips(sample in sample()) {
        let original = message(&sample);
        for profile in all_profiles() {
            let wire = profile.pack(&original).unwrap();
            let back = profile.unpack(&wire).unwrap();
            for (number, value) in original.iter() {
                prop_assert_eq!(back.get(number).unwrap().to_bytes(), value.to_bytes(), "field {}", number);
            }
            prop_assert_eq!(profile.pack(&back).unwrap(), wire);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        for name in iso8583::BUILTIN_PROFILES {
            let profile = Profile::builtin(name).unwrap();
            if let Ok(message) = profile.unpack(&input) {
                let _ = profile.dump(&message);
                prop_assert_eq!(profile.pack(&message).unwrap(), input.clone());
            }
        }
    }
}

#[test]
fn builtin_profiles_load_and_unknown_names_are_refused() {
    assert_eq!(
        Profile::builtin("iso87-ascii").unwrap().fields().count(),
        127
    );
    assert_eq!(
        Profile::builtin("cup-bcd")
            .unwrap()
            .field(60)
            .unwrap()
            .subfields
            .len(),
        6
    );
    assert!(Profile::builtin("visa").is_err());
}

#[test]
fn json_specs_load_like_toml() {
    let json = r#"{"name": "j", "mti": "ascii", "bitmap": "hex", "numeric": "ascii", "prefix": "ascii",
        "field": [{"number": 2, "name": "PAN", "type": "n", "length": "llvar", "max": 19, "sensitive": "pan"}]}"#;
    let profile = Profile::from_json(json).unwrap();
    let message = profile.unpack(b"02004000000000000000101234567890").unwrap();
    assert_eq!(message.get(2).unwrap().to_text(), "1234567890");
}

fn spec_error(fields: &str) -> SpecError {
    let text = format!(
        "name = \"t\"\nmti = \"ascii\"\nbitmap = \"binary\"\nnumeric = \"ascii\"\nprefix = \"ascii\"\nfield = [{fields}]"
    );
    Profile::from_toml(&text).unwrap_err()
}

#[test]
fn bad_specs_are_rejected_with_the_field_named() {
    let cases = [
        (
            r#"{ number = 1, name = "x", type = "b", length = "fixed", max = 8 }"#,
            "field 1: field numbers run from 2 to 128",
        ),
        (
            r#"{ number = 2, name = "x", type = "n", length = "llvar", max = 100 }"#,
            "field 2: max 100 does not fit a Llvar length",
        ),
        (
            r#"{ number = 3, name = "x", type = "an", length = "fixed", max = 3, encoding = "bcd" }"#,
            "field 3: encoding Bcd does not fit type an",
        ),
        (
            r#"{ number = 4, name = "x", type = "n", length = "fixed", max = 0 }"#,
            "field 4: max 0 does not fit a Fixed length",
        ),
        (
            r#"{ number = 5, name = "x", type = "n", length = "fixed", max = 3 }, { number = 5, name = "y", type = "n", length = "fixed", max = 3 }"#,
            "field 5: defined twice",
        ),
        (
            r#"{ number = 6, name = "x", type = "n", length = "fixed", max = 3, layout = "tlv" }"#,
            "field 6: tlv layout needs type b",
        ),
        (
            r#"{ number = 7, name = "x", type = "n", length = "fixed", max = 3, layout = "positional", subfields = [{ id = 1, name = "a", len = 4 }] }"#,
            "field 7: sub-fields add up to 4, over the maximum 3",
        ),
    ];
    for (fields, expected) in cases {
        assert_eq!(spec_error(fields).to_string(), expected);
    }
    assert!(matches!(
        spec_error(r#"{ number = 2, name = "x", type = "q", length = "fixed", max = 3 }"#),
        SpecError::Syntax { .. }
    ));
}

#[test]
fn bcd_filler_f_is_written_and_read() {
    let text =
        iso8583::CUP_BCD_SPEC.replace("prefix = \"bcd\"\n", "prefix = \"bcd\"\nbcd_filler = 15\n");
    let profile = Profile::from_toml(&text).unwrap();
    let mut message = Message::new(Mti::parse("0800").unwrap());
    message.tpdu = Some(iso8583::Tpdu {
        id: 0x60,
        destination: 3,
        source: 0,
    });
    message.header = vec![0; 6].into();
    message.set_text(2, "622202123456789");
    let wire = profile.pack(&message).unwrap();
    assert_eq!(hex::encode_upper(&wire[21..]), "15622202123456789F");
    let back = profile.unpack(&wire).unwrap().into_owned();
    assert_eq!(back.get(2).unwrap().to_text(), "622202123456789");
}

#[test]
fn messages_edit_in_place() {
    let mut message = Message::new(Mti::parse("0200").unwrap());
    message.set_text(11, "000001");
    message.set_text(4, "000000000100");
    message.set_text(11, "000002");
    assert_eq!(message.iter().map(|(n, _)| n).collect::<Vec<_>>(), [4, 11]);
    assert_eq!(message.stan().unwrap().value(), 2);
    assert!(message.remove(4).is_some());
    assert!(!message.has(4));
    assert!(matches!(
        message.amount(),
        Err(iso8583::Error::Field { field: 4, .. })
    ));
    let response = Message::new(message.mti.response().unwrap());
    assert_eq!(response.mti.as_str(), "0210");
}
