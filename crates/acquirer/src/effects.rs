//! What a card sale does to the books, as ledger transfers, and the codes that identify it.
//!
//! A sale is two transfers that succeed or fail together (linked): in the issuer's books the
//! card's account pays the issuer's settlement account; in the acquirer's books the issuer owes
//! the acquirer, which owes the merchant. Each transfer's id comes from the message's business
//! key (terminal, batch, trace number), so a repeated message finds the original transfer
//! instead of paying twice.

use issuer::BusinessDate;
use ledger::{AccountId, TransferCluster, TransferId, TransferRequest};
use money::Amount;
use store::directory::CardProduct;

/// The business key of a terminal message: the terminal, its batch and its trace number (STAN)
/// identify one message for the terminal's lifetime.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BusinessKey {
    pub terminal_id: String,
    pub batch: u32,
    pub stan: u32,
}

impl BusinessKey {
    /// The id of one of the message's transfers (`purpose` tells them apart). Ids cluster by
    /// terminal and batch, in trace-number order (`TransferId::clustered`): a message's
    /// transfers share a page of the ledger's index and a terminal's next message lands beside
    /// its last, instead of two random pages per sale in the writer's commit.
    pub fn transfer_id(&self, purpose: &str) -> TransferId {
        let [id] = self.transfer_ids([purpose]);
        id
    }

    /// The ids of several of the message's transfers, with the digest of their terminal and
    /// batch computed once (a sale's two ids took four SHA-256 digests, now three).
    pub fn transfer_ids<const N: usize>(&self, purposes: [&str; N]) -> [TransferId; N] {
        let cluster = format!("{}|{:06}", self.terminal_id.trim(), self.batch);
        let cluster = TransferCluster::new("terminal-message", cluster.as_bytes());
        purposes.map(|purpose| cluster.id(self.stan, purpose))
    }
}

/// The accounts a sale moves money between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaleAccounts {
    /// The card's account at its issuer: a deposit (debit card) or a credit line.
    pub card: AccountId,
    pub product: CardProduct,
    pub issuer_settlement: AccountId,
    pub acquirer_due_from_issuers: AccountId,
    pub merchant_payable: AccountId,
}

/// The two linked transfers of a sale.
pub fn sale_transfers(
    key: &BusinessKey,
    accounts: &SaleAccounts,
    amount: Amount,
) -> Vec<TransferRequest> {
    let [issuer_id, acquirer_id] = key.transfer_ids(["sale/issuer", "sale/acquirer"]);
    let issuer = match accounts.product {
        // A deposit pays out: debit the card's account.
        CardProduct::Debit => {
            TransferRequest::posted(issuer_id, accounts.card, accounts.issuer_settlement, amount)
        }
        // A credit line is drawn by crediting it (credits may not exceed the limit debited in).
        CardProduct::Credit => {
            TransferRequest::posted(issuer_id, accounts.issuer_settlement, accounts.card, amount)
        }
    };
    let acquirer = TransferRequest::posted(
        acquirer_id,
        accounts.acquirer_due_from_issuers,
        accounts.merchant_payable,
        amount,
    );
    vec![issuer.linked(), acquirer]
}

/// How long a pre-authorization holds the money before it lapses by itself: 30 days, the usual
/// validity of a hotel or car-rental pre-authorization in China.
pub const PREAUTHORIZATION_HOLD_SECONDS: u32 = 30 * 24 * 3_600;

/// The hold of a pre-authorization (预授权), in the issuer's books only: nothing is owed to the
/// merchant until completion.
pub fn preauthorization_transfer(
    key: &BusinessKey,
    accounts: &SaleAccounts,
    amount: Amount,
) -> TransferRequest {
    let id = key.transfer_id("preauth/issuer");
    match accounts.product {
        CardProduct::Debit => TransferRequest::pending(
            id,
            accounts.card,
            accounts.issuer_settlement,
            amount,
            PREAUTHORIZATION_HOLD_SECONDS,
        ),
        CardProduct::Credit => TransferRequest::pending(
            id,
            accounts.issuer_settlement,
            accounts.card,
            amount,
            PREAUTHORIZATION_HOLD_SECONDS,
        ),
    }
}

/// The completion (预授权完成) of the pre-authorization `original`: its hold (`hold`: the
/// pre-authorization's, or the one a reversed completion placed again, `completion.rs`) posted
/// for `amount` (at most the hold; the rest is released) and the merchant credited, linked,
/// under `purpose` (the completion's slot, `follow_up.rs`). The completion message's trace
/// number travels in the transfers (a second completion of the same pre-authorization is
/// another content under the same ids).
pub fn completion_transfers(
    original: &BusinessKey,
    purpose: &str,
    hold: TransferId,
    accounts: &SaleAccounts,
    amount: Amount,
    completion_stan: u32,
) -> Vec<TransferRequest> {
    vec![
        TransferRequest::post(
            original.transfer_id(&format!("{purpose}/issuer")),
            hold,
            Some(amount),
        )
        .user_data(u128::from(completion_stan))
        .linked(),
        TransferRequest::posted(
            original.transfer_id(&format!("{purpose}/acquirer")),
            accounts.acquirer_due_from_issuers,
            accounts.merchant_payable,
            amount,
        )
        .user_data(u128::from(completion_stan)),
    ]
}

/// The purpose of a follow-up's transfers in slot `generation` of `purpose` under its
/// original's key (`acquirer::reversal` tells why follow-ups take slots): `purpose` itself in
/// the first slot (the ids every follow-up took before there were slots), `purpose#generation`
/// after it. A follow-up is found in its slot by its trace number, in its transfers' user data.
pub fn in_slot(purpose: &str, generation: u32) -> String {
    if generation == 0 {
        purpose.to_owned()
    } else {
        format!("{purpose}#{generation}")
    }
}

