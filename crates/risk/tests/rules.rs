#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Each rule fires in one case and stays quiet in a close one; configuration errors name their
//! setting; memory stays within its caps.

use money::Currency;
use risk::{Action, Authorization, Config, ConfigError, Engine, Entry, Kind, Outcome, Verdict};

/// 2027-01-15 12:00:00 China time (04:00 UTC).
const NOON_MS: i64 = 1_800_000_000_000 - (1_800_000_000_000 % 86_400_000) + 4 * 3_600_000;

fn cny() -> Currency {
    Currency::parse("CNY").unwrap()
}

fn engine(rule: &str) -> Engine {
    Engine::new(Config::from_toml(&format!("[[rule]]\nname = \"r\"\n{rule}")).unwrap())
}

fn sale(card: &str) -> Authorization<'_> {
    Authorization {
        kind: Kind::Sale,
        card,
        terminal: "10000001",
        merchant: "898310058120001",
        amount_minor: 1000,
        currency: cny(),
        card_currency: cny(),
        mcc: 5411,
        entry: Entry::Chip,
        chip_card: true,
    }
}

fn approved(engine: &Engine, authorization: &Authorization<'_>, now_ms: i64) {
    engine.evaluate(authorization, now_ms);
    record(engine, authorization, now_ms, true, false);
}

fn record(engine: &Engine, a: &Authorization<'_>, now_ms: i64, approved: bool, wrong_pin: bool) {
    engine.record(
        &Outcome {
            kind: a.kind,
            card: a.card,
            terminal: a.terminal,
            merchant: a.merchant,
            amount_minor: a.amount_minor,
            approved,
            wrong_pin,
        },
        now_ms,
    );
}

fn fires(engine: &Engine, authorization: &Authorization<'_>, now_ms: i64) -> bool {
    let assessment = engine.evaluate(authorization, now_ms);
    !assessment.fired.is_empty()
}

const DECLINE_65: &str = "action = \"decline\"\nresponse_code = \"65\"\nscore = 40\n";

#[test]
fn card_velocity_declines_the_fourth_sale_in_the_window_and_not_after_it() {
    let engine = engine(&format!(
        "kind = \"velocity\"\nscope = \"card\"\nwindow_secs = 60\nmax_count = 3\n{DECLINE_65}"
    ));
    for second in 0..3 {
        assert!(!fires(&engine, &sale("a"), NOON_MS + second * 1000));
    }
    let fourth = engine.evaluate(&sale("a"), NOON_MS + 3000);
    assert_eq!(fourth.decline_code().unwrap().as_str(), "65");
    assert_eq!(fourth.score, 40);
    assert!(
        fourth.fired[0]
            .reason
            .contains("4 authorizations on the card"),
        "{}",
        fourth.summary()
    );
    // Another card is not counted, and the window slides.
    assert!(!fires(&engine, &sale("b"), NOON_MS + 3000));
    assert!(!fires(&engine, &sale("a"), NOON_MS + 63_500));
}

#[test]
fn terminal_and_merchant_velocity_count_every_card() {
    let terminal = engine(&format!(
        "kind = \"velocity\"\nscope = \"terminal\"\nwindow_secs = 60\nmax_count = 2\n{DECLINE_65}"
    ));
    assert!(!fires(&terminal, &sale("a"), NOON_MS));
    assert!(!fires(&terminal, &sale("b"), NOON_MS));
    let mut other_terminal = sale("c");
    other_terminal.terminal = "10000002";
    assert!(!fires(&terminal, &other_terminal, NOON_MS));
    assert!(fires(&terminal, &sale("c"), NOON_MS));

    let merchant = engine(&format!(
        "kind = \"velocity\"\nscope = \"merchant\"\nwindow_secs = 60\nmax_amount_minor = 2500\n{DECLINE_65}"
    ));
    assert!(!fires(&merchant, &sale("a"), NOON_MS));
    assert!(!fires(&merchant, &sale("b"), NOON_MS));
    assert!(fires(&merchant, &sale("c"), NOON_MS));
}

