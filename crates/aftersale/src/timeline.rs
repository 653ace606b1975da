//! A transaction's status timeline (R9): what happened to it, in order, read from the message
//! journal (pure: the caller reads the journal).
//!
//! From the transaction itself: `authorized` (approved) or `declined`. From the messages of
//! the same terminal batch: `voided` (an approved void naming it in field 61), `refunded` (an
//! approved refund naming it, with its amount), `completed` (a pre-authorization's approved
//! completion), `reversed` (an approved reversal of its trace number), and `settled` (the
//! batch's settlement, 0500, agreed with the host). Disputes and chargebacks join when they
//! are built. A refund made in a later batch is not found here yet.

use store::accounts::TransactionRecord;
use store::journal::JournalEntry;

/// One step of a transaction's life.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// `authorized`, `declined`, `voided`, `refunded`, `completed`, `reversed` or `settled`
    /// (and `reported-as-fraud`, which the API adds from the fraud reports).
    pub state: &'static str,
    /// When the host received the message that made it so, microseconds since the epoch.
    pub at: i64,
    /// The amount it moved (a refund's may be part of the sale's), minor units.
    pub amount_minor: Option<i64>,
    /// The message's kind and its answer's field 39, e.g. `Refund 00`.
    pub message: String,
}

fn approved(entry: &JournalEntry) -> bool {
    entry.response.as_deref() == Some("00")
}

/// The timeline of `transaction`, given every journal entry of its terminal batch (oldest
/// first). Retransmissions answered from the journal count once.
pub fn timeline(transaction: &TransactionRecord, batch: &[JournalEntry]) -> Vec<Event> {
    let first = Event {
        state: if transaction.response.as_deref() == Some("00") {
            "authorized"
        } else {
            "declined"
        },
        at: transaction.received_at,
        amount_minor: transaction.amount_minor,
        message: format!(
            "{} {}",
            transaction.kind,
            transaction.response.as_deref().unwrap_or("-")
        ),
    };
    let mut events = vec![first];
    if events[0].state == "declined" {
        return events;
    }
    let names_it = |entry: &JournalEntry| {
        entry.original_batch == transaction.batch && entry.original_stan == transaction.stan
    };
    for entry in batch.iter().filter(|entry| approved(entry)) {
        let state = match entry.kind.as_str() {
            "SaleVoid" | "PreAuthorizationVoid" | "CompletionVoid" if names_it(entry) => "voided",
            "Refund" if names_it(entry) => "refunded",
            "PreAuthorizationCompletion" if names_it(entry) => "completed",
            "Reversal" if entry.stan == transaction.stan => "reversed",
            "BatchSettlement" => "settled",
            _ => continue,
        };
        let repeat = events
            .iter()
            .any(|event| event.state == state && state != "refunded");
        let same_refund = events.iter().any(|event| {
            event.state == "refunded" && state == "refunded" && event.at == entry.received_at
        });
        if repeat || same_refund || entry.received_at < transaction.received_at {
            continue;
        }
        events.push(Event {
            state,
            at: entry.received_at,
            amount_minor: (state != "settled").then_some(entry.amount_minor).flatten(),
            message: format!("{} 00", entry.kind),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(response: &str) -> TransactionRecord {
        TransactionRecord {
            id: 7,
            received_at: 1_000,
            terminal_id: "10000001".into(),
            merchant_id: "898310058120001".into(),
            mti: "0200".into(),
            kind: "Sale".into(),
            batch: Some(1),
            stan: Some(5),
            amount_minor: Some(10_000),
            currency: Some(156),
            card: Some("621234******0000".into()),
            original_batch: None,
            original_stan: None,
            response: Some(response.into()),
            rrn: Some("000000000001".into()),
            auth_code: Some("123456".into()),
            duration_us: 10,
            risk: None,
            entry_mode: Some("051".into()),
        }
    }

    fn entry(
        kind: &str,
        at: i64,
        stan: i64,
        original: Option<i64>,
        response: &str,
    ) -> JournalEntry {
        JournalEntry {
            received_at: at,
            terminal_id: "10000001".into(),
            kind: kind.into(),
            batch: Some(1),
            stan: Some(stan),
            original_batch: original.map(|_| 1),
            original_stan: original,
            amount_minor: Some(2_500),
            response: Some(response.into()),
            ..JournalEntry::default()
        }
    }

    fn states(events: &[Event]) -> Vec<(&'static str, i64)> {
        events.iter().map(|event| (event.state, event.at)).collect()
    }

    #[test]
    fn a_sale_refunded_twice_in_part_then_settled() {
        let batch = [
            entry("Sale", 1_000, 5, None, "00"),
            entry("Sale", 1_500, 6, None, "00"),
            // Another sale's refund, a declined refund, and two refunds of ours.
            entry("Refund", 2_000, 7, Some(6), "00"),
            entry("Refund", 2_500, 8, Some(5), "51"),
            entry("Refund", 3_000, 9, Some(5), "00"),
            entry("Refund", 3_500, 10, Some(5), "00"),
            entry("BatchSettlement", 4_000, 11, None, "00"),
        ];
        let events = timeline(&record("00"), &batch);
        assert_eq!(
            states(&events),
            [
                ("authorized", 1_000),
                ("refunded", 3_000),
                ("refunded", 3_500),
                ("settled", 4_000)
            ]
        );
        assert_eq!(events[1].amount_minor, Some(2_500));
        assert_eq!(events[3].amount_minor, None);
    }

    #[test]
    fn a_voided_sale_a_reversed_sale_and_a_declined_one() {
        let voided = [
            entry("SaleVoid", 2_000, 6, Some(5), "00"),
            // A retransmission of the void, answered from the journal.
            entry("SaleVoid", 2_100, 6, Some(5), "00"),
        ];
        assert_eq!(
            states(&timeline(&record("00"), &voided)),
            [("authorized", 1_000), ("voided", 2_000)]
        );
        let reversed = [entry("Reversal", 2_000, 5, None, "00")];
        assert_eq!(
            states(&timeline(&record("00"), &reversed)),
            [("authorized", 1_000), ("reversed", 2_000)]
        );
        assert_eq!(
            states(&timeline(&record("51"), &voided)),
            [("declined", 1_000)]
        );
    }
}
