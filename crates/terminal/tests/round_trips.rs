#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every builder against the host's own side: the acquirer's parsing (`Request::parse`,
//! `chip_fields`, `mac_parts`) and the HSM's verification (working keys, MACs, PIN blocks,
//! ARQC and ARPC), with keys the terminal knows in clear and the HSM holds as tokens.

use acquirer::{MessageType, Request};
use hsm::{
    ArpcInput, ArqcRequest, Hsm, KeySpec, KeyToken, MacAlgorithm, PinDestination, PinSource,
    SoftHsm,
};
use iso8583::{Message, ResponseCode, Stan};
use money::Currency;
use paycrypto::emv::CryptogramVersion;
use paycrypto::mac::Padding;
use paycrypto::pinblock::PinBlockFormat;
use paycrypto::{Pan, Pin, TdesKey};
use terminal::{
    ChipCard, ChipRead, ChipTransaction, ReversalReason, Sale, Terminal, TerminalError,
    TransactionDate, WorkingKeys,
};

const TMK: &str = "0123456789ABCDEFFEDCBA9876543210";
const IMK: &str = "89B07B35A1B3F47E89B07B35A1B3F47E";
const PAN: &str = "6212345000000001";
const MERCHANT: &str = "898310058120001";
const MAC_ALGORITHM: MacAlgorithm = MacAlgorithm::Iso9797Alg3(Padding::Method1);

fn key(hex_text: &str) -> TdesKey {
    TdesKey::new(&hex::decode(hex_text).unwrap()).unwrap()
}

fn stan(value: u32) -> Stan {
    Stan::new(value).unwrap()
}

/// The host's side: an HSM holding the terminal master key and the issuer master key.
struct Host {
    hsm: SoftHsm,
    tmk: KeyToken,
    imk: KeyToken,
}

fn host() -> Host {
    let hsm = SoftHsm::new(&[0x42; 32]).unwrap();
    let tmk = hsm
        .import_clear_key(&KeySpec::terminal_master_key(), &hex::decode(TMK).unwrap())
        .unwrap();
    let imk = hsm
        .import_clear_key(&KeySpec::issuer_master_key(), &hex::decode(IMK).unwrap())
        .unwrap();
    Host { hsm, tmk, imk }
}

/// The terminal signed on: the host's working key tokens and the terminal's keys.
struct SignedOn {
    pin_token: KeyToken,
    mac_token: KeyToken,
    keys: WorkingKeys,
    batch: u32,
}

fn sign_on(host: &Host, terminal: &Terminal) -> SignedOn {
    let request = terminal.sign_on(stan(1), "001").unwrap();
    let frame = terminal.pack(&request).unwrap();
    let unpacked = terminal.profile().unpack(&frame).unwrap();
    let parsed = Request::parse(terminal.profile(), &unpacked).unwrap();
    assert_eq!(
        (parsed.kind, parsed.terminal_id.as_str(), parsed.stan),
        (MessageType::SignOn, "10000001", 1)
    );
    assert_eq!(
        terminal
            .profile()
            .subfield_text(&unpacked, 60, 3)
            .as_deref(),
        Some("003")
    );
    // What the handler answers: new keys under the master key, with 4-byte check values.
    let (pin_token, pin) = host
        .hsm
        .generate_working_key(&host.tmk, &KeySpec::pin_zone_tdes(), 4)
        .unwrap();
    let (mac_token, mac) = host
        .hsm
        .generate_working_key(&host.tmk, &KeySpec::mac_retail(), 4)
        .unwrap();
    let mut answer = acquirer::response_to(&unpacked, ResponseCode::Approved).unwrap();
    answer.set_text(60, "00000007003");
    answer.set_bytes(
        62,
        [
            pin.encrypted,
            pin.check_value,
            mac.encrypted,
            mac.check_value,
        ]
        .concat(),
    );
    let answer_frame = terminal.profile().pack(&answer).unwrap();
    let signed_on = terminal
        .signed_on(&request, &answer_frame, &key(TMK))
        .unwrap();
    SignedOn {
        pin_token,
        mac_token,
        keys: signed_on.keys,
        batch: signed_on.batch,
    }
}

fn transaction(amount_minor: u64) -> ChipTransaction {
    ChipTransaction {
        amount_minor,
        currency: Currency::CNY,
        country: 156,
        date: TransactionDate {
            year: 2026,
            month: 11,
            day: 25,
        },
        unpredictable_number: [0x38, 0x04, 0x82, 0x3E],
    }
}

