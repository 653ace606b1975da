//! Every field check with good values (published examples where a standard gives them) and
//! one bad value per fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use onboarding::validate::{self, FieldError};

fn code<T: std::fmt::Debug>(result: Result<T, FieldError>) -> &'static str {
    result.expect_err("a bad value is refused").code
}

#[test]
fn unified_social_credit_codes_follow_gb_32100() {
    // GB 32100-2015's own example, and the published codes of two large companies (business
    // licences shown on their websites): Huawei Technologies and Tencent (Shenzhen).
    for good in [
        "91350100M000100Y43",
        "914403001922038216",
        "91440300708461136T",
    ] {
        assert_eq!(validate::credit_code(good).as_deref(), Ok(good), "{good}");
    }
    assert_eq!(
        validate::credit_code(" 91350100m000100y43 ").as_deref(),
        Ok("91350100M000100Y43")
    );
    assert_eq!(code(validate::credit_code("")), "required");
    assert_eq!(
        code(validate::credit_code("91350100M000100Y4")),
        "credit-code-length"
    );
    assert_eq!(
        code(validate::credit_code("91350100M000100Y433")),
        "credit-code-length"
    );
    // I, O, S, V and Z are not used.
    assert_eq!(
        code(validate::credit_code("91350100M000100I43")),
        "credit-code-chars"
    );
    assert_eq!(
        code(validate::credit_code("91350100M00010-Y43")),
        "credit-code-chars"
    );
    // One character changed, and two neighbours swapped.
    assert_eq!(
        code(validate::credit_code("91350100M000100Y44")),
        "credit-code-check"
    );
    assert_eq!(
        code(validate::credit_code("91350100M000010Y43")),
        "credit-code-check"
    );
}

#[test]
fn resident_ids_follow_iso_7064_mod_11_2() {
    // GB 11643-1999's examples (the second ends in X).
    for good in ["11010519491231002X", "440524188001010014"] {
        assert_eq!(validate::resident_id(good).as_deref(), Ok(good), "{good}");
    }
    assert_eq!(
        validate::resident_id("11010519491231002x").as_deref(),
        Ok("11010519491231002X")
    );
    assert_eq!(code(validate::resident_id("")), "required");
    assert_eq!(code(validate::resident_id("1101051949123100")), "id-length");
    assert_eq!(
        code(validate::resident_id("11010519491231002Y")),
        "id-chars"
    );
    assert_eq!(
        code(validate::resident_id("1101051949123100AX")),
        "id-chars"
    );
    // 31 February is no birthday.
    assert_eq!(
        code(validate::resident_id("110105194902310021")),
        "id-birth-date"
    );
    assert_eq!(
        code(validate::resident_id("110105194912310021")),
        "id-check"
    );
}

#[test]
fn mobile_numbers_are_mainland_ones() {
    assert_eq!(
        validate::mobile("13812345678").as_deref(),
        Ok("13812345678")
    );
    assert_eq!(
        validate::mobile("+86 138-1234-5678").as_deref(),
        Ok("13812345678")
    );
    assert_eq!(
        validate::mobile("008619912345678").as_deref(),
        Ok("19912345678")
    );
    assert_eq!(code(validate::mobile(" ")), "required");
    for bad in [
        "12812345678",
        "1381234567",
        "138123456789",
        "1381234567a",
        "02112345678",
    ] {
        assert_eq!(code(validate::mobile(bad)), "mobile", "{bad}");
    }
}

#[test]
fn settlement_cards_pass_luhn() {
    // A UnionPay test number that passes Luhn (demo BIN 621700).
    let good = demo::with_luhn("621700000000000001");
    assert_eq!(
        validate::settlement_card(&good).as_deref(),
        Ok(good.as_str())
    );
    let spaced = format!("{} {}", &good[..4], &good[4..]);
    assert_eq!(
        validate::settlement_card(&spaced).as_deref(),
        Ok(good.as_str())
    );
    assert_eq!(code(validate::settlement_card("")), "required");
    assert_eq!(
        code(validate::settlement_card("622848001234")),
        "card-digits"
    );
    assert_eq!(
        code(validate::settlement_card("62284800123456789a")),
        "card-digits"
    );
    let last = good.as_bytes()[good.len() - 1] - b'0';
    let bad = format!("{}{}", &good[..good.len() - 1], (last + 1) % 10);
    assert_eq!(code(validate::settlement_card(&bad)), "card-check");
}

#[test]
fn business_types_come_from_the_picker() {
    assert_eq!(
        validate::mcc("5814").map(|c| c.name_zh),
        Ok("快餐店、咖啡馆、茶饮店")
    );
    assert_eq!(code(validate::mcc("")), "required");
    assert_eq!(code(validate::mcc("1234")), "mcc-unknown");
    assert_eq!(code(validate::mcc("7995")), "mcc-prohibited");
    assert!(onboarding::mcc::offered().all(|c| c.mcc != "7995"));
}

#[test]
fn volumes_and_terminals_are_bounded() {
    assert_eq!(
        validate::monthly_volume("50,000").map(|a| a.minor()),
        Ok(5_000_000)
    );
    assert_eq!(validate::monthly_volume("1.50").map(|a| a.minor()), Ok(150));
    assert_eq!(code(validate::monthly_volume("")), "required");
    assert_eq!(code(validate::monthly_volume("5e4")), "volume-format");
    assert_eq!(code(validate::monthly_volume("-5")), "volume-format");
    assert_eq!(code(validate::monthly_volume("0.99")), "volume-range");
    assert_eq!(code(validate::monthly_volume("100000001")), "volume-range");
    assert_eq!(validate::terminal_count("20"), Ok(20));
    assert_eq!(code(validate::terminal_count("")), "required");
    for bad in ["0", "21", "two", "-1"] {
        assert_eq!(
            code(validate::terminal_count(bad)),
            "terminal-count",
            "{bad}"
        );
    }
    assert_eq!(validate::terminal_kind("portable"), Ok("portable"));
    assert_eq!(code(validate::terminal_kind("atm")), "terminal-kind");
}

#[test]
fn text_fields_and_consent() {
    assert_eq!(
        validate::text("business_name", " 陆家嘴咖啡 ").as_deref(),
        Ok("陆家嘴咖啡")
    );
    assert_eq!(code(validate::text("business_name", "")), "required");
    assert_eq!(code(validate::text("business_name", "X")), "too-short");
    assert_eq!(
        code(validate::text("business_name", &"长".repeat(201))),
        "too-long"
    );
    assert_eq!(
        code(validate::text("business_name", "a\u{7}b")),
        "text-chars"
    );
    assert_eq!(validate::consent("on"), Ok(true));
    assert_eq!(code(validate::consent("")), "consent");
    assert_eq!(
        validate::field("city", "").map(|r| r.map_err(|e| e.code)),
        Some(Err("city"))
    );
    assert_eq!(validate::field("nonsense", "x"), None);
}

#[test]
fn every_code_has_an_english_message() {
    for (code, message) in validate::CODES {
        assert!(!message.is_empty(), "{code}");
        let error = validate::field("mobile", "1").expect("mobile is a field");
        assert_eq!(error.map_err(|e| e.english()), Err(validate::CODES[10].1));
    }
}
