//! The demo world `easypos up` seeds on first start, so that every journey can be walked on a
//! fresh machine: an acquirer, a debit-card bank, a credit-card issuer and a mobile wallet;
//! two merchants (Shanghai with two terminals, Beijing with one) with staff; five cardholders
//! with debit and credit cards (one in USD), opening balances and credit limits.
//!
//! Everything is deterministic: ids come from fixed business keys, so seeding is idempotent
//! and the same on every machine. Card numbers are test numbers (fictitious BINs, valid Luhn);
//! only their first six and last four digits are stored.
//!
//! Chart of accounts (the `code` of each ledger account):
//!
//! | code | books | account |
//! | ---- | ----- | ------- |
//! | 1000 | bank / issuer | funding (the institution's own money) |
//! | 2100 | debit bank | cardholder deposit, one per debit card (cannot go negative) |
//! | 1200 | credit issuer | credit line, one per credit card (spending ≤ limit) |
//! | 3200 | credit issuer | limits granted (counterpart of the credit lines) |
//! | 2001 | acquirer | merchant payable, one per merchant |
//! | 1001 | acquirer | due from issuers (clearing) |
//! | 2200 | wallet | wallet balance, one per wallet |

use hsm::{Hsm, HsmError, KeySpec, KeyToken};
use ledger::{
    AccountId, AccountSpec, BalanceConstraint, InstitutionId, TransferId, TransferRequest,
};
use money::{Amount, Currency};
use paycrypto::Pan;
use std::collections::BTreeMap;
use store::cards::IssuerCard;
use store::directory::*;
use store::{Store, StoreError};

/// Stored under [`SEEDED_KEY`] once the demo world exists; bump when the world changes.
pub const DEMO_VERSION: &str = "demo-v1";
pub const SEEDED_KEY: &str = "demo_seeded";

pub const ACQUIRER: InstitutionId = InstitutionId(10);
pub const DEBIT_BANK: InstitutionId = InstitutionId(20);
pub const CREDIT_ISSUER: InstitutionId = InstitutionId(30);
pub const WALLET: InstitutionId = InstitutionId(40);

pub const CODE_FUNDING: u16 = 1000;
pub use acquirer::chart::CODE_DUE_FROM_ISSUERS;
pub const CODE_CREDIT_LINE: u16 = 1200;
pub const CODE_MERCHANT_PAYABLE: u16 = 2001;
pub const CODE_DEPOSIT: u16 = 2100;
pub const CODE_WALLET: u16 = 2200;
pub const CODE_LIMITS_GRANTED: u16 = 3200;
pub use acquirer::chart::CODE_ISSUER_SETTLEMENT;
/// Transfer code of opening balances and limits.
pub const CODE_OPENING: u16 = 1;

/// Major units to minor units of a two-decimal currency (all demo currencies have two).
const fn major(units: i64) -> i64 {
    units * 100
}

/// A demo card with its full test number, for simulators and tests. Never persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoCard {
    pub card: Card,
    pub pan: String,
    /// The card's PIN (a public test PIN, like the numbers).
    pub pin: &'static str,
    /// Opening balance (debit) or credit limit (credit), in minor units of the card currency.
    pub opening_minor: i64,
    /// The issuer's status of the card (`active`, `blocked` …).
    pub status: &'static str,
}

pub use acquirer::chart::{acquirer_due_from_issuers, issuer_settlement};

pub fn account_id(key: &str) -> AccountId {
    AccountId::from_key("demo-account", key.as_bytes())
}

fn funding(institution: InstitutionId, currency: Currency) -> AccountId {
    account_id(&format!("funding/{}/{}", institution.0, currency.alpha()))
}

