#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The issuer's decision through a software HSM, with a simulated card whose keys we know:
//! every decline path answers with its code and remembers the right things.

use hsm::{Hsm, KeySpec, PinSource, SoftHsm};
use iso8583::ResponseCode;
use issuer::*;
use money::{Amount, Currency};
use paycrypto::emv::{self, CryptogramVersion};
use paycrypto::pinblock::{self, PinBlockFormat, PinKey};
use paycrypto::{Pan, Pin, PinBlock, TdesKey};

/// Test keys (never production keys): the X9.24 test BDK value reused as every issuer key.
const TEST_KEY: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZONE_KEY: &str = "89B07B35A1B3F47E89B07B35A1B3F47E";
const PAN: &str = "6212340000100008";
const CDOL1_DATA: &str =
    "000000002000000000000000015600000080000156251125003804823E5C00000103A4A002";
const TODAY: BusinessDate = BusinessDate {
    year: 2026,
    month: 11,
    day: 25,
};

struct World {
    hsm: SoftHsm,
    keys: CardKeys,
    zone_key: hsm::KeyToken,
    clear_key: TdesKey,
    clear_zone_key: TdesKey,
    pan: Pan,
}

fn world() -> World {
    let hsm = SoftHsm::new(&[0x42; 32]).unwrap();
    let clear_key = TdesKey::new(&hex::decode(TEST_KEY).unwrap()).unwrap();
    let clear_zone_key = TdesKey::new(&hex::decode(ZONE_KEY).unwrap()).unwrap();
    let keys = CardKeys {
        cvk: hsm
            .import_clear_key(&KeySpec::cvk(), clear_key.expose())
            .unwrap(),
        pvk: hsm
            .import_clear_key(&KeySpec::pvk_visa(), clear_key.expose())
            .unwrap(),
        imk_ac: hsm
            .import_clear_key(&KeySpec::issuer_master_key(), clear_key.expose())
            .unwrap(),
    };
    let zone_key = hsm
        .import_clear_key(&KeySpec::pin_zone_tdes(), clear_zone_key.expose())
        .unwrap();
    World {
        hsm,
        keys,
        zone_key,
        clear_key,
        clear_zone_key,
        pan: Pan::new(PAN).unwrap(),
    }
}

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

/// A debit card with PIN 1234 (Visa PVV under the test key), chip and stripe, limit 5 000.00.
fn profile(world: &World) -> CardProfile {
    let pvv =
        paycrypto::card::pvv(&world.clear_key, &world.pan, 1, &Pin::new("1234").unwrap()).unwrap();
    CardProfile {
        status: CardStatus::Active,
        expiry: YearMonth::parse_yymm("3012").unwrap(),
        service_code: "201".into(),
        currency: Currency::CNY,
        pin: Some(PinReference::VisaPvv { pvki: 1, pvv }),
        pin_failures: 0,
        last_atc: Some(4),
        cryptogram_version: CryptogramVersion::Visa18,
        daily_limit: Some(cny(500_000)),
        spent: cny(0),
        spent_on: None,
    }
}

/// The terminal's PIN block (format 0) under the zone key the switch translated to.
fn pin_block(world: &World, pin: &str) -> PinBlock {
    pinblock::encrypt_pin_block(
        PinBlockFormat::Iso0,
        PinKey::Tdes(&world.clear_zone_key),
        &Pin::new(pin).unwrap(),
        Some(&world.pan),
        &[0; 8],
    )
    .unwrap()
}

/// What the card's chip computes for `atc`.
fn arqc(world: &World, atc: u16, data: &[u8]) -> [u8; 8] {
    let version = CryptogramVersion::Visa18;
    let icc = emv::icc_master_key(&world.clear_key, &world.pan, 1).unwrap();
    let session = emv::session_key(
        &icc,
        atc.to_be_bytes(),
        version.session_derivation([0x38, 0x04, 0x82, 0x3E]),
    )
    .unwrap();
    emv::generate_arqc(&session, data, version.padding()).unwrap()
}

struct Sale {
    amount: i64,
    atc: u16,
    pin: Option<&'static str>,
    forged_arqc: bool,
}

