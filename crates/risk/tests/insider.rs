#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Each insider rule fires on a scripted scenario and stays quiet on a close one.

use risk::insider::{InsiderRules, InsiderWatch, StaffAction, StaffKind};

/// 2027-01-15 12:00:00 China time (04:00 UTC).
const NOON_MS: i64 = 1_800_000_000_000 - (1_800_000_000_000 % 86_400_000) + 4 * 3_600_000;
const MERCHANT: &str = "898310058120001";

fn action(
    kind: StaffKind,
    at_ms: i64,
    operator: &'static str,
    card: &'static str,
) -> StaffAction<'static> {
    StaffAction {
        kind,
        at_ms,
        merchant: MERCHANT,
        terminal: "10000001",
        operator,
        card,
        approved: true,
    }
}

fn fired(watch: &mut InsiderWatch, action: &StaffAction<'_>) -> Vec<&'static str> {
    watch
        .observe(action)
        .into_iter()
        .map(|alert| alert.rule)
        .collect()
}

#[test]
fn a_refund_to_a_card_that_never_paid_here_alerts_and_one_that_paid_does_not() {
    let mut watch = InsiderWatch::new(InsiderRules::default());
    assert!(
        fired(
            &mut watch,
            &action(StaffKind::Sale, NOON_MS, "01", "card-a")
        )
        .is_empty()
    );
    let paid = action(StaffKind::Refund, NOON_MS + 60_000, "01", "card-a");
    assert!(fired(&mut watch, &paid).is_empty());
    let stranger = action(StaffKind::Refund, NOON_MS + 120_000, "01", "card-b");
    let alerts = watch.observe(&stranger);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, "insider-refund-unpaid-card");
    assert!(
        alerts[0].reason.contains("operator 01"),
        "{}",
        alerts[0].reason
    );
    // Paid at another merchant is not paid here; a declined sale is not paid either.
    let mut elsewhere = action(StaffKind::Sale, NOON_MS, "02", "card-c");
    elsewhere.merchant = "898310058120002";
    watch.observe(&elsewhere);
    let mut declined = action(StaffKind::Sale, NOON_MS, "02", "card-d");
    declined.approved = false;
    watch.observe(&declined);
    for card in ["card-c", "card-d"] {
        let refund = action(StaffKind::Refund, NOON_MS + 180_000, "02", card);
        assert_eq!(
            fired(&mut watch, &refund),
            ["insider-refund-unpaid-card"],
            "{card}"
        );
    }
    // A sale older than the window no longer covers a refund.
    let month_later = NOON_MS + 31 * 86_400_000;
    let late = action(StaffKind::Refund, month_later, "01", "card-a");
    assert_eq!(fired(&mut watch, &late), ["insider-refund-unpaid-card"]);
}

#[test]
fn an_operators_void_and_refund_spike_alerts_and_the_same_spread_over_operators_does_not() {
    let rules = InsiderRules::default();
    let mut watch = InsiderWatch::new(rules.clone());
    // Six undos spread over six operators: none over five.
    for (i, operator) in ["01", "02", "03", "04", "05", "06"].into_iter().enumerate() {
        let at = NOON_MS + i as i64 * 1000;
        watch.observe(&action(StaffKind::Sale, at, operator, "card-a"));
        let refund = action(StaffKind::Refund, at + 500_000, operator, "card-a");
        assert!(fired(&mut watch, &refund).is_empty());
    }
    // One operator: the sixth in the hour fires, naming the count.
    watch.observe(&action(StaffKind::Sale, NOON_MS, "07", "card-z"));
    for i in 0..rules.spike_max as i64 {
        let refund = action(
            StaffKind::Refund,
            NOON_MS + 600_000 + i * 60_000,
            "07",
            "card-z",
        );
        assert!(fired(&mut watch, &refund).is_empty(), "undo {i}");
    }
    let sixth = watch.observe(&action(
        StaffKind::Refund,
        NOON_MS + 1_000_000,
        "07",
        "card-z",
    ));
    assert_eq!(sixth[0].rule, "insider-undo-spike");
    assert!(
        sixth[0]
            .reason
            .starts_with("6 voids and refunds by operator 07"),
        "{}",
        sixth[0].reason
    );
    // The window slides: an hour later the count starts again.
    let later = action(
        StaffKind::Refund,
        NOON_MS + 1_000_000 + 3_600_001,
        "07",
        "card-z",
    );
    assert!(fired(&mut watch, &later).is_empty());
}

