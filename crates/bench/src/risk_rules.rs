//! The risk rules of the sales bench (`risk-load.toml`): every kind of rule evaluated for every
//! sale, with limits a load generator never reaches (the file says why each limit is safe).

/// The text of `crates/bench/risk-load.toml`.
pub const LOAD_RISK_RULES: &str = include_str!("../risk-load.toml");

/// The bench's rules, checked.
pub fn load_risk_rules() -> Result<risk::Config, crate::BenchError> {
    risk::Config::from_toml(LOAD_RISK_RULES)
        .map_err(|error| crate::BenchError::Setup(format!("crates/bench/risk-load.toml: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use risk::{Authorization, Engine, Entry, Kind, Outcome};

    fn sale<'a>(card: &'a str, amount_minor: i64) -> Authorization<'a> {
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

    #[test]
    fn every_kind_of_rule_is_there() {
        let rules = load_risk_rules().unwrap();
        let kinds: std::collections::BTreeSet<String> = rules
            .rules
            .iter()
            .map(|rule| {
                format!("{:?}", rule.check)
                    .split([' ', '{', '('])
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let demo = risk::Config::from_toml(risk::DEMO_RULES).unwrap();
        let demo_kinds: std::collections::BTreeSet<String> = demo
            .rules
            .iter()
            .map(|rule| {
                format!("{:?}", rule.check)
                    .split([' ', '{', '('])
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(kinds, demo_kinds);
    }

    /// The busiest a bench terminal can be: its burst of 100 then 50 a second, on one card,
    /// every other sale with a wrong PIN, at any amount of the bench, for 10 seconds.
    #[test]
    fn a_terminal_at_the_hosts_limit_on_one_card_fires_no_rule() {
        let engine = Engine::new(load_risk_rules().unwrap());
        let mut now_ms = 1_800_000_000_000_i64;
        for index in 0..600_i64 {
            // The burst arrives in the first instant, then one sale every 20 ms.
            if index >= 100 {
                now_ms += 20;
            }
            let amount_minor = 100 + (index * 7_919) % 9_900;
            let authorization = sale("card-1", amount_minor);
            let assessment = engine.evaluate(&authorization, now_ms);
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
                now_ms,
            );
        }
    }

    /// The same rules do fire when a limit is passed: they are not switched off.
    #[test]
    fn a_card_beyond_the_hosts_rate_is_declined_by_velocity() {
        let engine = Engine::new(load_risk_rules().unwrap());
        let now_ms = 1_800_000_000_000_i64;
        let fired = (0..300)
            .map(|_| engine.evaluate(&sale("card-2", 1_000), now_ms))
            .find(|assessment| !assessment.fired.is_empty())
            .unwrap();
        assert_eq!(fired.fired[0].rule, "card-velocity");
        assert!(fired.decline_code().is_some());
    }
}