/// Appends the Luhn check digit to `body`.
pub fn with_luhn(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

const CARDHOLDERS: [(&str, &str); 5] = [
    ("Li Lei", "李雷"),
    ("Han Meimei", "韩梅梅"),
    ("Zhang Wei", "张伟"),
    ("Chen Jing", "陈静"),
    ("Liu Yang", "刘洋"),
];

/// The demo cards: a CNY debit card for everyone, CNY credit cards for the first three, a
/// USD credit card for Chen Jing, and an expired and a blocked debit card for Liu Yang.
pub fn cards() -> Vec<DemoCard> {
    let mut out = Vec::new();
    for (index, _) in CARDHOLDERS.iter().enumerate() {
        let holder = format!("CH{:03}", index + 1);
        let debit_pan = with_luhn(&format!("621234{:09}", 100_000 + index));
        out.push(demo_card(
            &holder,
            "D",
            &debit_pan,
            DEBIT_BANK,
            CardProduct::Debit,
            Currency::CNY,
            [
                major(5_000),
                major(12_000),
                major(800),
                major(50_000),
                major(3_000),
            ][index],
        ));
        if index < 3 {
            let credit_pan = with_luhn(&format!("625678{:09}", 200_000 + index));
            out.push(demo_card(
                &holder,
                "C",
                &credit_pan,
                CREDIT_ISSUER,
                CardProduct::Credit,
                Currency::CNY,
                [major(20_000), major(50_000), major(10_000)][index],
            ));
        }
    }
    let usd_pan = with_luhn(&format!("625679{:09}", 300_003));
    out.push(demo_card(
        "CH004",
        "U",
        &usd_pan,
        CREDIT_ISSUER,
        CardProduct::Credit,
        Currency::USD,
        major(5_000),
    ));
    // Two debit cards of Liu Yang's that are refused, to show and test declines: one expired
    // in December 2023, one blocked by its bank.
    let mut expired = demo_card(
        "CH005",
        "X",
        &with_luhn(&format!("621234{:09}", 100_005)),
        DEBIT_BANK,
        CardProduct::Debit,
        Currency::CNY,
        major(1_000),
    );
    expired.card.expiry = "2312".to_owned();
    out.push(expired);
    let mut blocked = demo_card(
        "CH005",
        "B",
        &with_luhn(&format!("621234{:09}", 100_006)),
        DEBIT_BANK,
        CardProduct::Debit,
        Currency::CNY,
        major(1_000),
    );
    blocked.status = "blocked";
    out.push(blocked);
    out
}

/// A card of `holder`'s with id `card-{holder}-{kind}`: active, PIN [`DEMO_PIN`], expiring in
/// December 2030. The demo world's cards are made here, and so are the extra cards of load
/// generators (`bench`), which seed them with [`card_account`], [`opening_transfer`],
/// [`issuer_card`] and [`fingerprinted`] as [`seed`] does.
pub fn demo_card(
    holder: &str,
    kind: &str,
    pan: &str,
    issuer: InstitutionId,
    product: CardProduct,
    currency: Currency,
    opening_minor: i64,
) -> DemoCard {
    let id = format!("card-{holder}-{kind}");
    DemoCard {
        pin: DEMO_PIN,
        card: Card {
            id: id.clone(),
            cardholder_id: holder.to_owned(),
            issuer,
            product,
            pan_first6: pan[..6].to_owned(),
            pan_last4: pan[pan.len() - 4..].to_owned(),
            expiry: "3012".to_owned(),
            currency,
            account: account_id(&id),
            pan_fingerprint: None,
        },
        pan: pan.to_owned(),
        opening_minor,
        status: "active",
    }
}

/// The Shanghai coffee shop (two terminals) and the Beijing bookshop (one terminal).
pub const SHANGHAI_MERCHANT: &str = "898310058120001";
pub const BEIJING_MERCHANT: &str = "898110054110001";

pub fn directory() -> Directory {
    let institution = |id, kind, name: &str, name_zh: &str| Institution {
        id,
        kind,
        name: name.into(),
        name_zh: name_zh.into(),
    };
    let merchant = |id: &str, name: &str, name_zh: &str, city: &str, mcc: &str| Merchant {
        id: id.into(),
        acquirer: ACQUIRER,
        name: name.into(),
        name_zh: name_zh.into(),
        city: city.into(),
        mcc: mcc.into(),
        settlement_account: account_id(&format!("merchant/{id}")),
    };
    let terminal = |id: &str, merchant_id: &str| Terminal {
        id: id.into(),
        merchant_id: merchant_id.into(),
        status: "active".into(),
    };
    let staff = |merchant_id: &str, operator_no: &str, name: &str, role| Staff {
        merchant_id: merchant_id.into(),
        operator_no: operator_no.into(),
        name: name.into(),
        role,
    };
    Directory {
        institutions: vec![
            institution(
                ACQUIRER,
                InstitutionKind::Acquirer,
                "easypos Acquiring",
                "易POS收单",
            ),
            institution(
                DEBIT_BANK,
                InstitutionKind::DebitBank,
                "Huangpu Commercial Bank",
                "黄浦商业银行",
            ),
            institution(
                CREDIT_ISSUER,
                InstitutionKind::CreditIssuer,
                "Yangtze Credit Card Centre",
                "长江信用卡中心",
            ),
            institution(WALLET, InstitutionKind::Wallet, "Panda Pay", "熊猫支付"),
        ],
        merchants: vec![
            merchant(
                SHANGHAI_MERCHANT,
                "Lujiazui Coffee",
                "陆家嘴咖啡",
                "Shanghai",
                "5814",
            ),
            merchant(
                BEIJING_MERCHANT,
                "Wangfujing Books",
                "王府井书店",
                "Beijing",
                "5942",
            ),
        ],
        terminals: vec![
            terminal("10000001", SHANGHAI_MERCHANT),
            terminal("10000002", SHANGHAI_MERCHANT),
            terminal(DUKPT_TERMINAL, SHANGHAI_MERCHANT),
            terminal(TDES_DUKPT_TERMINAL, SHANGHAI_MERCHANT),
            terminal("20000001", BEIJING_MERCHANT),
        ],
        staff: vec![
            staff(SHANGHAI_MERCHANT, "01", "Wang Fang", StaffRole::Cashier),
            staff(SHANGHAI_MERCHANT, "02", "Zhao Lei", StaffRole::Cashier),
            staff(SHANGHAI_MERCHANT, "99", "Sun Li", StaffRole::Supervisor),
            staff(SHANGHAI_MERCHANT, "00", "Zhou Min", StaffRole::Manager),
            staff(BEIJING_MERCHANT, "01", "Ma Jun", StaffRole::Cashier),
            staff(BEIJING_MERCHANT, "99", "Guo Hua", StaffRole::Supervisor),
        ],
        cardholders: CARDHOLDERS
            .iter()
            .enumerate()
            .map(|(index, (name, name_zh))| Cardholder {
                id: format!("CH{:03}", index + 1),
                name: (*name).into(),
                name_zh: (*name_zh).into(),
            })
            .collect(),
        cards: cards().into_iter().map(|demo| demo.card).collect(),
    }
}

/// Every ledger account of the demo world.
pub fn accounts() -> Vec<AccountSpec> {
    let mut specs = vec![
        AccountSpec::new(
            funding(DEBIT_BANK, Currency::CNY),
            DEBIT_BANK,
            Currency::CNY,
            CODE_FUNDING,
        ),
        AccountSpec::new(
            funding(CREDIT_ISSUER, Currency::CNY),
            CREDIT_ISSUER,
            Currency::CNY,
            CODE_LIMITS_GRANTED,
        ),
        AccountSpec::new(
            funding(CREDIT_ISSUER, Currency::USD),
            CREDIT_ISSUER,
            Currency::USD,
            CODE_LIMITS_GRANTED,
        ),
        AccountSpec::new(
            funding(WALLET, Currency::CNY),
            WALLET,
            Currency::CNY,
            CODE_FUNDING,
        ),
        AccountSpec::new(
            issuer_settlement(DEBIT_BANK, Currency::CNY),
            DEBIT_BANK,
            Currency::CNY,
            CODE_ISSUER_SETTLEMENT,
        ),
        AccountSpec::new(
            issuer_settlement(CREDIT_ISSUER, Currency::CNY),
            CREDIT_ISSUER,
            Currency::CNY,
            CODE_ISSUER_SETTLEMENT,
        ),
        AccountSpec::new(
            issuer_settlement(CREDIT_ISSUER, Currency::USD),
            CREDIT_ISSUER,
            Currency::USD,
            CODE_ISSUER_SETTLEMENT,
        ),
        AccountSpec::new(
            acquirer_due_from_issuers(ACQUIRER, Currency::CNY),
            ACQUIRER,
            Currency::CNY,
            CODE_DUE_FROM_ISSUERS,
        ),
    ];
    let (marks_debit, marks_credit) = acquirer::chart::reversal_marks(ACQUIRER, Currency::CNY);
    specs.push(AccountSpec::new(
        marks_debit,
        ACQUIRER,
        Currency::CNY,
        acquirer::chart::CODE_REVERSAL_MARKS,
    ));
    specs.push(AccountSpec::new(
        marks_credit,
        ACQUIRER,
        Currency::CNY,
        acquirer::chart::CODE_REVERSAL_MARKS,
    ));
    for merchant in directory().merchants {
        specs.push(AccountSpec::new(
            merchant.settlement_account,
            ACQUIRER,
            Currency::CNY,
            CODE_MERCHANT_PAYABLE,
        ));
    }
    specs.extend(cards().iter().map(|demo| card_account(&demo.card)));
    specs
}

/// The ledger account behind a card: a deposit that cannot go negative (debit) or a credit
/// line whose spending cannot pass its limit (credit).
pub fn card_account(card: &Card) -> AccountSpec {
    match card.product {
        CardProduct::Debit => {
            AccountSpec::new(card.account, card.issuer, card.currency, CODE_DEPOSIT)
                .constraint(BalanceConstraint::DebitsMustNotExceedCredits)
        }
        CardProduct::Credit => {
            AccountSpec::new(card.account, card.issuer, card.currency, CODE_CREDIT_LINE)
                .constraint(BalanceConstraint::CreditsMustNotExceedDebits)
        }
    }
}

/// Opening balances of debit cards and limits of credit cards.
pub fn opening_transfers() -> Vec<TransferRequest> {
    cards().iter().map(opening_transfer).collect()
}

/// A card's opening balance (debit) or credit limit (credit), from its issuer's funding, with
/// an id from the card's id (so seeding twice posts once).
pub fn opening_transfer(demo: &DemoCard) -> TransferRequest {
    let card = &demo.card;
    let id = TransferId::from_key("demo-opening", card.id.as_bytes());
    let amount = Amount::new(demo.opening_minor, card.currency);
    let source = funding(card.issuer, card.currency);
    let request = match card.product {
        CardProduct::Debit => TransferRequest::posted(id, source, card.account, amount),
        // A limit is granted by debiting the line: spending (credits) may not exceed it.
        CardProduct::Credit => TransferRequest::posted(id, card.account, source, amount),
    };
    request.code(CODE_OPENING)
}

/// Name of a terminal's master key in `hsm_keys`.
pub fn terminal_master_key_name(terminal_id: &str) -> String {
    format!("terminal/{terminal_id}/tmk")
}

/// The demo terminals on master/session (all but [`DUKPT_TERMINAL`] and
/// [`TDES_DUKPT_TERMINAL`]), by id.
fn master_session_terminals() -> impl Iterator<Item = String> {
    directory()
        .terminals
        .into_iter()
        .map(|terminal| terminal.id)
        .filter(|id| dukpt_initial_ksn(id).is_none())
}

/// The demo terminal on AES DUKPT (X9.24-3): its PIN pad holds an initial key derived from the
/// demo DUKPT base key ([`demo_bdk_name`]) for its initial KSN ([`dukpt_initial_ksn`]).
pub const DUKPT_TERMINAL: &str = "10000003";

/// Name of the demo's AES DUKPT base derivation key (AES-128) in `hsm_keys`. A published test
/// key ([`demo_test_key`]), like the demo terminal master keys: it lets `easypos terminal init
/// --demo` load the demo PIN pad's initial key, as a key-injection facility would.
pub fn demo_bdk_name() -> String {
    format!("acquirer/{}/demo-bdk-aes128", ACQUIRER.0)
}

/// The demo terminal on TDES DUKPT (ANSI X9.24-1:2009): its PIN pad holds an initial PIN
/// encryption key (IPEK) derived from the demo TDES base key ([`demo_tdes_bdk_name`]) for its
/// initial KSN ([`dukpt_initial_ksn`]).
pub const TDES_DUKPT_TERMINAL: &str = "10000004";

/// Name of the demo's TDES DUKPT base derivation key (double-length) in `hsm_keys`: a
/// published test key ([`demo_test_key`]), as [`demo_bdk_name`] is for AES.
pub fn demo_tdes_bdk_name() -> String {
    format!("acquirer/{}/demo-bdk-tdes", ACQUIRER.0)
}

/// The key scheme of a demo terminal, as `terminal_sessions.key_scheme` spells it.
pub fn key_scheme(terminal_id: &str) -> &'static str {
    match terminal_id {
        DUKPT_TERMINAL => "dukpt-aes",
        TDES_DUKPT_TERMINAL => "dukpt-tdes",
        _ => "master-session",
    }
}