#[test]
fn voids_right_after_the_operators_own_sales_alert_and_late_or_others_voids_do_not() {
    let mut watch = InsiderWatch::new(InsiderRules::default());
    let cards = ["card-1", "card-2", "card-3", "card-4"];
    // Operator 01 voids each sale a minute after making it; the third such void alerts.
    for (i, card) in cards.iter().take(3).enumerate() {
        let at = NOON_MS + i as i64 * 300_000;
        watch.observe(&action(StaffKind::Sale, at, "01", card));
        let rules = fired(
            &mut watch,
            &action(StaffKind::Void, at + 60_000, "01", card),
        );
        assert_eq!(
            rules.contains(&"insider-quick-voids"),
            i == 2,
            "void {i}: {rules:?}"
        );
    }
    // Operator 02: voids five minutes after the sale, or of another operator's sale: quiet.
    for (i, card) in cards.iter().enumerate() {
        let at = NOON_MS + i as i64 * 600_000;
        watch.observe(&action(StaffKind::Sale, at, "02", card));
        let late = action(StaffKind::Void, at + 300_000, "02", card);
        assert!(fired(&mut watch, &late).is_empty(), "late void {i}");
    }
    for (i, card) in cards.iter().enumerate() {
        let at = NOON_MS + 7_200_000 + i as i64 * 60_000;
        watch.observe(&action(StaffKind::Sale, at, "03", card));
        let others = action(StaffKind::Void, at + 10_000, "04", card);
        assert!(fired(&mut watch, &others).is_empty(), "another's void {i}");
    }
}

#[test]
fn actions_outside_business_hours_alert_and_inside_do_not() {
    let mut watch = InsiderWatch::new(InsiderRules::default());
    assert!(
        fired(
            &mut watch,
            &action(StaffKind::Sale, NOON_MS, "01", "card-a")
        )
        .is_empty()
    );
    // 02:10 China time, the same day.
    let night = NOON_MS - (9 * 60 + 50) * 60_000;
    let alerts = watch.observe(&action(StaffKind::Sale, night, "01", "card-a"));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, "insider-after-hours");
    assert!(
        alerts[0].reason.contains("at 02:10 local"),
        "{}",
        alerts[0].reason
    );
    // No operator number (a message before sign-on records): no operator rule applies.
    let unknown = action(StaffKind::Sale, night, "", "card-a");
    assert!(fired(&mut watch, &unknown).is_empty());
    // Hours spanning midnight.
    let mut watch = InsiderWatch::new(InsiderRules {
        open_minute: 18 * 60,
        close_minute: 3 * 60,
        ..InsiderRules::default()
    });
    assert!(fired(&mut watch, &action(StaffKind::Sale, night, "01", "card-a")).is_empty());
    assert_eq!(
        fired(
            &mut watch,
            &action(StaffKind::Sale, NOON_MS, "01", "card-a")
        ),
        ["insider-after-hours"]
    );
}

