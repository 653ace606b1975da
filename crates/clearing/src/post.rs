//! A cycle's postings in the acquirer's books, and the record that closes the cycle.
//!
//! | purpose | per | debit | credit | code |
//! |---|---|---|---|---|
//! | transactions | counterparty, currency | due from that counterparty | due from issuers (pooled) | 1201 |
//! | interchange | counterparty, currency | interchange expense | due from that counterparty | 1202 |
//! | mdr | merchant, currency | merchant's settlement account | MDR income | 1203 |
//! | payout | merchant, currency | merchant's settlement account | merchant payouts | 1204 |
//! | carry | merchant, currency | due from the merchant | merchant's settlement account | 1205 |
//!
//! The carry moves the change in what the merchant owes from earlier cycles: a negative net
//! not yet recovered is moved out of its settlement account into "due from the merchant", and a
//! later positive net pays it back first (the carry then goes the other way).
//!
//! A negative figure swaps debit and credit; a zero one posts nothing. Ids come from (date,
//! counterparty or merchant, currency, purpose). All of a cycle's postings are one linked
//! chain in one submission: the ledger commits them together or refuses them together.
//!
//! The cycle is recorded as closed (store meta `clearing/cycle/YYYY-MM-DD`) after its
//! postings commit. A crash between the two leaves the postings without the record; the next
//! run of the date computes the same postings, finds them all (same ids, same content),
//! records the cycle and posts nothing twice.

use crate::ClearingError;
use crate::chart;
use crate::compute::Settlement;
use crate::cycle::format_date;
use issuer::BusinessDate;
use ledger::{AccountId, Outcome, TransferError, TransferId, TransferKind, TransferRequest};
use money::{Amount, Currency};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use store::Store;

pub const CODE_CLEARING: u16 = 1201;
pub const CODE_INTERCHANGE: u16 = 1202;
pub const CODE_MDR: u16 = 1203;
pub const CODE_PAYOUT: u16 = 1204;
pub const CODE_CARRY: u16 = 1205;

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The postings were made now, and the cycle recorded as closed.
    Posted { transfers: usize },
    /// The postings were there already (an earlier run stopped before recording the cycle);
    /// the cycle is recorded as closed now.
    FoundPosted { transfers: usize },
    /// A closed cycle checked again: nothing posted; each difference between the books and a
    /// fresh computation is listed (none when the journal and ledger are unchanged).
    Rerun { differences: Vec<String> },
}

/// A closed cycle, as kept in the store's meta table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleRecord {
    pub date: String,
    pub closed_at_unix: i64,
    pub transfers: usize,
    /// SHA-256 over the postings (id, accounts, amount, code), in hex.
    pub digest: String,
    pub merchants: usize,
    pub counterparties: usize,
    pub breaks: usize,
    /// What each merchant owed from earlier cycles when this one was posted (non-zero only),
    /// so that a rerun computes the same carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carried_in: Vec<Carried>,
}

/// A merchant's debt carried into a cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    pub merchant_id: String,
    /// ISO 4217 alphabetic.
    pub currency: String,
    pub minor: i64,
}

impl CycleRecord {
    /// The record's carried debts, as `compute` takes them.
    pub fn carried(&self) -> crate::compute::CarriedIn {
        self.carried_in
            .iter()
            .filter_map(|carried| {
                Currency::from_alpha(&carried.currency)
                    .ok()
                    .map(|currency| ((carried.merchant_id.clone(), currency), carried.minor))
            })
            .collect()
    }
}

/// What each of `merchants` (id, currency) owes from earlier cycles, from the books: the
/// balance of its "due from the merchant" account.
pub async fn carried_in(
    store: &Store,
    acquirer: ledger::InstitutionId,
    merchants: &BTreeSet<(String, Currency)>,
) -> Result<crate::compute::CarriedIn, ClearingError> {
    let ids: BTreeMap<AccountId, (String, Currency)> = merchants
        .iter()
        .map(|(merchant, currency)| {
            (
                chart::due_from_merchant(acquirer, merchant, *currency),
                (merchant.clone(), *currency),
            )
        })
        .collect();
    let mut out = crate::compute::CarriedIn::new();
    for chunk in ids.keys().copied().collect::<Vec<_>>().chunks(1_000) {
        for account in store.accounts(chunk.to_vec()).await? {
            let owed = i64::try_from(
                i128::from(account.debits_posted) - i128::from(account.credits_posted),
            )
            .map_err(|_| ClearingError::TooLarge("a carried debt does not fit".to_owned()))?;
            if owed != 0
                && let Some(key) = ids.get(&account.id)
            {
                out.insert(key.clone(), owed);
            }
        }
    }
    Ok(out)
}

