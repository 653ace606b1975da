#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The load's risk rules (`crates/bench/load-risk.toml`) against the busiest a bench terminal
//! can be: none fires, so `bench sales` measures the engine without any sale declined by it;
//! and they still fire beyond that, so they are evaluated, not switched off.

use risk::{Authorization, Engine, Entry, Kind, Outcome};

fn engine() -> Engine {
    Engine::new(risk::Config::from_toml(bench::LOAD_RULES).unwrap())
}

fn sale(card: &str, amount_minor: i64) -> Authorization<'_> {
    Authorization {
        kind: Kind::Sale,
        card,
        terminal: "50000000",
        merchant: demo::SHANGHAI_MERCHANT,
        amount_minor,
        currency: money::Currency::CNY,
        card_currency: money::Currency::CNY,
        mcc: 5814,
        entry: Entry::Chip,
        chip_card: true,
    }
}

/// A one-card terminal at the host's limit (its burst of 100 at once, then 50 a second) for 20
/// seconds, every other sale with a wrong PIN, at the bench's amounts (1.00 to 99.99).
#[test]
fn a_one_card_terminal_at_the_hosts_limit_fires_no_rule() {
    let engine = engine();
    let mut now_ms = 1_800_000_000_000_i64;
    for index in 0..1_100_i64 {
        if index >= acquirer::TERMINAL_RATE_BURST as i64 {
            now_ms += 1_000 / i64::from(acquirer::TERMINAL_RATE_PER_SECOND);
        }
        let at_ms = now_ms;
        let amount_minor = 100 + (index * 7_919) % 9_900;
        let authorization = sale("card-1", amount_minor);
        let assessment = engine.evaluate(&authorization, at_ms);
        assert!(
            assessment.fired.is_empty(),
            "sale {index}: {}",
            assessment.summary()
        );
        let wrong_pin = index % 2 == 1;
        engine.record(
            &Outcome {
                kind: Kind::Sale,
                card: "card-1",
                terminal: authorization.terminal,
                merchant: authorization.merchant,
                amount_minor,
                approved: !wrong_pin,
                wrong_pin,
            },
            at_ms,
        );
    }
}

#[test]
fn a_sale_at_any_minute_of_the_day_fires_no_rule() {
    let engine = engine();
    let midnight_ms = 1_800_000_000_000_i64 / 86_400_000 * 86_400_000;
    for minute in 0..1_440_i64 {
        let card = format!("card-{minute}");
        let assessment = engine.evaluate(&sale(&card, 9_999), midnight_ms + minute * 60_000);
        assert!(
            assessment.fired.is_empty(),
            "minute {minute}: {}",
            assessment.summary()
        );
    }
}

#[test]
fn a_card_beyond_the_hosts_rate_is_declined_by_its_velocity() {
    let engine = engine();
    let now_ms = 1_800_000_000_000_i64;
    let assessment = (0..300)
        .map(|_| engine.evaluate(&sale("card-2", 1_000), now_ms))
        .find(|assessment| !assessment.fired.is_empty())
        .unwrap();
    assert_eq!(assessment.fired[0].rule, "card-velocity");
    assert!(assessment.decline_code().is_some(), "{assessment:?}");
}

#[test]
fn an_amount_a_hundred_times_the_cards_average_is_reviewed() {
    let engine = engine();
    let now_ms = 1_800_000_000_000_i64;
    for _ in 0..3 {
        let authorization = sale("card-3", 100);
        engine.evaluate(&authorization, now_ms);
        engine.record(
            &Outcome {
                kind: Kind::Sale,
                card: "card-3",
                terminal: authorization.terminal,
                merchant: authorization.merchant,
                amount_minor: 100,
                approved: true,
                wrong_pin: false,
            },
            now_ms,
        );
    }
    let assessment = engine.evaluate(&sale("card-3", 10_001), now_ms + 1);
    assert!(
        assessment
            .fired
            .iter()
            .any(|fired| fired.rule == "amount-anomaly"),
        "{assessment:?}"
    );
}