const CHIP_SALE: Sale = Sale {
    amount: 12_000,
    atc: 5,
    pin: Some("1234"),
    forged_arqc: false,
};

fn run(world: &World, card: &CardProfile, sale: Sale) -> Decision {
    let data = hex::decode(CDOL1_DATA).unwrap();
    let mut cryptogram = arqc(world, sale.atc, &data);
    if sale.forged_arqc {
        cryptogram[0] ^= 1;
    }
    let chip = ChipData {
        psn: 1,
        atc: sale.atc,
        unpredictable_number: [0x38, 0x04, 0x82, 0x3E],
        data: &data,
        arqc: cryptogram,
    };
    let block = sale.pin.map(|pin| pin_block(world, pin));
    let source = PinSource::Zone {
        key: &world.zone_key,
        format: PinBlockFormat::Iso0,
    };
    let request = AuthorizationRequest {
        kind: TransactionKind::Purchase,
        amount: cny(sale.amount),
        pan: &world.pan,
        presentation: Presentation::Chip(chip),
        pin: block.as_ref().map(|block| PinData { block, source }),
        today: TODAY,
    };
    decide(&world.hsm, card, &world.keys, &request)
}

#[test]
fn a_genuine_chip_sale_with_the_right_pin_is_approved_and_remembered() {
    let world = world();
    let card = profile(&world);
    let decision = run(&world, &card, CHIP_SALE);
    assert_eq!(
        (decision.response, decision.reason),
        (ResponseCode::Approved, Reason::Approved)
    );
    assert_eq!(
        decision.update,
        CardUpdate {
            pin_failures: 0,
            last_atc: Some(5),
            spend: Some((cny(12_000), TODAY))
        }
    );
}

#[test]
fn card_standing_decides_first() {
    let world = world();
    let cases = [
        (CardStatus::Lost, ResponseCode::LostCard, Reason::CardLost),
        (
            CardStatus::Stolen,
            ResponseCode::StolenCard,
            Reason::CardStolen,
        ),
        (
            CardStatus::Blocked,
            ResponseCode::RestrictedCard,
            Reason::CardBlocked,
        ),
        (
            CardStatus::Frozen,
            ResponseCode::RestrictedCard,
            Reason::CardFrozen,
        ),
    ];
    for (status, response, reason) in cases {
        let card = CardProfile {
            status,
            ..profile(&world)
        };
        let decision = run(
            &world,
            &card,
            Sale {
                pin: Some("9999"),
                ..CHIP_SALE
            },
        );
        assert_eq!((decision.response, decision.reason), (response, reason));
        assert_eq!(
            decision.update.pin_failures, 0,
            "a refused card does not burn a PIN try"
        );
    }
    let expired = CardProfile {
        expiry: YearMonth::parse_yymm("2610").unwrap(),
        ..profile(&world)
    };
    assert_eq!(
        run(&world, &expired, CHIP_SALE).response,
        ResponseCode::ExpiredCard
    );
    let this_month = CardProfile {
        expiry: YearMonth::parse_yymm("2611").unwrap(),
        ..profile(&world)
    };
    assert_eq!(
        run(&world, &this_month, CHIP_SALE).response,
        ResponseCode::Approved,
        "valid through its expiry month"
    );
}

#[test]
fn wrong_pins_count_up_to_75_and_a_right_pin_resets_the_count() {
    let world = world();
    let mut card = profile(&world);
    let mut atc = 5;
    let mut attempt = |card: &CardProfile, pin| {
        atc += 1;
        run(
            &world,
            card,
            Sale {
                atc,
                pin: Some(pin),
                ..CHIP_SALE
            },
        )
    };
    let first = attempt(&card, "4321");
    assert_eq!(
        (first.response, first.update.pin_failures),
        (ResponseCode::IncorrectPin, 1)
    );
    card.pin_failures = first.update.pin_failures;
    card.last_atc = first.update.last_atc;
    let right = attempt(&card, "1234");
    assert_eq!(
        (right.response, right.update.pin_failures),
        (ResponseCode::Approved, 0)
    );
    card.pin_failures = right.update.pin_failures;
    card.last_atc = right.update.last_atc;
    for expected in [
        ResponseCode::IncorrectPin,
        ResponseCode::IncorrectPin,
        ResponseCode::PinTriesExceeded,
    ] {
        let decision = attempt(&card, "0000");
        assert_eq!(decision.response, expected);
        assert!(decision.update.spend.is_none());
        card.pin_failures = decision.update.pin_failures;
        card.last_atc = decision.update.last_atc;
    }
    assert_eq!(card.pin_failures, MAX_PIN_TRIES);
    let locked = attempt(&card, "1234");
    assert_eq!(
        (locked.response, locked.reason),
        (ResponseCode::PinTriesExceeded, Reason::PinTriesExhausted),
        "even the right PIN"
    );
}