/// The initial KSN of a demo DUKPT terminal, in hex: AES (24 digits) BDK id 45500001, the
/// terminal id as derivation id, counter 0; TDES (20 digits) key set 455002, the terminal id,
/// counter 0 (the rightmost 21 bits). `None` for a master/session terminal.
pub fn dukpt_initial_ksn(terminal_id: &str) -> Option<String> {
    match terminal_id {
        DUKPT_TERMINAL => Some(format!("45500001{terminal_id}00000000")),
        TDES_DUKPT_TERMINAL => Some(format!("455002{terminal_id}000000")),
        _ => None,
    }
}

/// Hex digits to bytes (the demo's own KSN strings).
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// The initial key a demo AES DUKPT terminal's PIN pad is loaded with: derived (X9.24-3) from
/// the published demo base key for the terminal's initial key id. `None` for others.
pub fn demo_dukpt_initial_key(terminal_id: &str) -> Option<paycrypto::AesKey> {
    use paycrypto::dukpt::aes as aes_dukpt;
    if key_scheme(terminal_id) != "dukpt-aes" {
        return None;
    }
    let ksn = hex_bytes(&dukpt_initial_ksn(terminal_id)?)?;
    let bdk = paycrypto::AesKey::new(&demo_test_key(&demo_bdk_name())?).ok()?;
    let ksn = aes_dukpt::Ksn::new(&ksn).ok()?;
    aes_dukpt::initial_key(&bdk, &ksn.initial_key_id()).ok()
}