#[test]
fn amount_far_above_the_cards_history() {
    let engine = engine(
        "kind = \"amount_anomaly\"\nwindow_secs = 86400\nmin_history = 3\nfactor_percent = 500\naction = \"review\"\nscore = 30",
    );
    let mut big = sale("a");
    big.amount_minor = 6000;
    // Not enough history yet.
    assert!(!fires(&engine, &big, NOON_MS));
    for minute in 1..=3 {
        approved(&engine, &sale("a"), NOON_MS + minute * 60_000);
    }
    let mut fine = sale("a");
    fine.amount_minor = 5000;
    assert!(!fires(&engine, &fine, NOON_MS + 600_000));
    let assessment = engine.evaluate(&big, NOON_MS + 600_000);
    assert_eq!(assessment.verdict, Verdict::Review);
    assert!(
        assessment.fired[0].reason.contains("average 1000"),
        "{}",
        assessment.summary()
    );
}

#[test]
fn card_testing_many_cards_small_or_declined_at_one_terminal() {
    let engine = engine(&format!(
        "kind = \"card_testing\"\nwindow_secs = 600\ndistinct_cards = 3\nsmall_amount_minor = 100\n{DECLINE_65}"
    ));
    let mut small = sale("a");
    small.amount_minor = 1;
    assert!(!fires(&engine, &small, NOON_MS));
    // A declined normal-size sale on a second card counts too.
    let declined = sale("b");
    engine.evaluate(&declined, NOON_MS + 1);
    record(&engine, &declined, NOON_MS + 1, false, false);
    // A normal sale on a third card is not itself testing.
    assert!(!fires(&engine, &sale("c"), NOON_MS + 2));
    let mut third = small;
    third.card = "d";
    let assessment = engine.evaluate(&third, NOON_MS + 3);
    assert_eq!(
        assessment.decline_code().unwrap().as_str(),
        "65",
        "{assessment:?}"
    );
    // Elsewhere, or later, it does not fire.
    let mut elsewhere = third;
    elsewhere.terminal = "10000002";
    elsewhere.card = "e";
    assert!(!fires(&engine, &elsewhere, NOON_MS + 4));
    let mut later = third;
    later.card = "f";
    assert!(!fires(&engine, &later, NOON_MS + 700_000));
}

#[test]
fn a_new_card_with_a_high_amount() {
    let engine = engine(
        "kind = \"new_card\"\nwindow_secs = 86400\nmin_amount_minor = 50000\naction = \"review\"\nscore = 20",
    );
    let mut high = sale("a");
    high.amount_minor = 60000;
    assert!(fires(&engine, &high, NOON_MS));
    assert!(!fires(&engine, &sale("b"), NOON_MS));
    // A card first seen two days ago is no longer new.
    approved(&engine, &sale("c"), NOON_MS);
    high.card = "c";
    assert!(!fires(&engine, &high, NOON_MS + 2 * 86_400_000));
}

#[test]
fn outside_business_hours_in_local_time() {
    let engine = engine(
        "kind = \"business_hours\"\nopen = \"08:00\"\nclose = \"22:00\"\naction = \"alert\"\nscore = 10",
    );
    assert!(!fires(&engine, &sale("a"), NOON_MS));
    // 23:00 China time.
    let assessment = engine.evaluate(&sale("a"), NOON_MS + 11 * 3_600_000);
    assert_eq!(assessment.verdict, Verdict::Alert);
    assert!(
        assessment.fired[0].reason.contains("23:00"),
        "{}",
        assessment.summary()
    );

    let night = self::engine(
        "kind = \"business_hours\"\nopen = \"18:00\"\nclose = \"02:00\"\naction = \"alert\"\nscore = 10",
    );
    assert!(fires(&night, &sale("a"), NOON_MS));
    assert!(!fires(&night, &sale("a"), NOON_MS + 13 * 3_600_000));
}

#[test]
fn high_risk_merchant_category() {
    let engine = engine("kind = \"mcc\"\nmccs = [\"7995\"]\naction = \"review\"\nscore = 30");
    assert!(!fires(&engine, &sale("a"), NOON_MS));
    let mut casino = sale("a");
    casino.mcc = 7995;
    assert!(fires(&engine, &casino, NOON_MS));
}

#[test]
fn cross_border_by_currency() {
    let engine = engine("kind = \"cross_border\"\naction = \"alert\"\nscore = 20");
    assert!(!fires(&engine, &sale("a"), NOON_MS));
    let mut foreign_card = sale("a");
    foreign_card.card_currency = Currency::parse("USD").unwrap();
    assert!(fires(&engine, &foreign_card, NOON_MS));
    let mut foreign_sale = sale("a");
    foreign_sale.currency = Currency::parse("USD").unwrap();
    foreign_sale.card_currency = Currency::parse("USD").unwrap();
    assert!(fires(&engine, &foreign_sale, NOON_MS));
}