impl CycleRecord {
    pub fn closed_at_utc(&self) -> String {
        let date = acquirer::effects::business_date(self.closed_at_unix - 8 * 3_600);
        let of_day = self.closed_at_unix.rem_euclid(86_400);
        format!(
            "{} {:02}:{:02}:{:02}",
            format_date(date),
            of_day / 3_600,
            of_day % 3_600 / 60,
            of_day % 60
        )
    }
}

fn meta_key(date: &str) -> String {
    format!("clearing/cycle/{date}")
}

/// The record of `date`'s cycle, when it is closed.
pub async fn record_of(
    store: &Store,
    date: BusinessDate,
) -> Result<Option<CycleRecord>, ClearingError> {
    let Some(text) = store.meta(&meta_key(&format_date(date))).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|error| {
        ClearingError::Store(store::StoreError::Corrupt(format!(
            "the record of the cycle of {}: {error}",
            format_date(date)
        )))
    })
}

fn transfer_id(date: &str, party: &str, currency: Currency, purpose: &str) -> TransferId {
    TransferId::from_key(
        "clearing",
        format!("{date}|{party}|{}|{purpose}", currency.alpha()).as_bytes(),
    )
}

/// `amount` from `debit` to `credit` (the other way when negative); nothing when zero.
fn movement(
    id: TransferId,
    debit: AccountId,
    credit: AccountId,
    amount: Amount,
    code: u16,
) -> Option<TransferRequest> {
    let minor = amount.minor();
    let (debit, credit) = if minor < 0 {
        (credit, debit)
    } else {
        (debit, credit)
    };
    (minor != 0).then(|| {
        TransferRequest::posted(
            id,
            debit,
            credit,
            Amount::new(minor.abs(), amount.currency()),
        )
        .code(code)
    })
}

/// The cycle's postings, linked into one chain.
pub fn transfers(settlement: &Settlement) -> Result<Vec<TransferRequest>, ClearingError> {
    let date = format_date(settlement.window.date);
    let acquirer = settlement.acquirer;
    let mut out = Vec::new();
    for party in &settlement.counterparties {
        let name = format!("counterparty/{}", party.issuer.0);
        let currency = party.currency;
        let due = chart::due_from_counterparty(acquirer, party.issuer, currency);
        let transactions = party
            .gross
            .checked_sub(party.refunds)
            .and_then(|rest| rest.checked_sub(party.chargebacks))
            .map_err(|error| {
                ClearingError::TooLarge(format!("a cycle total does not fit: {error}"))
            })?;
        out.extend(movement(
            transfer_id(&date, &name, currency, "transactions"),
            due,
            acquirer::chart::acquirer_due_from_issuers(acquirer, currency),
            transactions,
            CODE_CLEARING,
        ));
        out.extend(movement(
            transfer_id(&date, &name, currency, "interchange"),
            chart::interchange_expense(acquirer, currency),
            due,
            party.interchange,
            CODE_INTERCHANGE,
        ));
    }
    for merchant in &settlement.merchants {
        let name = format!("merchant/{}", merchant.merchant_id);
        let currency = merchant.currency;
        out.extend(movement(
            transfer_id(&date, &name, currency, "mdr"),
            merchant.account,
            chart::mdr_income(acquirer, currency),
            merchant.fees,
            CODE_MDR,
        ));
        out.extend(movement(
            transfer_id(&date, &name, currency, "payout"),
            merchant.account,
            chart::merchant_payouts(acquirer, currency),
            merchant.payout,
            CODE_PAYOUT,
        ));
        let carry = merchant
            .carried_out
            .checked_sub(merchant.carried_in)
            .map_err(|error| {
                ClearingError::TooLarge(format!("a carried debt does not fit: {error}"))
            })?;
        out.extend(movement(
            transfer_id(&date, &name, currency, "carry"),
            chart::due_from_merchant(acquirer, &merchant.merchant_id, currency),
            merchant.account,
            carry,
            CODE_CARRY,
        ));
    }
    if out.len() > ledger::MAX_BATCH_SIZE {
        return Err(ClearingError::TooLarge(format!(
            "the cycle needs {} postings, more than one ledger batch holds ({})",
            out.len(),
            ledger::MAX_BATCH_SIZE
        )));
    }
    let last = out.len().saturating_sub(1);
    Ok(out
        .into_iter()
        .enumerate()
        .map(|(index, request)| {
            if index < last {
                request.linked()
            } else {
                request
            }
        })
        .collect())
}

