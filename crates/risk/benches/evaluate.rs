//! The engine's cost per authorization, on warm windows: 10,000 cards over 500 terminals, each
//! card with some history. With the demo rules, and with the rules `easypos bench sales --risk`
//! runs (crates/bench/load-risk.toml: every kind of rule, limits a load never reaches).

use money::Currency;
use risk::{Authorization, Config, Engine, Entry, Kind, Outcome};

fn main() {
    divan::main();
}

const CARDS: usize = 10_000;
const TERMINALS: usize = 500;

/// The bench's rules, from the bench crate (which depends on this one, so it is read as text).
const LOAD_RULES: &str = include_str!("../../bench/load-risk.toml");

fn warm_engine(rules: &str) -> (Engine, Vec<String>, Vec<String>) {
    let config = Config::from_toml(rules).unwrap_or_else(|error| panic!("{error}"));
    let engine = Engine::new(config);
    let cards: Vec<String> = (0..CARDS).map(|index| format!("card-{index}")).collect();
    let terminals: Vec<String> = (0..TERMINALS).map(|index| format!("{index:08}")).collect();
    let mut now_ms = 1_800_000_000_000;
    for round in 0..3 {
        for (index, card) in cards.iter().enumerate() {
            now_ms += 7;
            let sale = authorization(card, &terminals[index % TERMINALS], 1000 + round);
            engine.evaluate(&sale, now_ms);
            engine.record(&outcome(&sale), now_ms);
        }
    }
    (engine, cards, terminals)
}

fn authorization<'a>(card: &'a str, terminal: &'a str, amount_minor: i64) -> Authorization<'a> {
    let cny = Currency::parse("CNY").unwrap_or_else(|error| panic!("{error}"));
    Authorization {
        kind: Kind::Sale,
        card,
        terminal,
        merchant: "898310058120001",
        amount_minor,
        currency: cny,
        card_currency: cny,
        mcc: 5411,
        entry: Entry::Chip,
        chip_card: true,
    }
}

fn outcome<'a>(sale: &Authorization<'a>) -> Outcome<'a> {
    Outcome {
        kind: sale.kind,
        card: sale.card,
        terminal: sale.terminal,
        merchant: sale.merchant,
        amount_minor: sale.amount_minor,
        approved: true,
        wrong_pin: false,
    }
}

/// One authorization: evaluate every demo rule, then record its approval.
#[divan::bench]
fn evaluate_and_record(bencher: divan::Bencher) {
    evaluate_and_record_with(bencher, risk::DEMO_RULES);
}

/// One authorization with the sales bench's rules.
#[divan::bench]
fn evaluate_and_record_load_rules(bencher: divan::Bencher) {
    evaluate_and_record_with(bencher, LOAD_RULES);
}

fn evaluate_and_record_with(bencher: divan::Bencher, rules: &str) {
    let (engine, cards, terminals) = warm_engine(rules);
    let mut index = 0usize;
    let mut now_ms = 1_800_000_100_000;
    bencher.bench_local(|| {
        index = (index + 7919) % CARDS;
        now_ms += 1;
        let sale = authorization(&cards[index], &terminals[index % TERMINALS], 1234);
        let assessment = engine.evaluate(&sale, now_ms);
        engine.record(&outcome(&sale), now_ms);
        divan::black_box(assessment);
    });
}