/// The IPEK a demo TDES DUKPT terminal's PIN pad is loaded with: derived (X9.24-1) from the
/// published demo TDES base key for the terminal's initial KSN. `None` for others.
pub fn demo_tdes_dukpt_ipek(terminal_id: &str) -> Option<paycrypto::TdesKey> {
    use paycrypto::dukpt::tdes;
    if key_scheme(terminal_id) != "dukpt-tdes" {
        return None;
    }
    let ksn = tdes::Ksn::new(&hex_bytes(&dukpt_initial_ksn(terminal_id)?)?).ok()?;
    let bdk = paycrypto::TdesKey::new(&demo_test_key(&demo_tdes_bdk_name())?).ok()?;
    tdes::derive_ipek(&bdk, &ksn).ok()
}

/// Every demo terminal, batch 1, not yet signed on: [`DUKPT_TERMINAL`] on AES DUKPT,
/// [`TDES_DUKPT_TERMINAL`] on TDES DUKPT, the others on master/session.
pub fn terminal_sessions() -> Vec<TerminalSession> {
    directory()
        .terminals
        .iter()
        .map(|terminal| terminal_session(&terminal.id))
        .collect()
}

/// A terminal on the master/session scheme, its master key named by
/// [`terminal_master_key_name`], batch 1, not yet signed on.
pub fn terminal_session(terminal_id: &str) -> TerminalSession {
    if let Some(initial_ksn) = dukpt_initial_ksn(terminal_id) {
        let scheme = key_scheme(terminal_id);
        return TerminalSession {
            tmk_key: if scheme == "dukpt-tdes" {
                demo_tdes_bdk_name()
            } else {
                demo_bdk_name()
            },
            terminal_id: terminal_id.to_owned(),
            key_scheme: scheme.into(),
            pin_key: None,
            mac_key: None,
            batch: 1,
            operator: None,
            signed_on_at: None,
            initial_ksn: Some(initial_ksn),
            ksn_counter: 0,
        };
    }
    TerminalSession {
        tmk_key: terminal_master_key_name(terminal_id),
        terminal_id: terminal_id.to_owned(),
        key_scheme: "master-session".into(),
        pin_key: None,
        mac_key: None,
        batch: 1,
        operator: None,
        signed_on_at: None,
        initial_ksn: None,
        ksn_counter: 0,
    }
}

