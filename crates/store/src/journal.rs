//! The message journal: one row per terminal message, its answer and how long it took.
//!
//! Rows are appended by the acquirer host after it has decided (and committed any money
//! move) and before the answer leaves, so every answer a terminal ever received is in the
//! journal. The journal is what batch settlement totals are counted from, what duplicates are
//! answered from, and what the console and disputes read later. Card data never enters it: the
//! card number is masked by the caller (`iso8583::Pan::masked`) and the rest of the card data
//! (track 2, PIN block, CVV, chip data) has no column.

/// One message and its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalEntry {
    /// When the message arrived, in microseconds since the epoch.
    pub received_at: i64,
    /// From arrival to the answer being ready, in microseconds.
    pub duration_us: i64,
    /// The remote address of the connection.
    pub peer: String,
    /// Field 41, or empty when the message did not carry it.
    pub terminal_id: String,
    /// Field 42, or empty.
    pub merchant_id: String,
    pub mti: String,
    /// The message type the host recognised (`Sale`, `Refund` …), or `Unknown`.
    pub kind: String,
    /// 60.2.
    pub batch: Option<i64>,
    /// Field 11.
    pub stan: Option<i64>,
    /// Field 7 (MMDDhhmmss), when the terminal sent it.
    pub transmission: Option<String>,
    pub amount_minor: Option<i64>,
    /// ISO 4217 numeric (field 49).
    pub currency: Option<i64>,
    /// The card number, masked (at most the first six and last four digits).
    pub card: Option<String>,
    /// 61.1 and 61.2: the original a follow-up message names.
    pub original_batch: Option<i64>,
    pub original_stan: Option<i64>,
    /// Field 39 of the answer; `None` when the message could not be answered.
    pub response: Option<String>,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    /// The packed answer, kept for answering a duplicate of a financial message.
    pub answer: Option<Vec<u8>>,
    /// Field 64 of the request, in hex: a keyed digest of its content, the same for a
    /// retransmission and different for another message under the same trace number.
    pub request_mac: Option<String>,
    /// The risk rules that fired, and why (`risk::Assessment::summary`); `None` when none did.
    pub risk: Option<String>,
    /// The directory's id of the card presented (never its number), for rebuilding the risk
    /// engine's windows after a restart; `None` for messages without a known card.
    pub card_id: Option<String>,
    /// The operator (cashier) number the terminal signed on with (field 63 of the sign-on),
    /// for the insider alerts; `None` for messages of no signed-on session (migration 28).
    pub operator: Option<String>,
    /// Field 22 of the request, the POS entry mode (`051` chip with PIN, `071` contactless,
    /// `021` magnetic stripe …), as the terminal sent it (migration 33).
    pub entry_mode: Option<String>,
    /// How the card and its holder were verified, as the issuer's decision shows it
    /// (`chip cryptogram verified; PIN verified`, `… no CVM`, `PIN failed` …); `None` for
    /// messages no issuer decided (migration 33).
    pub card_verification: Option<String>,
}

pub(crate) const JOURNAL_COLUMNS: &str = "received_at, duration_us, peer, terminal_id, merchant_id, mti, kind, batch, stan, transmission, amount_minor, currency, card, original_batch, original_stan, response, rrn, auth_code, answer, request_mac, risk, card_id, operator, entry_mode, card_verification";

/// How many columns [`JOURNAL_COLUMNS`] names.
pub(crate) const JOURNAL_COLUMN_COUNT: usize = 25;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_count_matches_the_column_list() {
        assert_eq!(JOURNAL_COLUMNS.split(", ").count(), JOURNAL_COLUMN_COUNT);
    }
}