#[test]
fn forged_and_replayed_cryptograms_are_declined() {
    let world = world();
    let card = profile(&world);
    let forged = run(
        &world,
        &card,
        Sale {
            forged_arqc: true,
            ..CHIP_SALE
        },
    );
    assert_eq!(
        (forged.response, forged.reason),
        (ResponseCode::DoNotHonor, Reason::ArqcInvalid)
    );
    assert_eq!(
        forged.update.last_atc,
        Some(4),
        "a bad cryptogram does not move the ATC"
    );
    assert_eq!(forged.update.pin_failures, 0, "nor burn a PIN try");
    for atc in [4, 3] {
        let replay = run(&world, &card, Sale { atc, ..CHIP_SALE });
        assert_eq!(
            (replay.response, replay.reason),
            (ResponseCode::DoNotHonor, Reason::AtcReplayed),
            "ATC {atc}"
        );
    }
}

#[test]
fn daily_limit_and_amount_checks() {
    let world = world();
    let card = CardProfile {
        spent: cny(450_000),
        spent_on: Some(TODAY),
        ..profile(&world)
    };
    let over = run(
        &world,
        &card,
        Sale {
            amount: 60_000,
            ..CHIP_SALE
        },
    );
    assert_eq!(
        (over.response, over.reason),
        (ResponseCode::ExceedsAmountLimit, Reason::DailyLimitExceeded)
    );
    let at_limit = run(
        &world,
        &card,
        Sale {
            amount: 50_000,
            ..CHIP_SALE
        },
    );
    assert_eq!(at_limit.update.spend, Some((cny(500_000), TODAY)));
    let yesterday = CardProfile {
        spent_on: Some(BusinessDate { day: 24, ..TODAY }),
        ..card.clone()
    };
    assert_eq!(
        run(
            &world,
            &yesterday,
            Sale {
                amount: 60_000,
                ..CHIP_SALE
            }
        )
        .update
        .spend,
        Some((cny(60_000), TODAY)),
        "a new day starts from zero"
    );
    assert_eq!(
        run(
            &world,
            &card,
            Sale {
                amount: 0,
                ..CHIP_SALE
            }
        )
        .response,
        ResponseCode::InvalidAmount
    );
    let usd = CardProfile {
        currency: Currency::USD,
        ..profile(&world)
    };
    assert_eq!(
        run(&world, &usd, CHIP_SALE).reason,
        Reason::CurrencyNotSupported
    );
}

#[test]
fn magstripe_needs_the_right_cvv_and_a_failed_chip_first_for_chip_cards() {
    let world = world();
    let card = profile(&world);
    let cvv = paycrypto::card::cvv(&world.clear_key, &world.pan, "3012", "201").unwrap();
    let swipe = |cvv: &str, service_code: &str, expiry: &str, fallback: bool| {
        let request = AuthorizationRequest {
            kind: TransactionKind::Purchase,
            amount: cny(3_000),
            pan: &world.pan,
            presentation: Presentation::Magstripe {
                expiry: YearMonth::parse_yymm(expiry).unwrap(),
                service_code,
                cvv,
                fallback,
            },
            pin: None,
            today: TODAY,
        };
        let decision = decide(&world.hsm, &card, &world.keys, &request);
        (decision.response, decision.reason)
    };
    assert_eq!(
        swipe(&cvv, "201", "3012", true),
        (ResponseCode::Approved, Reason::Approved)
    );
    assert_eq!(
        swipe(&cvv, "201", "3012", false),
        (ResponseCode::DoNotHonor, Reason::ChipCardSwiped)
    );
    let wrong = if cvv == "000" { "111" } else { "000" };
    assert_eq!(
        swipe(wrong, "201", "3012", true),
        (ResponseCode::DoNotHonor, Reason::CvvMismatch)
    );
    assert_eq!(
        swipe(&cvv, "101", "3012", true),
        (ResponseCode::DoNotHonor, Reason::ServiceCodeMismatch)
    );
    assert_eq!(
        swipe(&cvv, "201", "3011", true),
        (ResponseCode::DoNotHonor, Reason::ExpiryMismatch)
    );
}