/// Every demo card's PIN: six digits, as Chinese bank cards have.
pub const DEMO_PIN: &str = "123456";
/// Daily spending limit of the demo debit cards, in fen (20 000.00 CNY).
pub const DEBIT_DAILY_LIMIT_MINOR: i64 = 2_000_000;
/// The EMV cryptogram version of the demo cards' chips (Visa CVN 18 key derivation and ARPC).
pub const DEMO_CRYPTOGRAM_VERSION: i64 = 18;
/// The PIN verification key index of the demo cards' PVVs.
pub const DEMO_PVKI: u8 = 1;

/// The issuer's profile of every demo card: its status (active but for one blocked card), service
/// code 201 (chip, international), PIN by Visa PVV made inside the HSM, daily limits on debit
/// cards.
pub fn issuer_cards(
    hsm: &dyn Hsm,
    keys: &BTreeMap<String, KeyToken>,
) -> Result<Vec<IssuerCard>, DemoError> {
    cards()
        .iter()
        .map(|demo| issuer_card(hsm, keys, demo))
        .collect()
}

/// The issuer's profile of one card, as [`issuer_cards`] makes it for the demo cards: its
/// PVV is made inside the HSM under its issuer's PVK (`issuer/{id}/pvk` in `keys`).
pub fn issuer_card(
    hsm: &dyn Hsm,
    keys: &BTreeMap<String, KeyToken>,
    demo: &DemoCard,
) -> Result<IssuerCard, DemoError> {
    let name = format!("issuer/{}/pvk", demo.card.issuer.0);
    let pvk = keys
        .get(&name)
        .ok_or_else(|| DemoError::Refused(format!("key {name} missing")))?;
    let pan = Pan::new(&demo.pan).map_err(|error| DemoError::Refused(error.to_string()))?;
    let pin =
        paycrypto::Pin::new(demo.pin).map_err(|error| DemoError::Refused(error.to_string()))?;
    Ok(IssuerCard {
        card_id: demo.card.id.clone(),
        status: demo.status.into(),
        service_code: "201".into(),
        pin_method: Some("visa-pvv".into()),
        pin_key_index: Some(i64::from(DEMO_PVKI)),
        pin_reference: Some(hsm.generate_pvv(pvk, &pan, DEMO_PVKI, &pin)?),
        cryptogram_version: DEMO_CRYPTOGRAM_VERSION,
        daily_limit_minor: (demo.card.product == CardProduct::Debit)
            .then_some(DEBIT_DAILY_LIMIT_MINOR),
        pin_failures: 0,
        last_atc: None,
        spent_minor: 0,
        spent_on: None,
    })
}

/// What [`seed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeded {
    Now,
    Already,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("HSM: {0}")]
    Hsm(#[from] HsmError),
    #[error("the demo world was refused: {0}")]
    Refused(String),
}

/// The key that fingerprints card numbers for lookup.
pub const PAN_FINGERPRINT_KEY: &str = "platform/pan-fingerprint";

/// Every key the demo world needs, by name: the card-number fingerprint key; for each card
/// issuer its CVV key, PVV key, EMV issuer master key and the PIN zone key it shares with the
/// switch; for the acquirer the base derivation keys of its AES and TDES DUKPT terminals.
pub fn key_specs() -> Vec<(String, KeySpec)> {
    let mut specs = vec![
        (PAN_FINGERPRINT_KEY.to_owned(), KeySpec::pan_fingerprint()),
        (
            format!("acquirer/{}/bdk-aes128", ACQUIRER.0),
            KeySpec::bdk_aes(16),
        ),
        (
            format!("acquirer/{}/bdk-tdes", ACQUIRER.0),
            KeySpec::bdk_tdes(),
        ),
    ];
    specs.push((demo_bdk_name(), KeySpec::bdk_aes(16)));
    specs.push((demo_tdes_bdk_name(), KeySpec::bdk_tdes()));
    // A DUKPT terminal has no master key: its keys come from the base key.
    for terminal in master_session_terminals() {
        specs.push((
            terminal_master_key_name(&terminal),
            KeySpec::terminal_master_key(),
        ));
    }
    for issuer in [DEBIT_BANK, CREDIT_ISSUER] {
        specs.push((format!("issuer/{}/cvk", issuer.0), KeySpec::cvk()));
        specs.push((format!("issuer/{}/pvk", issuer.0), KeySpec::pvk_visa()));
        specs.push((
            format!("issuer/{}/imk-ac", issuer.0),
            KeySpec::issuer_master_key(),
        ));
        specs.push((format!("issuer/{}/zpk", issuer.0), KeySpec::pin_zone_tdes()));
    }
    specs
}

