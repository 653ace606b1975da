//! Helpers for tests and benchmarks of anything that stores the ledger: a deterministic random
//! workload and an independent recomputation of balances from transfers. Public so the `store`
//! conformance suite drives SQLite and PostgreSQL with exactly the same sequences.

use crate::types::*;
use money::{Amount, Currency};
use std::collections::BTreeMap;

/// One step of a workload: a batch of requests, or time passing followed by hold expiry.
#[derive(Clone, Debug)]
pub enum Step {
    Batch(Vec<TransferRequest>),
    /// Advance the clock by this many seconds, then expire due holds.
    Advance(u32),
}

/// Books used by [`workload`]: one institution, CNY, a funding account without constraint and
/// `customers` deposit accounts that must not go negative.
pub fn workload_accounts(customers: u128) -> Vec<AccountSpec> {
    let bank = InstitutionId(7);
    let mut specs = vec![AccountSpec::new(AccountId(1), bank, Currency::CNY, 1)];
    for index in 0..customers {
        specs.push(
            AccountSpec::new(AccountId(100 + index), bank, Currency::CNY, 2)
                .constraint(BalanceConstraint::DebitsMustNotExceedCredits),
        );
    }
    specs
}

/// A small deterministic generator (SplitMix64) so workloads need no dependency and are the
/// same on every platform.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

/// A random mix of funding, payments, holds, partial and full posts, voids, expiries, exact
/// retries, conflicting retries, linked chains (some failing), zero amounts and unknown
/// accounts over the accounts of [`workload_accounts`]`(customers)`.
pub fn workload(seed: u64, customers: u128, steps: usize) -> Vec<Step> {
    let mut random = SplitMix::new(seed);
    let mut issued: Vec<TransferRequest> = Vec::new();
    let mut next_id: u128 = 1;
    let mut fresh = || {
        next_id += 1;
        TransferId(next_id)
    };
    let customer =
        |random: &mut SplitMix| AccountId(100 + u128::from(random.below(customers as u64)));
    let cny = |minor: u64| Amount::new(minor as i64, Currency::CNY);
    let mut out = Vec::with_capacity(steps);
    for _ in 0..steps {
        if random.below(10) == 0 {
            out.push(Step::Advance(random.below(40) as u32));
            continue;
        }
        let size = 1 + random.below(6) as usize;
        let mut batch = Vec::with_capacity(size);
        for _ in 0..size {
            let holds: Vec<TransferId> = issued
                .iter()
                .filter(|request| matches!(request.kind, TransferKind::Pending { .. }))
                .map(|request| request.id)
                .collect();
            let request = match random.below(12) {
                0 | 1 => TransferRequest::posted(
                    fresh(),
                    AccountId(1),
                    customer(&mut random),
                    cny(1 + random.below(100_000)),
                ),
                2 | 3 => TransferRequest::posted(
                    fresh(),
                    customer(&mut random),
                    customer(&mut random),
                    cny(1 + random.below(20_000)),
                ),
                4 | 5 => TransferRequest::pending(
                    fresh(),
                    customer(&mut random),
                    AccountId(1),
                    cny(1 + random.below(20_000)),
                    random.below(60) as u32,
                ),
                6 if !holds.is_empty() => {
                    let hold = holds[random.below(holds.len() as u64) as usize];
                    let amount = if random.below(2) == 0 {
                        None
                    } else {
                        Some(cny(1 + random.below(20_000)))
                    };
                    TransferRequest::post(fresh(), hold, amount)
                }
                7 if !holds.is_empty() => {
                    TransferRequest::void(fresh(), holds[random.below(holds.len() as u64) as usize])
                }
                8 if !issued.is_empty() => issued[random.below(issued.len() as u64) as usize],
                9 if !issued.is_empty() => {
                    let original = issued[random.below(issued.len() as u64) as usize];
                    original.code(original.code.wrapping_add(1))
                }
                10 => TransferRequest::posted(
                    fresh(),
                    customer(&mut random),
                    AccountId(1),
                    cny(random.below(3)),
                ),
                11 => TransferRequest::posted(
                    fresh(),
                    AccountId(9_999),
                    customer(&mut random),
                    cny(5),
                ),
                _ => TransferRequest::posted(
                    fresh(),
                    customer(&mut random),
                    AccountId(1),
                    cny(1 + random.below(5_000)),
                ),
            };
            let linked = random.below(5) == 0;
            let request = if linked { request.linked() } else { request };
            issued.push(request);
            batch.push(request);
        }
        if let Some(last) = batch.last_mut() {
            // Most batches close their chains; an open chain now and then tests that refusal.
            if random.below(8) != 0 {
                last.linked = false;
            }
        }
        out.push(Step::Batch(batch));
    }
    out
}

/// Account totals recomputed from the transfers alone, independently of the engine's
/// incremental bookkeeping: posted transfers and posts count as posted, live holds as pending.
pub fn recompute_totals<'a>(
    transfers: impl IntoIterator<Item = &'a Transfer>,
) -> BTreeMap<AccountId, [i64; 4]> {
    let mut totals: BTreeMap<AccountId, [i64; 4]> = BTreeMap::new();
    for transfer in transfers {
        let value = transfer.amount.minor();
        let (pending, posted) = match (transfer.request.kind, transfer.status) {
            (TransferKind::Posted { .. } | TransferKind::PostPending { .. }, _) => (0, value),
            (TransferKind::Pending { .. }, Some(PendingStatus::Pending)) => (value, 0),
            _ => (0, 0),
        };
        let debit = totals.entry(transfer.debit).or_default();
        debit[0] += pending;
        debit[1] += posted;
        let credit = totals.entry(transfer.credit).or_default();
        credit[2] += pending;
        credit[3] += posted;
    }
    totals
}

/// Compares stored accounts against [`recompute_totals`]; describes the first difference.
pub fn verify_totals<'a>(
    accounts: impl IntoIterator<Item = &'a Account>,
    transfers: impl IntoIterator<Item = &'a Transfer>,
) -> Result<(), String> {
    let expected = recompute_totals(transfers);
    for account in accounts {
        let want = expected.get(&account.id).copied().unwrap_or_default();
        let have = [
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        ];
        if want != have {
            return Err(format!(
                "account {:?}: totals {have:?} but transfers say {want:?}",
                account.id
            ));
        }
    }
    Ok(())
}