/// How many follow-ups of one purpose an original takes, reversed ones included: a sale voided
/// and the void reversed 64 times is not a cashier's mistake. Past it a follow-up gets 12, and
/// a reversal has nothing to mark (nothing can post).
pub const FOLLOW_UP_SLOTS: u32 = 64;

/// Retrieval reference number (field 37, 12 characters) and authorization code (field 38, 6)
/// of an approved transfer, derived from its id so that a repeated message gets the same ones.
/// Both take all of the id's bits: a terminal's clustered ids share their high half.
pub fn approval_codes(transfer: TransferId) -> (String, String) {
    let value = transfer.0;
    let rrn = format!("{:012}", (value % 1_000_000_000_000) as u64);
    let folded = ((value >> 64) as u64) ^ (value as u64).rotate_left(29);
    let auth = format!("{:06}", folded % 1_000_000);
    (rrn, auth)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The acquirer's business date at `unix_seconds`: the calendar date in China Standard Time
/// (UTC+8, no daylight saving), the acquirer's time zone by default.
pub fn business_date(unix_seconds: i64) -> BusinessDate {
    const UTC_OFFSET_SECONDS: i64 = 8 * 3_600;
    let (year, month, day) =
        civil_from_days((unix_seconds + UTC_OFFSET_SECONDS).div_euclid(86_400));
    BusinessDate {
        year: year.clamp(0, i64::from(u16::MAX)) as u16,
        month: month as u8,
        day: day as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use money::Currency;

    fn accounts(product: CardProduct) -> SaleAccounts {
        SaleAccounts {
            card: AccountId(1),
            product,
            issuer_settlement: AccountId(2),
            acquirer_due_from_issuers: AccountId(3),
            merchant_payable: AccountId(4),
        }
    }

    #[test]
    fn a_sale_is_two_linked_transfers_with_ids_from_the_business_key() {
        let key = BusinessKey {
            terminal_id: "10000001".into(),
            batch: 1,
            stan: 42,
        };
        let amount = Amount::new(1_200, Currency::CNY);
        let debit = sale_transfers(&key, &accounts(CardProduct::Debit), amount);
        assert!(debit[0].linked && !debit[1].linked);
        assert_eq!(
            debit,
            sale_transfers(&key, &accounts(CardProduct::Debit), amount),
            "the same message, the same transfers"
        );
        let other = BusinessKey {
            stan: 43,
            ..key.clone()
        };
        assert_ne!(
            debit[0].id,
            sale_transfers(&other, &accounts(CardProduct::Debit), amount)[0].id
        );
        let credit = sale_transfers(&key, &accounts(CardProduct::Credit), amount);
        assert!(
            matches!(
                credit[0].kind,
                ledger::TransferKind::Posted {
                    debit: AccountId(2),
                    credit: AccountId(1),
                    ..
                }
            ),
            "a credit line is drawn by a credit"
        );
    }

    #[test]
    fn a_follow_ups_first_slot_keeps_its_ids_and_the_next_ones_are_others() {
        let key = BusinessKey {
            terminal_id: "10000001".into(),
            batch: 1,
            stan: 7,
        };
        assert_eq!(in_slot("undo", 0), "undo");
        assert_eq!(in_slot("undo", 2), "undo#2");
        let ids: std::collections::HashSet<_> = (0..FOLLOW_UP_SLOTS)
            .map(|slot| key.transfer_id(&format!("{}/issuer", in_slot("undo", slot))))
            .collect();
        assert_eq!(ids.len(), FOLLOW_UP_SLOTS as usize);
    }

    #[test]
    fn successive_sales_of_a_terminal_get_different_codes() {
        let key = |stan| BusinessKey {
            terminal_id: "10000001".into(),
            batch: 1,
            stan,
        };
        let codes: std::collections::HashSet<_> = (1..=200)
            .map(|stan| approval_codes(key(stan).transfer_id("sale/issuer")))
            .collect();
        let auths: std::collections::HashSet<_> = codes.iter().map(|(_, auth)| auth).collect();
        let rrns: std::collections::HashSet<_> = codes.iter().map(|(rrn, _)| rrn).collect();
        assert_eq!(rrns.len(), 200);
        // Six digits for 200 sales: a few birthday collisions at most, never one code for all.
        assert!(auths.len() > 190, "{} distinct auth codes", auths.len());
    }

    #[test]
    fn approval_codes_are_stable_digits() {
        let (rrn, auth) = approval_codes(TransferId(0x1234_5678_9ABC_DEF0_1122_3344_5566_7788));
        assert_eq!((rrn.len(), auth.len()), (12, 6));
        assert!(rrn.bytes().chain(auth.bytes()).all(|b| b.is_ascii_digit()));
        assert_eq!(
            approval_codes(TransferId(0x1234_5678_9ABC_DEF0_1122_3344_5566_7788)),
            (rrn, auth)
        );
    }

    #[test]
    fn business_dates_are_in_china_standard_time() {
        // 2026-11-25T15:59:59Z is 23:59:59 in Shanghai; a second later it is the 26th there.
        assert_eq!(
            business_date(1_795_622_399),
            BusinessDate {
                year: 2026,
                month: 11,
                day: 25
            }
        );
        assert_eq!(
            business_date(1_795_622_400),
            BusinessDate {
                year: 2026,
                month: 11,
                day: 26
            }
        );
        assert_eq!(
            business_date(0),
            BusinessDate {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        assert_eq!(
            business_date(951_753_600),
            BusinessDate {
                year: 2000,
                month: 2,
                day: 29
            },
            "leap day (2000-02-28T16:00Z)"
        );
    }
}