/// The demo's published test keys: the keys a terminal or card simulator must hold in clear to
/// play the demo world — each demo terminal's master key and each demo issuer's EMV issuer
/// master key and CVV key, and the demo AES and TDES DUKPT base keys ([`demo_bdk_name`],
/// [`demo_tdes_bdk_name`]). Like the demo PIN, they are public: the first 16 bytes of SHA-256 of `easypos-demo-test-key/<name>`.
/// Every other key (zone keys, PVV keys, the fingerprint key, the acquirer's own DUKPT base
/// keys) is generated inside the HSM. Never put real cards in a
/// demo world.
pub fn demo_test_key(name: &str) -> Option<Vec<u8>> {
    use sha2::Digest;
    let published = master_session_terminals()
        .any(|terminal| terminal_master_key_name(&terminal) == name)
        || name == demo_bdk_name()
        || name == demo_tdes_bdk_name()
        || [DEBIT_BANK, CREDIT_ISSUER].iter().any(|issuer| {
            name == format!("issuer/{}/imk-ac", issuer.0)
                || name == format!("issuer/{}/cvk", issuer.0)
        });
    published.then(|| {
        sha2::Sha256::digest(format!("easypos-demo-test-key/{name}").as_bytes())[..16].to_vec()
    })
}

/// Makes sure every key of [`key_specs`] exists: generates the missing ones inside the HSM (or
/// imports the [`demo_test_key`] of that name) and stores their tokens. Keys that exist are kept (a restart never changes a key). Returns all
/// keys by name.
pub async fn ensure_keys(
    store: &Store,
    hsm: &dyn Hsm,
) -> Result<BTreeMap<String, KeyToken>, DemoError> {
    let existing: BTreeMap<String, StoredKey> = store
        .keys()
        .await?
        .into_iter()
        .map(|key| (key.name.clone(), key))
        .collect();
    let mut new = Vec::new();
    for (name, spec) in key_specs() {
        if !existing.contains_key(&name) {
            let token = match demo_test_key(&name) {
                Some(key) => hsm.import_clear_key(&spec, &key)?,
                None => hsm.generate_key(&spec)?,
            };
            let check_value = paycrypto::to_hex(&hsm.key_check_value(&token)?);
            new.push(StoredKey {
                name,
                token: token.as_str().to_owned(),
                check_value,
            });
        }
    }
    if !new.is_empty() {
        store.put_keys(new).await?;
    }
    Ok(store
        .keys()
        .await?
        .into_iter()
        .map(|key| (key.name, KeyToken::new(key.token)))
        .collect())
}

/// The demo cards' fingerprints under the platform's fingerprint key.
fn fingerprinted_cards(hsm: &dyn Hsm, key: &KeyToken) -> Result<Vec<Card>, DemoError> {
    cards()
        .into_iter()
        .map(|demo| fingerprinted(hsm, key, demo))
        .collect()
}

/// A card's directory record with its number's fingerprint under `key` (the platform's
/// [`PAN_FINGERPRINT_KEY`]), so the host can find it by number.
pub fn fingerprinted(hsm: &dyn Hsm, key: &KeyToken, demo: DemoCard) -> Result<Card, DemoError> {
    let pan = Pan::new(&demo.pan).map_err(|error| DemoError::Refused(error.to_string()))?;
    Ok(Card {
        pan_fingerprint: Some(hsm.pan_fingerprint(key, &pan)?),
        ..demo.card
    })
}

/// The password of every demo console and API user (printed by `easypos up`); like the demo
/// PIN, it is published, so never put real data in a demo world.
pub const DEMO_PASSWORD: &str = "easypos-demo-2026";

/// The channel partner that referred the Beijing merchant.
pub const DEMO_PARTNER: &str = "P001";