#[test]
fn balance_inquiries_take_no_amount_and_spend_nothing() {
    let world = world();
    let card = profile(&world);
    let data = hex::decode(CDOL1_DATA).unwrap();
    let chip = ChipData {
        psn: 1,
        atc: 9,
        unpredictable_number: [0x38, 0x04, 0x82, 0x3E],
        data: &data,
        arqc: arqc(&world, 9, &data),
    };
    let request = AuthorizationRequest {
        kind: TransactionKind::BalanceInquiry,
        amount: cny(0),
        pan: &world.pan,
        presentation: Presentation::Chip(chip),
        pin: None,
        today: TODAY,
    };
    let decision = decide(&world.hsm, &card, &world.keys, &request);
    assert_eq!(
        (decision.response, decision.update.spend),
        (ResponseCode::Approved, None)
    );
}

#[test]
fn the_arpc_carries_the_final_response_and_matches_the_card_side() {
    let world = world();
    let card = profile(&world);
    let data = hex::decode(CDOL1_DATA).unwrap();
    let cryptogram = arqc(&world, 5, &data);
    let chip = ChipData {
        psn: 1,
        atc: 5,
        unpredictable_number: [0x38, 0x04, 0x82, 0x3E],
        data: &data,
        arqc: cryptogram,
    };
    let icc = emv::icc_master_key(&world.clear_key, &world.pan, 1).unwrap();
    let session = emv::session_key(
        &icc,
        [0, 5],
        CryptogramVersion::Visa18.session_derivation([0x38, 0x04, 0x82, 0x3E]),
    )
    .unwrap();
    for (response, csu) in [
        (ResponseCode::Approved, [0, 0, 0, 0x80]),
        (ResponseCode::InsufficientFunds, [0, 0, 0, 0]),
    ] {
        let tag91 = arpc(&world.hsm, &card, &world.keys, &world.pan, &chip, response)
            .unwrap()
            .unwrap();
        let expected = emv::arpc_method2(&session, &cryptogram, &csu, &[]).unwrap();
        assert_eq!(
            tag91,
            [expected.to_vec(), csu.to_vec()].concat(),
            "{response}"
        );
    }
    let forged = ChipData {
        arqc: [0; 8],
        ..chip
    };
    assert_eq!(
        arpc(
            &world.hsm,
            &card,
            &world.keys,
            &world.pan,
            &forged,
            ResponseCode::Approved
        )
        .unwrap(),
        None
    );
}

#[test]
fn ledger_refusals_become_response_codes() {
    use ledger::TransferError;
    assert_eq!(
        response_for_ledger_error(TransferError::ExceedsCredits),
        ResponseCode::InsufficientFunds
    );
    assert_eq!(
        response_for_ledger_error(TransferError::ExceedsDebits),
        ResponseCode::InsufficientFunds,
        "over the credit limit"
    );
    assert_eq!(
        response_for_ledger_error(TransferError::ExceedsPendingAmount),
        ResponseCode::InvalidAmount
    );
    assert_eq!(
        response_for_ledger_error(TransferError::PendingTransferNotFound),
        ResponseCode::UnableToLocateRecord
    );
    assert_eq!(
        response_for_ledger_error(TransferError::DebitAccountNotFound),
        ResponseCode::SystemMalfunction
    );
}