#[test]
fn a_chip_card_swiped_or_a_fallback() {
    let engine = engine("kind = \"fallback\"\naction = \"review\"\nscore = 30");
    assert!(!fires(&engine, &sale("a"), NOON_MS));
    let mut stripe_only = sale("a");
    stripe_only.entry = Entry::Magstripe;
    stripe_only.chip_card = false;
    assert!(!fires(&engine, &stripe_only, NOON_MS));
    let mut swiped = stripe_only;
    swiped.chip_card = true;
    assert!(fires(&engine, &swiped, NOON_MS));
    let mut fallback = stripe_only;
    fallback.entry = Entry::Fallback;
    assert!(fires(&engine, &fallback, NOON_MS));
}

#[test]
fn repeated_pin_failures() {
    let engine = engine(&format!(
        "kind = \"pin_failures\"\nwindow_secs = 3600\nmax_failures = 2\n{DECLINE_65}"
    ));
    let attempt = sale("a");
    engine.evaluate(&attempt, NOON_MS);
    record(&engine, &attempt, NOON_MS, false, true);
    assert!(!fires(&engine, &attempt, NOON_MS + 1000));
    record(&engine, &attempt, NOON_MS + 1000, false, true);
    assert!(fires(&engine, &attempt, NOON_MS + 2000));
    assert!(!fires(&engine, &sale("b"), NOON_MS + 2000));
    assert!(!fires(&engine, &attempt, NOON_MS + 3_700_000));
}

#[test]
fn refund_to_a_card_with_no_matching_sale() {
    let engine = engine(
        "kind = \"refund_without_sale\"\nwindow_secs = 86400\naction = \"review\"\nscore = 50",
    );
    approved(&engine, &sale("a"), NOON_MS);
    let mut refund = sale("a");
    refund.kind = Kind::Refund;
    refund.amount_minor = 1000;
    assert!(!fires(&engine, &refund, NOON_MS + 60_000));
    refund.amount_minor = 1001;
    assert!(fires(&engine, &refund, NOON_MS + 60_000));
    let mut other_card = refund;
    other_card.card = "b";
    other_card.amount_minor = 500;
    assert!(fires(&engine, &other_card, NOON_MS + 60_000));
    // Sales are not refunds, and a void is not a refund either.
    assert!(!fires(&engine, &sale("b"), NOON_MS + 60_000));
    let mut void = sale("b");
    void.kind = Kind::Void;
    assert!(!fires(&engine, &void, NOON_MS + 60_000));
}

#[test]
fn voids_and_refunds_meet_the_rules_that_look_at_them_and_are_not_purchases() {
    let config = Config::from_toml(
        "[[rule]]\nname = \"hours\"\nkind = \"business_hours\"\nopen = \"07:00\"\nclose = \"23:30\"\naction = \"decline\"\nresponse_code = \"57\"\n\
         [[rule]]\nname = \"velocity\"\nkind = \"velocity\"\nscope = \"terminal\"\nwindow_secs = 600\nmax_count = 1\naction = \"alert\"\n",
    )
    .unwrap();
    let engine = Engine::new(config);
    let mut void = sale("a");
    void.kind = Kind::Void;
    let midnight_ms = NOON_MS + 12 * 3_600_000;
    let assessment = engine.evaluate(&void, midnight_ms);
    assert_eq!(assessment.decline_code().unwrap().as_str(), "57");
    // Voids are neither counted by velocity nor remembered as attempts.
    for _ in 0..3 {
        assert!(!fires(&engine, &void, NOON_MS));
    }
    assert!(!fires(&engine, &sale("a"), NOON_MS));
    assert!(fires(&engine, &sale("a"), NOON_MS + 1));
}

