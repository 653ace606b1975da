//! The engine's cost per authorization, with the demo rules, on warm windows: 10,000 cards
//! over 500 terminals, each card with some history.

use money::Currency;
use risk::{Authorization, Config, Engine, Entry, Kind, Outcome};

fn main() {
    divan::main();
}

const CARDS: usize = 10_000;
const TERMINALS: usize = 500;

fn warm_engine() -> (Engine, Vec<String>, Vec<String>) {
    let config = Config::from_toml(risk::DEMO_RULES).unwrap_or_else(|error| panic!("{error}"));
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
    let (engine, cards, terminals) = warm_engine();
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
