//! Versioned schema migrations, embedded per dialect. Each backend applies the ones its
//! database lacks, in order, inside a transaction, and refuses a database whose schema is newer
//! than this binary knows.

/// One step of the schema. Versions start at 1 and have no gaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger",
        sql: include_str!("../migrations/sqlite/0001_ledger.sql"),
    },
    Migration {
        version: 2,
        name: "directory",
        sql: include_str!("../migrations/sqlite/0002_directory.sql"),
    },
    Migration {
        version: 3,
        name: "keys",
        sql: include_str!("../migrations/sqlite/0003_keys.sql"),
    },
    Migration {
        version: 4,
        name: "issuer_cards",
        sql: include_str!("../migrations/sqlite/0004_issuer_cards.sql"),
    },
    Migration {
        version: 5,
        name: "terminal_sessions",
        sql: include_str!("../migrations/sqlite/0005_terminal_sessions.sql"),
    },
    Migration {
        version: 6,
        name: "journal",
        sql: include_str!("../migrations/sqlite/0006_journal.sql"),
    },
    Migration {
        version: 7,
        name: "pending_reversals",
        sql: include_str!("../migrations/sqlite/0007_pending_reversals.sql"),
    },
    Migration {
        version: 8,
        name: "dukpt_terminals",
        sql: include_str!("../migrations/sqlite/0008_dukpt_terminals.sql"),
    },
    Migration {
        version: 9,
        name: "cards_by_account",
        sql: include_str!("../migrations/sqlite/0009_cards_by_account.sql"),
    },
    Migration {
        version: 10,
        name: "accounts",
        sql: include_str!("../migrations/sqlite/0010_accounts.sql"),
    },
    Migration {
        version: 11,
        name: "totp",
        sql: include_str!("../migrations/sqlite/0011_totp.sql"),
    },
    Migration {
        version: 12,
        name: "idempotency_expiry",
        sql: include_str!("../migrations/sqlite/0012_idempotency_expiry.sql"),
    },
    Migration {
        version: 13,
        name: "webhooks",
        sql: include_str!("../migrations/sqlite/0013_webhooks.sql"),
    },
    Migration {
        version: 14,
        name: "wallets",
        sql: include_str!("../migrations/sqlite/0014_wallets.sql"),
    },
    Migration {
        version: 15,
        name: "journal_risk",
        sql: include_str!("../migrations/sqlite/0015_journal_risk.sql"),
    },
    Migration {
        version: 16,
        name: "freezes",
        sql: include_str!("../migrations/sqlite/0016_freezes.sql"),
    },
    Migration {
        version: 17,
        name: "batch_closes",
        sql: include_str!("../migrations/sqlite/0017_batch_closes.sql"),
    },
    Migration {
        version: 18,
        name: "receipt_keys",
        sql: include_str!("../migrations/sqlite/0018_receipt_keys.sql"),
    },
    Migration {
        version: 19,
        name: "fraud_reports",
        sql: include_str!("../migrations/sqlite/0019_fraud_reports.sql"),
    },
    Migration {
        version: 20,
        name: "onboarding",
        sql: include_str!("../migrations/sqlite/0020_onboarding.sql"),
    },
    Migration {
        version: 21,
        name: "wallet_history",
        sql: include_str!("../migrations/sqlite/0021_wallet_history.sql"),
    },
    Migration {
        version: 22,
        name: "wallet_payment_codes",
        sql: include_str!("../migrations/sqlite/0022_wallet_payment_codes.sql"),
    },
    Migration {
        version: 23,
        name: "audit_log",
        sql: include_str!("../migrations/sqlite/0023_audit_log.sql"),
    },
    Migration {
        version: 24,
        name: "risk_replay_and_refund_freezes",
        sql: include_str!("../migrations/sqlite/0024_risk_replay_and_refund_freezes.sql"),
    },
    Migration {
        version: 25,
        name: "cases",
        sql: include_str!("../migrations/sqlite/0025_cases.sql"),
    },
    Migration {
        version: 26,
        name: "terminal_parameters",
        sql: include_str!("../migrations/sqlite/0026_terminal_parameters.sql"),
    },
    Migration {
        version: 27,
        name: "refunds",
        sql: include_str!("../migrations/sqlite/0027_refunds.sql"),
    },
    Migration {
        version: 28,
        name: "risk_controls",
        sql: include_str!("../migrations/sqlite/0028_risk_controls.sql"),
    },
    Migration {
        version: 29,
        name: "settlement_chargebacks",
        sql: include_str!("../migrations/sqlite/0029_settlement_chargebacks.sql"),
    },
    Migration {
        version: 30,
        name: "settlement_reports",
        sql: include_str!("../migrations/sqlite/0030_settlement_reports.sql"),
    },
    Migration {
        version: 31,
        name: "dukpt_ksn_counter",
        sql: include_str!("../migrations/sqlite/0031_dukpt_ksn_counter.sql"),
    },
    Migration {
        version: 32,
        name: "cardholder_alerts",
        sql: include_str!("../migrations/sqlite/0032_cardholder_alerts.sql"),
    },
    Migration {
        version: 33,
        name: "dispute_steps_in_progress",
        sql: include_str!("../migrations/sqlite/0033_dispute_steps_in_progress.sql"),
    },
    Migration {
        version: 34,
        name: "incidents",
        sql: include_str!("../migrations/sqlite/0034_incidents.sql"),
    },
    Migration {
        version: 35,
        name: "password_resets",
        sql: include_str!("../migrations/sqlite/0035_password_resets.sql"),
    },
    Migration {
        version: 36,
        name: "procedures",
        sql: include_str!("../migrations/sqlite/0036_procedures.sql"),
    },
    Migration {
        version: 37,
        name: "supervisor_terminals",
        sql: include_str!("../migrations/sqlite/0037_supervisor_terminals.sql"),
    },
    Migration {
        version: 38,
        name: "fraud_report_follow_ups",
        sql: include_str!("../migrations/sqlite/0038_fraud_report_follow_ups.sql"),
    },
    Migration {
        version: 39,
        name: "host_changes",
        sql: include_str!("../migrations/sqlite/0039_host_changes.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger",
        sql: include_str!("../migrations/postgres/0001_ledger.sql"),
    },
    Migration {
        version: 2,
        name: "directory",
        sql: include_str!("../migrations/postgres/0002_directory.sql"),
    },
    Migration {
        version: 3,
        name: "keys",
        sql: include_str!("../migrations/postgres/0003_keys.sql"),
    },
    Migration {
        version: 4,
        name: "issuer_cards",
        sql: include_str!("../migrations/postgres/0004_issuer_cards.sql"),
    },
    Migration {
        version: 5,
        name: "terminal_sessions",
        sql: include_str!("../migrations/postgres/0005_terminal_sessions.sql"),
    },
    Migration {
        version: 6,
        name: "journal",
        sql: include_str!("../migrations/postgres/0006_journal.sql"),
    },
    Migration {
        version: 7,
        name: "pending_reversals",
        sql: include_str!("../migrations/postgres/0007_pending_reversals.sql"),
    },
    Migration {
        version: 8,
        name: "dukpt_terminals",
        sql: include_str!("../migrations/postgres/0008_dukpt_terminals.sql"),
    },
    Migration {
        version: 9,
        name: "cards_by_account",
        sql: include_str!("../migrations/postgres/0009_cards_by_account.sql"),
    },
    Migration {
        version: 10,
        name: "accounts",
        sql: include_str!("../migrations/postgres/0010_accounts.sql"),
    },
    Migration {
        version: 11,
        name: "totp",
        sql: include_str!("../migrations/postgres/0011_totp.sql"),
    },
    Migration {
        version: 12,
        name: "idempotency_expiry",
        sql: include_str!("../migrations/postgres/0012_idempotency_expiry.sql"),
    },
    Migration {
        version: 13,
        name: "webhooks",
        sql: include_str!("../migrations/postgres/0013_webhooks.sql"),
    },
    Migration {
        version: 14,
        name: "wallets",
        sql: include_str!("../migrations/postgres/0014_wallets.sql"),
    },
    Migration {
        version: 15,
        name: "journal_risk",
        sql: include_str!("../migrations/postgres/0015_journal_risk.sql"),
    },
    Migration {
        version: 16,
        name: "freezes",
        sql: include_str!("../migrations/postgres/0016_freezes.sql"),
    },
    Migration {
        version: 17,
        name: "batch_closes",
        sql: include_str!("../migrations/postgres/0017_batch_closes.sql"),
    },
    Migration {
        version: 18,
        name: "receipt_keys",
        sql: include_str!("../migrations/postgres/0018_receipt_keys.sql"),
    },
    Migration {
        version: 19,
        name: "fraud_reports",
        sql: include_str!("../migrations/postgres/0019_fraud_reports.sql"),
    },
    Migration {
        version: 20,
        name: "onboarding",
        sql: include_str!("../migrations/postgres/0020_onboarding.sql"),
    },
    Migration {
        version: 21,
        name: "wallet_history",
        sql: include_str!("../migrations/postgres/0021_wallet_history.sql"),
    },
    Migration {
        version: 22,
        name: "wallet_payment_codes",
        sql: include_str!("../migrations/postgres/0022_wallet_payment_codes.sql"),
    },
    Migration {
        version: 23,
        name: "audit_log",
        sql: include_str!("../migrations/postgres/0023_audit_log.sql"),
    },
    Migration {
        version: 24,
        name: "risk_replay_and_refund_freezes",
        sql: include_str!("../migrations/postgres/0024_risk_replay_and_refund_freezes.sql"),
    },
    Migration {
        version: 25,
        name: "cases",
        sql: include_str!("../migrations/postgres/0025_cases.sql"),
    },
    Migration {
        version: 26,
        name: "terminal_parameters",
        sql: include_str!("../migrations/postgres/0026_terminal_parameters.sql"),
    },
    Migration {
        version: 27,
        name: "refunds",
        sql: include_str!("../migrations/postgres/0027_refunds.sql"),
    },
    Migration {
        version: 28,
        name: "risk_controls",
        sql: include_str!("../migrations/postgres/0028_risk_controls.sql"),
    },
    Migration {
        version: 29,
        name: "settlement_chargebacks",
        sql: include_str!("../migrations/postgres/0029_settlement_chargebacks.sql"),
    },
    Migration {
        version: 30,
        name: "settlement_reports",
        sql: include_str!("../migrations/postgres/0030_settlement_reports.sql"),
    },
    Migration {
        version: 31,
        name: "dukpt_ksn_counter",
        sql: include_str!("../migrations/postgres/0031_dukpt_ksn_counter.sql"),
    },
    Migration {
        version: 32,
        name: "cardholder_alerts",
        sql: include_str!("../migrations/postgres/0032_cardholder_alerts.sql"),
    },
    Migration {
        version: 33,
        name: "dispute_steps_in_progress",
        sql: include_str!("../migrations/postgres/0033_dispute_steps_in_progress.sql"),
    },
    Migration {
        version: 34,
        name: "incidents",
        sql: include_str!("../migrations/postgres/0034_incidents.sql"),
    },
    Migration {
        version: 35,
        name: "password_resets",
        sql: include_str!("../migrations/postgres/0035_password_resets.sql"),
    },
    Migration {
        version: 36,
        name: "procedures",
        sql: include_str!("../migrations/postgres/0036_procedures.sql"),
    },
    Migration {
        version: 37,
        name: "supervisor_terminals",
        sql: include_str!("../migrations/postgres/0037_supervisor_terminals.sql"),
    },
    Migration {
        version: 38,
        name: "fraud_report_follow_ups",
        sql: include_str!("../migrations/postgres/0038_fraud_report_follow_ups.sql"),
    },
    Migration {
        version: 39,
        name: "host_changes",
        sql: include_str!("../migrations/postgres/0039_host_changes.sql"),
    },
];

pub fn sqlite_migrations() -> &'static [Migration] {
    SQLITE
}

pub fn postgres_migrations() -> &'static [Migration] {
    POSTGRES
}

/// The newest version a list reaches.
pub fn latest(migrations: &[Migration]) -> u32 {
    migrations.last().map_or(0, |migration| migration.version)
}

/// The table that records applied versions; the same text works in both dialects.
pub const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_contiguous_and_dialects_agree() {
        // A gap would be a trap: a database at the later version would never get the missing
        // ones, because only versions above the current one are applied.
        for list in [SQLITE, POSTGRES] {
            for (index, migration) in list.iter().enumerate() {
                assert_eq!(migration.version as usize, index + 1, "{}", migration.name);
            }
        }
        let names = |list: &[Migration]| list.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(
            names(SQLITE),
            names(POSTGRES),
            "every migration exists in both dialects"
        );
    }
}