#[test]
fn windows_replayed_from_the_journal_are_the_windows_evaluation_built() {
    let rules = "[[rule]]\nname = \"v\"\nkind = \"velocity\"\nscope = \"card\"\nwindow_secs = 600\nmax_count = 2\naction = \"decline\"\nresponse_code = \"65\"\n\
                 [[rule]]\nname = \"p\"\nkind = \"pin_failures\"\nwindow_secs = 3600\nmax_failures = 1\naction = \"decline\"\nresponse_code = \"75\"\n\
                 [[rule]]\nname = \"n\"\nkind = \"new_card\"\nwindow_secs = 600\nmin_amount_minor = 1\naction = \"review\"\n\
                 [[rule]]\nname = \"r\"\nkind = \"refund_without_sale\"\nwindow_secs = 86400\naction = \"review\"\n";
    let restarted = Engine::new(Config::from_toml(rules).unwrap());
    assert_eq!(restarted.retention_secs(), 86_400);
    let a = sale("a");
    let outcome = |approved, wrong_pin| Outcome {
        kind: a.kind,
        card: a.card,
        terminal: a.terminal,
        merchant: a.merchant,
        amount_minor: a.amount_minor,
        approved,
        wrong_pin,
    };
    // What the journal held before the restart: an approved sale, then a wrong PIN.
    restarted.replay(&a, &outcome(true, false), NOON_MS - 700_000);
    restarted.replay(&a, &outcome(false, true), NOON_MS - 1_000);
    let assessment = restarted.evaluate(&a, NOON_MS);
    let fired: Vec<_> = assessment.fired.iter().map(|f| f.rule.as_str()).collect();
    // The card is not new, its PIN failure counts, and the sale 700 s ago is out of the
    // velocity window (the wrong PIN attempt 1 s ago is in it, with this one: 2, not above).
    assert_eq!(fired, vec!["p"]);
    let mut refund = sale("a");
    refund.kind = Kind::Refund;
    assert!(
        restarted.evaluate(&refund, NOON_MS).fired.is_empty(),
        "the replayed sale pays for the refund"
    );
    let fresh = Engine::new(Config::from_toml(rules).unwrap());
    let fired: Vec<_> = fresh
        .evaluate(&refund, NOON_MS)
        .fired
        .iter()
        .map(|f| f.rule.clone())
        .collect();
    assert_eq!(
        fired,
        vec!["r"],
        "without the replay the refund has no sale"
    );
}

#[test]
fn scores_add_up_to_a_decline() {
    let config = Config::from_toml(
        "[engine]\ndecline_score = 50\ndecline_code = \"59\"\n\
         [[rule]]\nname = \"x\"\nkind = \"cross_border\"\naction = \"alert\"\nscore = 25\n\
         [[rule]]\nname = \"f\"\nkind = \"fallback\"\naction = \"review\"\nscore = 25\n",
    )
    .unwrap();
    let engine = Engine::new(config);
    let mut both = sale("a");
    both.card_currency = Currency::parse("USD").unwrap();
    assert_eq!(engine.evaluate(&both, NOON_MS).verdict, Verdict::Alert);
    both.entry = Entry::Fallback;
    let assessment = engine.evaluate(&both, NOON_MS);
    assert_eq!(assessment.decline_code().unwrap().as_str(), "59");
    assert_eq!(assessment.fired.len(), 2);
    assert_eq!(assessment.fired[1].action, Action::Review);
}

#[test]
fn the_demo_rules_load_and_a_plain_sale_passes() {
    let engine = Engine::new(Config::from_toml(risk::DEMO_RULES).unwrap());
    assert_eq!(engine.config().rules.len(), 12);
    assert_eq!(
        engine.evaluate(&sale("a"), NOON_MS).verdict,
        Verdict::Approve
    );
}