fn digest(transfers: &[TransferRequest]) -> String {
    let mut hasher = Sha256::new();
    for request in transfers {
        if let TransferKind::Posted {
            debit,
            credit,
            amount,
        } = request.kind
        {
            hasher.update(format!(
                "{:032x}|{:032x}|{:032x}|{}|{}|{}\n",
                request.id.0,
                debit.0,
                credit.0,
                amount.minor(),
                amount.currency().alpha(),
                request.code
            ));
        }
    }
    hex::encode(hasher.finalize())
}

/// Refuses a cycle whose merchants, counterparties or the acquirer lack an account, before
/// anything is written; then opens the acquirer's end-of-day accounts (idempotent).
async fn check_accounts(store: &Store, settlement: &Settlement) -> Result<(), ClearingError> {
    let acquirer = settlement.acquirer;
    let mut wanted: BTreeSet<AccountId> = BTreeSet::new();
    let mut currencies: BTreeMap<Currency, BTreeSet<ledger::InstitutionId>> = BTreeMap::new();
    let mut merchants: BTreeMap<Currency, Vec<&str>> = BTreeMap::new();
    for merchant in &settlement.merchants {
        wanted.insert(merchant.account);
        currencies.entry(merchant.currency).or_default();
        merchants
            .entry(merchant.currency)
            .or_default()
            .push(merchant.merchant_id.as_str());
    }
    for party in &settlement.counterparties {
        wanted.insert(acquirer::chart::issuer_settlement(
            party.issuer,
            party.currency,
        ));
        currencies
            .entry(party.currency)
            .or_default()
            .insert(party.issuer);
    }
    for currency in currencies.keys() {
        wanted.insert(acquirer::chart::acquirer_due_from_issuers(
            acquirer, *currency,
        ));
    }
    let found: BTreeMap<AccountId, Currency> = store
        .accounts(wanted.into_iter().collect())
        .await?
        .into_iter()
        .map(|account| (account.id, account.currency))
        .collect();
    let has = |id: AccountId, currency: Currency| found.get(&id) == Some(&currency);
    for merchant in &settlement.merchants {
        if !has(merchant.account, merchant.currency) {
            return Err(ClearingError::MerchantWithoutAccount {
                merchant_id: merchant.merchant_id.clone(),
                currency: merchant.currency.alpha(),
            });
        }
    }
    for party in &settlement.counterparties {
        if !has(
            acquirer::chart::issuer_settlement(party.issuer, party.currency),
            party.currency,
        ) {
            return Err(ClearingError::CounterpartyWithoutAccount {
                issuer: party.issuer.0,
                currency: party.currency.alpha(),
            });
        }
    }
    for currency in currencies.keys() {
        if !has(
            acquirer::chart::acquirer_due_from_issuers(acquirer, *currency),
            *currency,
        ) {
            return Err(ClearingError::AcquirerWithoutAccount {
                currency: currency.alpha(),
            });
        }
    }
    let specs: Vec<_> = currencies
        .into_iter()
        .flat_map(|(currency, issuers)| {
            chart::cycle_accounts(
                acquirer,
                currency,
                issuers,
                merchants.get(&currency).cloned().unwrap_or_default(),
            )
        })
        .collect();
    for (spec, opened) in specs
        .iter()
        .zip(store.create_accounts(specs.clone()).await?)
    {
        if let Err(error) = opened {
            return Err(ClearingError::Refused(format!(
                "account {:032x} (code {}): {error}",
                spec.id.0, spec.code
            )));
        }
    }
    Ok(())
}