#[test]
fn the_thresholds_come_from_the_rules_file_and_bad_ones_are_refused() {
    // Left out: the defaults, in the engine's local time.
    let config = risk::Config::from_toml("[engine]\nutc_offset_minutes = 60\n").unwrap();
    assert_eq!(
        config.insider,
        InsiderRules {
            utc_offset_minutes: 60,
            ..InsiderRules::default()
        }
    );
    let config = risk::Config::from_toml(
        "[insider]\nspike_max = 2\nspike_window_secs = 600\nquick_void_secs = 30\nquick_void_max = 1\npaid_window_secs = 86400\nopen = \"09:00\"\nclose = \"21:00\"\n",
    )
    .unwrap();
    let rules = &config.insider;
    assert_eq!((rules.spike_max, rules.spike_window_secs), (2, 600));
    assert_eq!((rules.quick_void_secs, rules.quick_void_max), (30, 1));
    assert_eq!(rules.paid_window_secs, 86_400);
    assert_eq!((rules.open_minute, rules.close_minute), (9 * 60, 21 * 60));
    // A spike of two: the third undo in ten minutes fires, which the default (five) would not.
    let mut watch = InsiderWatch::new(config.insider.clone());
    watch.observe(&action(StaffKind::Sale, NOON_MS, "08", "card-q"));
    for i in 0..2 {
        let refund = action(
            StaffKind::Refund,
            NOON_MS + 60_000 * (i + 1),
            "08",
            "card-q",
        );
        assert!(fired(&mut watch, &refund).is_empty(), "undo {i}");
    }
    let third = action(StaffKind::Refund, NOON_MS + 240_000, "08", "card-q");
    assert_eq!(fired(&mut watch, &third), ["insider-undo-spike"]);
    // Refused, naming the setting.
    for (text, named) in [
        ("[insider]\nspike_max = 0\n", "insider.spike_max"),
        ("[insider]\nspike_max = 256\n", "insider.spike_max"),
        (
            "[insider]\npaid_window_secs = 0\n",
            "insider.paid_window_secs",
        ),
        (
            "[insider]\nquick_void_secs = 99999999\n",
            "insider.quick_void_secs",
        ),
        ("[insider]\nopen = \"25:00\"\n", "insider.open"),
        ("[insider]\nspike = 3\n", "spike"),
    ] {
        let error = risk::Config::from_toml(text).unwrap_err().to_string();
        assert!(error.contains(named), "{text}: {error}");
    }
}

#[test]
fn a_supervisors_password_used_by_a_cashier_at_a_new_terminal_alerts() {
    use risk::insider::SupervisorWatch;
    let mut watch = SupervisorWatch::default();
    // The first use teaches the usual terminal; the same terminal again is quiet.
    assert_eq!(watch.observe(MERCHANT, "099", "10000001", "001"), None);
    assert_eq!(watch.observe(MERCHANT, "099", "10000001", "002"), None);
    // The supervisor signed on at another terminal themself: quiet (and learnt).
    assert_eq!(watch.observe(MERCHANT, "099", "10000002", "099"), None);
    // A cashier at a terminal the password never allowed anything at: the alert.
    let alert = watch.observe(MERCHANT, "099", "10000003", "001").unwrap();
    assert_eq!(alert.rule, "insider-supervisor-unusual-terminal");
    assert!(
        alert.reason.contains("10000001, 10000002"),
        "{}",
        alert.reason
    );
    // Another merchant's supervisor 099 has a history of its own.
    assert_eq!(
        watch.observe("898310058120002", "099", "20000001", "001"),
        None
    );
}

#[test]
fn usual_terminals_remembered_from_the_store_are_not_new_after_a_restart() {
    use risk::insider::SupervisorWatch;
    // What the host read at start: 099 used its password at 10000001 and 10000002.
    let mut watch = SupervisorWatch::default();
    watch.remember(MERCHANT, "099", "10000001");
    watch.remember(MERCHANT, "099", "10000002");
    assert!(watch.knows(MERCHANT, "099", "10000002"));
    assert!(!watch.knows(MERCHANT, "099", "10000003"));
    assert!(!watch.knows("898310058120002", "099", "10000001"));
    // A cashier at a remembered terminal: quiet, as before the restart.
    assert_eq!(watch.observe(MERCHANT, "099", "10000002", "001"), None);
    // At a terminal the password never allowed anything at: the alert names the usual ones.
    let alert = watch.observe(MERCHANT, "099", "10000003", "001").unwrap();
    assert!(
        alert
            .reason
            .contains("used before only at 10000001, 10000002"),
        "{}",
        alert.reason
    );
    // Without the memory (a watch that starts empty), the first use would have been quiet.
    let mut forgetful = SupervisorWatch::default();
    assert_eq!(forgetful.observe(MERCHANT, "099", "10000003", "001"), None);
}