fn sale_frame(
    terminal: &Terminal,
    signed: &SignedOn,
    card: &mut ChipCard,
    amount_minor: u64,
    trace: u32,
) -> (Message<'static>, Vec<u8>, ChipRead) {
    let read = card.generate_arqc(&transaction(amount_minor)).unwrap();
    let block = signed
        .keys
        .pin_block(&Pin::new("123456").unwrap(), card.pan())
        .unwrap();
    let mut message = terminal
        .sale(&Sale {
            stan: stan(trace),
            batch: signed.batch,
            amount_minor,
            currency: Currency::CNY,
            pan: card.pan(),
            field55: Some(&read.field55),
            pin_block: Some(&block),
        })
        .unwrap();
    let frame = terminal.pack_with_mac(&mut message, &signed.keys).unwrap();
    (message, frame, read)
}

/// The host's answer to `request`: `response`, MACed under the MAC key token when `maced`.
fn host_answer(
    host: &Host,
    signed: &SignedOn,
    request_frame: &[u8],
    response: ResponseCode,
    maced: bool,
    edit: impl FnOnce(&mut Message<'static>),
) -> Vec<u8> {
    let profile = iso8583::Profile::builtin("cup-bcd").unwrap();
    let request = profile.unpack(request_frame).unwrap();
    let mut answer = acquirer::response_to(&request, response).unwrap();
    edit(&mut answer);
    if maced {
        acquirer::mac::pack_with_mac(profile, &mut answer, |covered| {
            host.hsm
                .generate_mac(&signed.mac_token, MAC_ALGORITHM, covered)
                .unwrap()
        })
        .unwrap()
    } else {
        profile.pack(&answer).unwrap()
    }
}

#[test]
fn the_sign_on_gives_the_keys_the_host_generated() {
    let host = host();
    let terminal = Terminal::new("10000001", MERCHANT).unwrap();
    let signed = sign_on(&host, &terminal);
    assert_eq!(signed.batch, 7, "60.2 of the answer");
    let data = b"any bytes the terminal MACs";
    assert_eq!(
        signed.keys.mac(data).to_vec(),
        host.hsm
            .generate_mac(&signed.mac_token, MAC_ALGORITHM, data)
            .unwrap(),
        "the MAC keys agree"
    );
    // The PIN key agrees: the host translates the terminal's block to a zone key known here.
    let zone_clear = key("C1D0F8FB4958670DBA40AB1F3752EF0D");
    let zone = host
        .hsm
        .import_clear_key(&KeySpec::pin_zone_tdes(), zone_clear.expose())
        .unwrap();
    let pan = Pan::new(PAN).unwrap();
    let block = signed
        .keys
        .pin_block(&Pin::new("123456").unwrap(), &pan)
        .unwrap();
    let translated = host
        .hsm
        .translate_pin(
            &block,
            &PinSource::Zone {
                key: &signed.pin_token,
                format: PinBlockFormat::Iso0,
            },
            &PinDestination {
                key: &zone,
                format: PinBlockFormat::Iso0,
            },
            &pan,
        )
        .unwrap();
    let pin = paycrypto::pinblock::decrypt_pin_block(
        PinBlockFormat::Iso0,
        paycrypto::pinblock::PinKey::Tdes(&zone_clear),
        &translated,
        Some(&pan),
    )
    .unwrap();
    assert_eq!(pin.expose().as_str(), "123456");
}

#[test]
fn a_sign_on_answer_that_is_not_00_or_has_bad_keys_is_refused() {
    let host = host();
    let terminal = Terminal::new("10000001", MERCHANT).unwrap();
    let request = terminal.sign_on(stan(1), "001").unwrap();
    let frame = terminal.pack(&request).unwrap();
    let unpacked = terminal.profile().unpack(&frame).unwrap();
    let refused = terminal
        .profile()
        .pack(&acquirer::response_to(&unpacked, ResponseCode::NotPermittedToTerminal).unwrap())
        .unwrap();
    let error = terminal
        .signed_on(&request, &refused, &key(TMK))
        .unwrap_err();
    assert!(error.to_string().contains("58"), "{error}");

    let (_, pin) = host
        .hsm
        .generate_working_key(&host.tmk, &KeySpec::pin_zone_tdes(), 4)
        .unwrap();
    let mut answer = acquirer::response_to(&unpacked, ResponseCode::Approved).unwrap();
    answer.set_text(60, "00000001003");
    // The MAC key's check value does not match its key.
    answer.set_bytes(
        62,
        [
            pin.encrypted.clone(),
            pin.check_value.clone(),
            pin.encrypted,
            vec![0, 0, 0, 0],
        ]
        .concat(),
    );
    let answer = terminal.profile().pack(&answer).unwrap();
    assert!(matches!(
        terminal.signed_on(&request, &answer, &key(TMK)),
        Err(TerminalError::Crypto(_))
    ));
}

#[test]
fn a_sale_is_what_the_host_parses_verifies_and_answers() {
    let host = host();
    let terminal = Terminal::new("10000001", MERCHANT).unwrap();
    let signed = sign_on(&host, &terminal);
    let mut card = ChipCard::new(&key(IMK), Pan::new(PAN).unwrap(), 1).unwrap();
    let (message, frame, read) = sale_frame(&terminal, &signed, &mut card, 1_200, 42);

    // The acquirer's parsing.
    let profile = terminal.profile();
    let unpacked = profile.unpack(&frame).unwrap();
    let request = Request::parse(profile, &unpacked).unwrap();
    assert_eq!(
        (
            request.kind,
            request.stan,
            request.batch,
            request.amount_minor
        ),
        (MessageType::Sale, 42, 7, Some(1_200))
    );
    assert_eq!(unpacked.pan().unwrap().expose(), PAN);
    let (covered, mac) = acquirer::mac::mac_parts(profile, &frame).unwrap();
    assert!(
        host.hsm
            .verify_mac(&signed.mac_token, MAC_ALGORITHM, covered, mac)
            .unwrap(),
        "the host verifies field 64"
    );

    // The chip data as the host reads it, and the ARQC as the issuer's HSM checks it.
    let chip = acquirer::chip::chip_fields(&unpacked.icc_data().unwrap(), None).unwrap();
    assert_eq!(
        (chip.atc, chip.psn, chip.amount_minor),
        (1, 1, 1_200),
        "the first cryptogram has ATC 1"
    );
    let pan = Pan::new(PAN).unwrap();
    let verify = |csu: [u8; 4]| {
        host.hsm
            .verify_arqc(
                &ArqcRequest {
                    issuer_master_key: &host.imk,
                    pan: &pan,
                    psn: chip.psn,
                    atc: chip.atc.to_be_bytes(),
                    unpredictable_number: chip.unpredictable_number,
                    cryptogram_version: CryptogramVersion::Visa18,
                    data: &chip.data,
                    arqc: chip.arqc,
                },
                Some(&ArpcInput::Method2 {
                    csu,
                    proprietary: Vec::new(),
                }),
            )
            .unwrap()
    };
    let approved = verify([0, 0, 0, 0x80]);
    assert!(approved.arqc_valid, "the issuer verifies the ARQC");

    // The approval, MACed, with the ARPC: the terminal checks it and the card the ARPC.
    let tag91 = [approved.arpc.unwrap(), vec![0, 0, 0, 0x80]].concat();
    let answer_frame = host_answer(&host, &signed, &frame, ResponseCode::Approved, true, |a| {
        a.set_text(37, "000000000042");
        a.set_text(38, "123456");
        a.set_bytes(
            55,
            emv::field55::build(&[(emv::Tag(0x91), tag91.as_slice())]).unwrap(),
        );
    });
    let answer = terminal
        .answer(&message, &answer_frame, Some(&signed.keys))
        .unwrap();
    assert_eq!(
        (
            answer.response,
            answer.rrn.as_deref(),
            answer.auth_code.as_deref(),
            answer.maced
        ),
        (
            ResponseCode::Approved,
            Some("000000000042"),
            Some("123456"),
            true
        )
    );
    let arpc = card
        .check_arpc(&read, &answer.issuer_data.unwrap())
        .unwrap()
        .unwrap();
    assert!(arpc.genuine && arpc.approved, "{arpc:?}");

    // An ARPC for a decline does not pass as an approval's.
    let declined = [verify([0; 4]).arpc.unwrap(), vec![0, 0, 0, 0x80]].concat();
    let forged = emv::field55::build(&[(emv::Tag(0x91), declined.as_slice())]).unwrap();
    assert!(!card.check_arpc(&read, &forged).unwrap().unwrap().genuine);
}

#[test]
fn every_cryptogram_has_the_next_atc_until_the_counter_ends() {
    let imk = key(IMK);
    let mut card = ChipCard::new(&imk, Pan::new(PAN).unwrap(), 1).unwrap();
    let first = card.generate_arqc(&transaction(100)).unwrap();
    let second = card.generate_arqc(&transaction(100)).unwrap();
    assert_eq!((first.atc, second.atc, card.atc()), (1, 2, 2));
    assert_ne!(
        first.field55, second.field55,
        "same amount, another ATC, another ARQC"
    );
    let mut old = ChipCard::new(&imk, Pan::new(PAN).unwrap(), 1)
        .unwrap()
        .with_atc(u16::MAX - 1);
    assert_eq!(old.generate_arqc(&transaction(100)).unwrap().atc, u16::MAX);
    assert!(matches!(
        old.generate_arqc(&transaction(100)),
        Err(TerminalError::AtcExhausted)
    ));
    assert_eq!(old.atc(), u16::MAX, "a refused cryptogram does not count");
    assert!(
        !format!("{old:?}").contains(PAN),
        "Debug masks the card number"
    );
}

#[test]
fn a_reversal_carries_the_sales_keys_and_its_reason() {
    let host = host();
    let terminal = Terminal::new("10000001", MERCHANT).unwrap();
    let signed = sign_on(&host, &terminal);
    let mut card = ChipCard::new(&key(IMK), Pan::new(PAN).unwrap(), 1).unwrap();
    let (sale, _, _) = sale_frame(&terminal, &signed, &mut card, 1_200, 42);
    for (repeat, mti) in [(false, "0400"), (true, "0401")] {
        let mut reversal = terminal
            .reversal(&sale, repeat, ReversalReason::NoAnswer)
            .unwrap();
        let frame = terminal.pack_with_mac(&mut reversal, &signed.keys).unwrap();
        let profile = terminal.profile();
        let unpacked = profile.unpack(&frame).unwrap();
        let request = Request::parse(profile, &unpacked).unwrap();
        assert_eq!(
            (
                request.kind,
                request.mti.as_str(),
                request.stan,
                request.batch,
                request.amount_minor
            ),
            (MessageType::Reversal, mti, 42, 7, Some(1_200))
        );
        assert_eq!(unpacked.response_code().unwrap(), "98");
        assert_eq!(
            profile.subfield_text(&unpacked, 60, 1).as_deref(),
            Some("22")
        );
        assert!(
            !unpacked.has(52) && !unpacked.has(55),
            "no PIN block or chip data"
        );
        assert_ne!(
            unpacked.get(64).unwrap().to_bytes(),
            sale.get(64).unwrap().to_bytes(),
            "its own MAC, not the sale's"
        );
        let (covered, mac) = acquirer::mac::mac_parts(profile, &frame).unwrap();
        assert!(
            host.hsm
                .verify_mac(&signed.mac_token, MAC_ALGORITHM, covered, mac)
                .unwrap()
        );
    }
}

#[test]
fn answers_that_do_not_match_or_do_not_verify_are_refused() {
    let host = host();
    let terminal = Terminal::new("10000001", MERCHANT).unwrap();
    let signed = sign_on(&host, &terminal);
    let mut card = ChipCard::new(&key(IMK), Pan::new(PAN).unwrap(), 1).unwrap();
    let (sale, frame, _) = sale_frame(&terminal, &signed, &mut card, 1_200, 42);
    let check = |answer: Vec<u8>| {
        terminal
            .answer(&sale, &answer, Some(&signed.keys))
            .map(|answer| answer.response)
            .map_err(|error| error.to_string())
    };

    assert_eq!(
        check(host_answer(
            &host,
            &signed,
            &frame,
            ResponseCode::IncorrectPin,
            false,
            |_| {}
        )),
        Ok(ResponseCode::IncorrectPin),
        "a decline carries no MAC"
    );
    let mut tampered = host_answer(&host, &signed, &frame, ResponseCode::Approved, true, |_| {});
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(check(tampered).unwrap_err().contains("does not verify"));
    assert!(
        check(host_answer(
            &host,
            &signed,
            &frame,
            ResponseCode::Approved,
            false,
            |_| {}
        ))
        .unwrap_err()
        .contains("carries no MAC")
    );
    type Edit = fn(&mut Message<'static>);
    let echoes: [(Edit, &str); 4] = [
        (|answer| answer.set_text(11, "000043"), "field 11"),
        (|answer| answer.set_amount(1_201), "field 4"),
        (|answer| answer.set_text(42, "898310058120002"), "field 42"),
        (
            |answer| {
                answer.remove(41);
            },
            "field 41",
        ),
    ];
    for (edit, field) in echoes {
        assert!(
            check(host_answer(
                &host,
                &signed,
                &frame,
                ResponseCode::Approved,
                true,
                edit
            ))
            .unwrap_err()
            .contains(field),
            "{field}"
        );
    }
    assert!(
        check(host_answer(
            &host,
            &signed,
            &frame,
            ResponseCode::Approved,
            true,
            |answer| answer.mti = iso8583::Mti::parse("0410").unwrap()
        ))
        .unwrap_err()
        .contains("not 0210")
    );
}

#[test]
fn ids_and_amounts_out_of_range_are_refused() {
    assert!(Terminal::new("1000001", MERCHANT).is_err());
    assert!(Terminal::new("10000001", "89831005812000").is_err());
    let terminal = Terminal::new("10000001", MERCHANT).unwrap();
    let pan = Pan::new(PAN).unwrap();
    let sale = |amount_minor, batch| Sale {
        stan: stan(1),
        batch,
        amount_minor,
        currency: Currency::CNY,
        pan: &pan,
        field55: None,
        pin_block: None,
    };
    assert!(terminal.sale(&sale(0, 1)).is_err());
    assert!(terminal.sale(&sale(1_000_000_000_000, 1)).is_err());
    assert!(terminal.sale(&sale(1, 1_000_000)).is_err());
    let mut card = ChipCard::new(&key(IMK), pan.clone(), 1).unwrap();
    assert!(
        card.generate_arqc(&transaction(1_000_000_000_000)).is_err(),
        "9F02 has 12 digits"
    );
    assert_eq!(card.atc(), 0);
}

#[test]
fn a_supervisors_password_travels_in_field_63_and_the_hsm_checks_it_against_the_offset() {
    use terminal::transactions::{CardRead, CardRequest, Original, TransactionType};
    let host = host();
    let terminal = Terminal::new("10000001", MERCHANT).unwrap();
    let signed_on = sign_on(&host, &terminal);
    // Enrolled: the offset of supervisor 099's 135790, under the staff key.
    let pvk = host.hsm.generate_key(&KeySpec::pvk_ibm3624()).unwrap();
    let validation = acquirer::supervisor::validation_data(MERCHANT, "99").unwrap();
    let table = paycrypto::card::DecimalisationTable::DEFAULT;
    let offset = host
        .hsm
        .generate_pin_offset(&pvk, &validation, 'F', &table, &Pin::new("135790").unwrap())
        .unwrap();
    let pan = Pan::new(PAN).unwrap();
    let original = Original {
        batch: 1,
        stan: stan(7),
        rrn: Some("000000000007".into()),
        auth_code: None,
    };
    let field = |password: &str| {
        let account =
            Pan::new(&acquirer::supervisor::staff_account(MERCHANT, "99").unwrap()).unwrap();
        let block = signed_on
            .keys
            .pin_block(&Pin::new(password).unwrap(), &account)
            .unwrap();
        acquirer::supervisor::field63("99", &block).unwrap()
    };
    let request = |kind, supervisor: &str| {
        let message = terminal
            .card_request(&CardRequest {
                kind,
                stan: stan(8),
                batch: signed_on.batch,
                amount_minor: 1_000,
                currency: Currency::CNY,
                pan: &pan,
                read: CardRead::Number,
                pin_block: None,
                original: Some(&original),
                supervisor: Some(supervisor),
            })
            .unwrap();
        let frame = terminal.pack(&message).unwrap();
        terminal.profile().unpack(&frame).unwrap().into_owned()
    };
    let checks = |password: &str| {
        let void = request(TransactionType::Void, &field(password));
        let (operator, block) =
            acquirer::supervisor::parse_field63(&void.get(63).unwrap().to_text()).unwrap();
        assert_eq!(operator, "099");
        let account =
            Pan::new(&acquirer::supervisor::staff_account(MERCHANT, &operator).unwrap()).unwrap();
        let source = PinSource::Zone {
            key: &signed_on.pin_token,
            format: PinBlockFormat::Iso0,
        };
        let method = hsm::PinVerification::Ibm3624 {
            pvk: &pvk,
            validation_data: &validation,
            pad: 'F',
            table,
            offset: &offset,
        };
        host.hsm
            .verify_pin(&block, &source, &account, &method)
            .unwrap()
    };
    assert!(checks("135790"));
    assert!(!checks("135791"));
    // Only voids and refunds carry it.
    let refund = request(TransactionType::Refund, &field("135790"));
    assert!(refund.get(63).is_some());
    let sale = request(TransactionType::Sale, &field("135790"));
    assert!(sale.get(63).is_none());
}