/// Posts the cycle as one chain and records it as closed.
pub(crate) async fn post(
    store: &Store,
    settlement: &Settlement,
    transfers: Vec<TransferRequest>,
    now_unix_seconds: i64,
) -> Result<(Status, CycleRecord), ClearingError> {
    check_accounts(store, settlement).await?;
    let date = format_date(settlement.window.date);
    let record = CycleRecord {
        date: date.clone(),
        closed_at_unix: now_unix_seconds,
        transfers: transfers.len(),
        digest: digest(&transfers),
        merchants: settlement.merchants.len(),
        counterparties: settlement.counterparties.len(),
        breaks: settlement.breaks.len(),
        carried_in: settlement
            .merchants
            .iter()
            .filter(|merchant| merchant.carried_in.minor() != 0)
            .map(|merchant| Carried {
                merchant_id: merchant.merchant_id.clone(),
                currency: merchant.currency.alpha().to_owned(),
                minor: merchant.carried_in.minor(),
            })
            .collect(),
    };
    let count = transfers.len();
    let text = serde_json::to_string(&record)
        .map_err(|error| ClearingError::Refused(format!("the cycle record: {error}")))?;
    // The chain and the closed cycle's record commit in one transaction, or neither does.
    let results = store
        .submit_recording(transfers.clone(), &meta_key(&date), &text)
        .await?;
    let refusal = results
        .iter()
        .zip(&transfers)
        .find_map(|(result, request)| match result {
            Err(error) if *error != TransferError::LinkedEventFailed => Some((*error, request)),
            _ => None,
        });
    if let Some((error, request)) = refusal {
        return Err(match error {
            TransferError::ExistsWithDifferentContent => ClearingError::PostedDifferently {
                date,
                what: format!("transfer {:032x}, code {}", request.id.0, request.code),
            },
            other => ClearingError::Refused(format!(
                "transfer {:032x}, code {}: {other}",
                request.id.0, request.code
            )),
        });
    }
    let created = results
        .iter()
        .filter(|result| matches!(result, Ok(Outcome::Created(_))))
        .count();
    let status = if created == 0 && count > 0 {
        Status::FoundPosted { transfers: count }
    } else {
        Status::Posted { transfers: count }
    };
    Ok((status, record))
}

/// What differs between the closed cycle's books and a fresh computation of it.
pub(crate) async fn differences(
    store: &Store,
    settlement: &Settlement,
    transfers: &[TransferRequest],
    record: &CycleRecord,
) -> Result<Vec<String>, ClearingError> {
    let mut out = Vec::new();
    if digest(transfers) != record.digest || transfers.len() != record.transfers {
        out.push(format!(
            "the postings computed now ({}) differ from those the cycle closed with ({})",
            transfers.len(),
            record.transfers
        ));
    }
    for request in transfers {
        match store.transfer(request.id).await? {
            Some(found) if found.request.kind == request.kind => {}
            Some(found) => out.push(format!(
                "transfer {:032x} (code {}) was posted for {} {}, now computed as {}",
                request.id.0,
                request.code,
                found.amount.currency().alpha(),
                found.amount.format_major(),
                describe(&request.kind)
            )),
            None => out.push(format!(
                "transfer {:032x} (code {}) for {} was not posted when the cycle closed",
                request.id.0,
                request.code,
                describe(&request.kind)
            )),
        }
    }
    if settlement.breaks.len() != record.breaks {
        out.push(format!(
            "{} breaks now, {} when the cycle closed",
            settlement.breaks.len(),
            record.breaks
        ));
    }
    Ok(out)
}

fn describe(kind: &TransferKind) -> String {
    match kind {
        TransferKind::Posted { amount, .. } | TransferKind::Pending { amount, .. } => {
            format!("{} {}", amount.currency().alpha(), amount.format_major())
        }
        _ => "a hold's change".to_owned(),
    }
}