#[test]
fn bad_configuration_is_refused_with_the_setting_named() {
    let cases = [
        (
            "[[rule]]\nname = \"v\"\nkind = \"velocity\"\nscope = \"card\"\nmax_count = 3\naction = \"alert\"",
            "rule[0].window_secs",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"velocity\"\nscope = \"card\"\nwindow_secs = 60\naction = \"alert\"",
            "rule[0].max_count",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"fallback\"\naction = \"decline\"",
            "rule[0].response_code",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"fallback\"\naction = \"alert\"\nresponse_code = \"05\"",
            "rule[0].response_code",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"fallback\"\naction = \"block\"",
            "rule[0].action",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"teleport\"\naction = \"alert\"",
            "rule[0].kind",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"fallback\"\naction = \"alert\"\nwindow_secs = 5",
            "rule[0].window_secs",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"mcc\"\nmccs = [\"79\"]\naction = \"alert\"",
            "rule[0].mccs",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"business_hours\"\nopen = \"25:00\"\nclose = \"08:00\"\naction = \"alert\"",
            "rule[0].open",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"velocity\"\nscope = \"card\"\nwindow_secs = 60\nmax_count = 100000\naction = \"alert\"",
            "rule[0].max_count",
        ),
        (
            "[[rule]]\nname = \"v\"\nkind = \"fallback\"\naction = \"alert\"\n[[rule]]\nname = \"v\"\nkind = \"mcc\"\nmccs = [\"7995\"]\naction = \"alert\"",
            "rule[1].name",
        ),
        ("[engine]\nhome_currency = \"XYZ\"", "engine.home_currency"),
        ("[engine]\ndecline_code = \"00\"", "engine.decline_code"),
    ];
    for (text, setting) in cases {
        match Config::from_toml(text) {
            Err(ConfigError::Setting { setting: named, .. }) => {
                assert_eq!(named, setting, "{text}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    // Unknown keys are refused by the parser, which names them.
    let error = Config::from_toml(
        "[[rule]]\nname = \"v\"\nkind = \"fallback\"\naction = \"alert\"\nwindow = 5",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("window"), "{error}");
}

#[test]
fn memory_stays_within_its_caps() {
    let config = Config::from_toml(
        "[[rule]]\nname = \"v\"\nkind = \"velocity\"\nscope = \"card\"\nwindow_secs = 60\nmax_count = 256\naction = \"alert\"",
    )
    .unwrap();
    let engine = Engine::with_caps(config, (100, 10, 10));
    for index in 0..1000 {
        let card = format!("card-{index}");
        let terminal = format!("{:08}", index % 50);
        let mut authorization = sale(&card);
        authorization.terminal = &terminal;
        engine.evaluate(&authorization, NOON_MS + index);
    }
    let (cards, terminals, merchants) = engine.remembered();
    assert!(
        cards <= 100 && terminals <= 10 && merchants <= 10,
        "{cards} {terminals} {merchants}"
    );
    // One card's window holds at most MAX_EVENTS_PER_KEY events: the count saturates there.
    for index in 0..300 {
        engine.evaluate(&sale("busy"), NOON_MS + 2000 + index);
    }
    let assessment = engine.evaluate(&sale("busy"), NOON_MS + 2400);
    assert!(
        assessment.fired[0].reason.starts_with("257 "),
        "{}",
        assessment.summary()
    );
}

#[test]
fn replaced_rules_apply_to_the_next_sale_and_keep_the_windows() {
    let velocity = |max_count: u32, enabled: bool| {
        Config::from_toml(&format!(
            "[[rule]]\nname = \"r\"\nenabled = {enabled}\nkind = \"velocity\"\nscope = \"card\"\nwindow_secs = 60\nmax_count = {max_count}\n{DECLINE_65}"
        ))
        .unwrap()
    };
    let engine = Engine::new(velocity(5, true));
    assert_eq!(engine.rules_version(), 0);
    for second in 0..3 {
        assert!(!fires(&engine, &sale("a"), NOON_MS + second * 1000));
    }
    // The threshold lowered to 2: the fourth sale in the window is over it, counted with the
    // three the engine saw under the old rules.
    engine.replace_rules(velocity(2, true), 7);
    assert_eq!(
        (engine.rules_version(), engine.config().rules.len()),
        (7, 1)
    );
    let fourth = engine.evaluate(&sale("a"), NOON_MS + 3000);
    assert_eq!(fourth.decline_code().unwrap().as_str(), "65");
    assert!(
        fourth.fired[0].reason.contains("at most 2"),
        "{}",
        fourth.summary()
    );
    // Disabled: checked and kept in the file, not evaluated.
    engine.replace_rules(velocity(2, false), 8);
    assert!(engine.config().rules.is_empty());
    assert!(!fires(&engine, &sale("a"), NOON_MS + 4000));
    // A disabled rule is still checked, and names the setting.
    let refused = Config::from_toml(
        "[[rule]]\nname = \"off\"\nenabled = false\nkind = \"velocity\"\naction = \"alert\"\nscope = \"card\"\nmax_count = 2\n",
    )
    .unwrap_err();
    assert!(
        refused.to_string().contains("rule[0].window_secs"),
        "{refused}"
    );
}