/// One demo user per role (two merchant admins and two cardholders, to show tenants apart):
/// (user name, display name, role, tenant).
pub fn demo_users() -> Vec<(
    &'static str,
    &'static str,
    store::accounts::Role,
    store::accounts::Tenant,
)> {
    use store::accounts::{Role, Tenant};
    let merchant = |id: &str| Tenant::Merchant(id.to_owned());
    vec![
        (
            "operator",
            "Platform Operator",
            Role::PlatformOperator,
            Tenant::Institution(ACQUIRER),
        ),
        (
            "bank",
            "Huangpu Bank Operator",
            Role::IssuerOperator,
            Tenant::Institution(DEBIT_BANK),
        ),
        (
            "wallet",
            "Panda Pay Operator",
            Role::WalletOperator,
            Tenant::Institution(WALLET),
        ),
        (
            "shanghai.admin",
            "Zhou Min",
            Role::MerchantAdmin,
            merchant(SHANGHAI_MERCHANT),
        ),
        (
            "shanghai.manager",
            "Sun Li",
            Role::MerchantManager,
            merchant(SHANGHAI_MERCHANT),
        ),
        (
            "shanghai.cashier",
            "Wang Fang",
            Role::Cashier,
            merchant(SHANGHAI_MERCHANT),
        ),
        (
            "beijing.admin",
            "Guo Hua",
            Role::MerchantAdmin,
            merchant(BEIJING_MERCHANT),
        ),
        (
            "cardholder1",
            "Li Lei",
            Role::Cardholder,
            Tenant::Cardholder("CH001".into()),
        ),
        (
            "cardholder2",
            "Han Meimei",
            Role::Cardholder,
            Tenant::Cardholder("CH002".into()),
        ),
        (
            "partner",
            "Channel Partner P001",
            Role::ChannelPartner,
            Tenant::Partner(DEMO_PARTNER.into()),
        ),
    ]
}

/// Creates the demo users that do not exist yet (a user keeps its password once created) and
/// the partner's referral.
pub async fn seed_users(store: &Store) -> Result<(), DemoError> {
    let mut missing = Vec::new();
    for (username, display_name, role, tenant) in demo_users() {
        if store.user_by_username(username).await?.is_none() {
            let id = format!("demo-{username}");
            missing.push(
                store::accounts::NewUser::new(
                    &id,
                    username,
                    display_name,
                    role,
                    tenant,
                    DEMO_PASSWORD,
                    0,
                )
                .map_err(|error| DemoError::Refused(format!("demo user {username}: {error}")))?,
            );
        }
    }
    store.put_users(missing).await?;
    store
        .put_referrals(vec![store::accounts::Referral {
            partner_id: DEMO_PARTNER.into(),
            merchant_id: BEIJING_MERCHANT.into(),
        }])
        .await?;
    Ok(())
}

/// Seeds the demo world unless it is there already, and on every start makes sure its keys
/// exist and its cards can be found by number. Safe to run twice: every record, key and
/// transfer is idempotent by its id or name.
pub async fn seed(store: &Store, hsm: &dyn Hsm) -> Result<Seeded, DemoError> {
    let keys = ensure_keys(store, hsm).await?;
    let fingerprint_key = keys
        .get(PAN_FINGERPRINT_KEY)
        .ok_or_else(|| DemoError::Refused(format!("key {PAN_FINGERPRINT_KEY} missing")))?;
    let directory = Directory {
        cards: fingerprinted_cards(hsm, fingerprint_key)?,
        ..directory()
    };
    let profiles = issuer_cards(hsm, &keys)?;
    if store.meta(SEEDED_KEY).await?.is_some() {
        // Cards seeded before fingerprints and issuer profiles existed get them; a card that
        // has them keeps its own. Terminals added to the demo world since (10000003 on AES
        // DUKPT, 10000004 on TDES DUKPT) join it; existing ones are kept as they are.
        store
            .put_directory(Directory {
                cards: directory.cards,
                terminals: directory.terminals,
                ..Directory::default()
            })
            .await?;
        store.put_issuer_cards(profiles).await?;
        store.put_terminal_sessions(terminal_sessions()).await?;
        // Accounts added to the demo world since it was seeded (idempotent by id).
        store.create_accounts(accounts()).await?;
        seed_users(store).await?;
        return Ok(Seeded::Already);
    }
    store.put_directory(directory).await?;
    store.put_issuer_cards(profiles).await?;
    store.put_terminal_sessions(terminal_sessions()).await?;
    let refused: Vec<String> = store
        .create_accounts(accounts())
        .await?
        .into_iter()
        .filter_map(|result| result.err().map(|error| error.to_string()))
        .collect();
    if let Some(error) = refused.first() {
        return Err(DemoError::Refused(format!("demo account: {error}")));
    }
    let refused: Vec<String> = store
        .submit(opening_transfers())
        .await?
        .into_iter()
        .filter_map(|result| result.err().map(|error| error.to_string()))
        .collect();
    if let Some(error) = refused.first() {
        return Err(DemoError::Refused(format!("demo opening balance: {error}")));
    }
    seed_users(store).await?;
    store.set_meta(SEEDED_KEY, DEMO_VERSION).await?;
    Ok(Seeded::Now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_card_numbers_pass_luhn_and_are_unique() {
        // 79927398713 is the classic Luhn example (ISO/IEC 7812-1 Annex B).
        assert_eq!(with_luhn("7992739871"), "79927398713");
        let cards = cards();
        assert_eq!(cards.len(), 11);
        let mut pans: Vec<&str> = cards.iter().map(|card| card.pan.as_str()).collect();
        pans.sort_unstable();
        pans.dedup();
        assert_eq!(pans.len(), 11);
        assert!(cards.iter().any(|card| card.card.currency == Currency::USD));
        for card in &cards {
            assert_eq!(card.pan.len(), 16);
            assert_eq!(
                card.card.masked_pan(),
                format!("{}******{}", &card.pan[..6], &card.pan[12..])
            );
        }
    }

    #[test]
    fn an_extra_card_and_terminal_are_made_as_the_demo_ones_are() {
        let pan = with_luhn("621234500000000");
        let extra = demo_card(
            "CH001",
            "L0",
            &pan,
            DEBIT_BANK,
            CardProduct::Debit,
            Currency::CNY,
            major(1_000),
        );
        assert_eq!(extra.card.id, "card-CH001-L0");
        assert_eq!(extra.card.account, account_id("card-CH001-L0"));
        assert_eq!(
            card_account(&extra.card),
            AccountSpec::new(extra.card.account, DEBIT_BANK, Currency::CNY, CODE_DEPOSIT)
                .constraint(BalanceConstraint::DebitsMustNotExceedCredits)
        );
        assert_eq!(
            opening_transfer(&extra),
            TransferRequest::posted(
                TransferId::from_key("demo-opening", b"card-CH001-L0"),
                funding(DEBIT_BANK, Currency::CNY),
                extra.card.account,
                Amount::new(100_000, Currency::CNY),
            )
            .code(CODE_OPENING)
        );
        let session = terminal_session("30000001");
        assert_eq!(
            (session.tmk_key.as_str(), session.batch, session.mac_key),
            ("terminal/30000001/tmk", 1, None)
        );
        assert_eq!(terminal_sessions()[0], terminal_session("10000001"));
    }

    #[test]
    fn the_dukpt_terminal_s_initial_key_comes_from_the_published_base_key() {
        let session = terminal_session(DUKPT_TERMINAL);
        assert_eq!(
            (
                session.key_scheme.as_str(),
                session.tmk_key,
                session.initial_ksn
            ),
            (
                "dukpt-aes",
                demo_bdk_name(),
                Some(format!("45500001{DUKPT_TERMINAL}00000000"))
            )
        );
        let bdk = paycrypto::AesKey::new(&demo_test_key(&demo_bdk_name()).unwrap()).unwrap();
        let id = [0x45, 0x50, 0x00, 0x01, 0x10, 0x00, 0x00, 0x03];
        let expected = paycrypto::dukpt::aes::initial_key(&bdk, &id).unwrap();
        assert_eq!(
            demo_dukpt_initial_key(DUKPT_TERMINAL).unwrap().expose(),
            expected.expose()
        );
        assert!(demo_dukpt_initial_key("10000001").is_none());
        assert!(demo_dukpt_initial_key(TDES_DUKPT_TERMINAL).is_none());
        assert_eq!(terminal_session("10000001").key_scheme, "master-session");
    }

    #[test]
    fn the_tdes_dukpt_terminal_s_ipek_comes_from_the_published_tdes_base_key() {
        let session = terminal_session(TDES_DUKPT_TERMINAL);
        assert_eq!(
            (
                session.key_scheme.as_str(),
                session.tmk_key,
                session.initial_ksn
            ),
            (
                "dukpt-tdes",
                demo_tdes_bdk_name(),
                Some("45500210000004000000".to_owned())
            )
        );
        let bdk = paycrypto::TdesKey::new(&demo_test_key(&demo_tdes_bdk_name()).unwrap()).unwrap();
        let ksn = paycrypto::dukpt::tdes::Ksn::new(&[
            0x45, 0x50, 0x02, 0x10, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
        ])
        .unwrap();
        assert_eq!(ksn.counter(), 0);
        let expected = paycrypto::dukpt::tdes::derive_ipek(&bdk, &ksn).unwrap();
        assert_eq!(
            demo_tdes_dukpt_ipek(TDES_DUKPT_TERMINAL).unwrap().expose(),
            expected.expose()
        );
        assert!(demo_tdes_dukpt_ipek(DUKPT_TERMINAL).is_none());
        assert!(demo_test_key(&terminal_master_key_name(TDES_DUKPT_TERMINAL)).is_none());
    }

    #[test]
    fn the_world_has_what_the_journeys_need() {
        let world = directory();
        assert_eq!(world.institutions.len(), 4);
        assert_eq!(world.merchants.len(), 2);
        let shanghai_terminals = world
            .terminals
            .iter()
            .filter(|terminal| terminal.merchant_id == "898310058120001")
            .count();
        assert_eq!((shanghai_terminals, world.terminals.len()), (4, 5));
        assert_eq!(world.cardholders.len(), 5);
        assert!(
            world
                .staff
                .iter()
                .any(|staff| staff.role == StaffRole::Supervisor)
        );
        let ids: std::collections::HashSet<_> = accounts().iter().map(|spec| spec.id).collect();
        assert_eq!(ids.len(), accounts().len(), "account ids are distinct");
    }
}
