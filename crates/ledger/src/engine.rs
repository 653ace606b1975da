//! The state machine: runs a batch of transfer requests against a [`LedgerState`] and returns
//! per-request results and the [`Changes`] to persist. All rules of the ledger live here, once,
//! so every store behaves identically.

use crate::types::*;
use money::Currency;
use std::collections::BTreeMap;

/// Read access to committed ledger state. Stores implement it over their tables (prefetching
/// what a batch touches); [`crate::MemoryLedger`] implements it over hash maps.
pub trait LedgerState {
    fn account(&self, id: AccountId) -> Option<Account>;
    fn transfer(&self, id: TransferId) -> Option<Transfer>;
}

/// Everything a batch changed: the final state of each touched account, the transfers created
/// (in order, with the final status of holds created in this batch), and new statuses of holds
/// created in earlier batches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Final state of every account the batch touched or opened.
    pub accounts: BTreeMap<AccountId, Account>,
    /// Accounts opened by the batch (to insert; the other entries of `accounts` are updates).
    pub opened: Vec<AccountId>,
    pub created: Vec<Transfer>,
    pub statuses: BTreeMap<TransferId, PendingStatus>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.created.is_empty() && self.statuses.is_empty()
    }

    /// Accounts opened by the batch, with their final totals.
    pub fn opened_accounts(&self) -> impl Iterator<Item = &Account> {
        self.opened.iter().filter_map(|id| self.accounts.get(id))
    }

    /// Accounts that existed before the batch and changed.
    pub fn updated_accounts(&self) -> impl Iterator<Item = &Account> {
        let opened: IdSet<AccountId> = self.opened.iter().copied().collect();
        self.accounts
            .values()
            .filter(move |account| !opened.contains(&account.id))
    }
}

/// Books that do not balance: found on load, this means the database was corrupted or edited.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "books of institution {} in {} do not balance: debits {debits_posted} posted / {debits_pending} pending, credits {credits_posted} posted / {credits_pending} pending",
    institution.0,
    currency
)]
pub struct UnbalancedBooks {
    pub institution: InstitutionId,
    pub currency: Currency,
    pub debits_posted: i128,
    pub credits_posted: i128,
    pub debits_pending: i128,
    pub credits_pending: i128,
}

#[derive(Default)]
struct Totals {
    debits_posted: i128,
    credits_posted: i128,
    debits_pending: i128,
    credits_pending: i128,
}

impl Totals {
    fn add(&mut self, account: &Account, sign: i128) {
        self.debits_posted += sign * i128::from(account.debits_posted);
        self.credits_posted += sign * i128::from(account.credits_posted);
        self.debits_pending += sign * i128::from(account.debits_pending);
        self.credits_pending += sign * i128::from(account.credits_pending);
    }

    fn balanced(&self) -> bool {
        self.debits_posted == self.credits_posted && self.debits_pending == self.credits_pending
    }
}

/// Σ debits = Σ credits (posted and pending) for every institution and currency.
pub fn check_books<'a>(
    accounts: impl IntoIterator<Item = &'a Account>,
) -> Result<(), UnbalancedBooks> {
    let mut totals: BTreeMap<(InstitutionId, Currency), Totals> = BTreeMap::new();
    for account in accounts {
        totals
            .entry((account.institution, account.currency))
            .or_default()
            .add(account, 1);
    }
    for ((institution, currency), total) in totals {
        if !total.balanced() {
            return Err(UnbalancedBooks {
                institution,
                currency,
                debits_posted: total.debits_posted,
                credits_posted: total.credits_posted,
                debits_pending: total.debits_pending,
                credits_pending: total.credits_pending,
            });
        }
    }
    Ok(())
}

/// Committed state plus what this batch has done so far, with an undo log so that a failed
/// linked chain leaves no trace.
struct Overlay<'a, S> {
    base: &'a S,
    accounts: IdMap<AccountId, Account>,
    /// Accounts as the base had them, for the balance assertion at the end.
    originals: IdMap<AccountId, Account>,
    transfers: IdMap<TransferId, Transfer>,
    created: Vec<TransferId>,
    statuses: IdMap<TransferId, PendingStatus>,
    opened: Vec<AccountId>,
    undo: Vec<Undo>,
}

enum Undo {
    Account(AccountId, Option<Account>),
    Transfer(TransferId, Option<Transfer>),
    Created,
    Status(TransferId, Option<PendingStatus>),
}

impl<'a, S: LedgerState> Overlay<'a, S> {
    fn new(base: &'a S) -> Self {
        Overlay {
            base,
            accounts: IdMap::default(),
            originals: IdMap::default(),
            transfers: IdMap::default(),
            created: Vec::new(),
            statuses: IdMap::default(),
            opened: Vec::new(),
            undo: Vec::new(),
        }
    }

    fn account(&mut self, id: AccountId) -> Option<Account> {
        if let Some(account) = self.accounts.get(&id) {
            return Some(*account);
        }
        let account = self.base.account(id)?;
        self.originals.insert(id, account);
        Some(account)
    }

    fn transfer(&self, id: TransferId) -> Option<Transfer> {
        self.transfers
            .get(&id)
            .copied()
            .or_else(|| self.base.transfer(id))
    }

    fn put_account(&mut self, account: Account) {
        let previous = self.accounts.insert(account.id, account);
        self.undo.push(Undo::Account(account.id, previous));
    }

    fn create(&mut self, transfer: Transfer) {
        let previous = self.transfers.insert(transfer.id(), transfer);
        self.undo.push(Undo::Transfer(transfer.id(), previous));
        self.created.push(transfer.id());
        self.undo.push(Undo::Created);
    }

    fn set_status(&mut self, hold: Transfer, status: PendingStatus) {
        let id = hold.id();
        let previous_transfer = self.transfers.insert(
            id,
            Transfer {
                status: Some(status),
                ..hold
            },
        );
        self.undo.push(Undo::Transfer(id, previous_transfer));
        let previous_status = self.statuses.insert(id, status);
        self.undo.push(Undo::Status(id, previous_status));
    }

    fn commit_chain(&mut self) {
        self.undo.clear();
    }

    fn rollback_chain(&mut self) {
        while let Some(entry) = self.undo.pop() {
            match entry {
                Undo::Account(id, previous) => restore(&mut self.accounts, id, previous),
                Undo::Transfer(id, previous) => restore(&mut self.transfers, id, previous),
                Undo::Created => {
                    self.created.pop();
                }
                Undo::Status(id, previous) => restore(&mut self.statuses, id, previous),
            }
        }
    }

    fn into_changes(self) -> Changes {
        let created: Vec<Transfer> = self
            .created
            .iter()
            .filter_map(|id| self.transfers.get(id).copied())
            .collect();
        // A hold created in this session already carries its final status in `created`.
        let created_here: IdSet<TransferId> = self.created.iter().copied().collect();
        let statuses = self
            .statuses
            .into_iter()
            .filter(|(id, _)| !created_here.contains(id))
            .collect::<BTreeMap<_, _>>();
        assert_batch_balances(&self.originals, &self.accounts);
        Changes {
            accounts: self.accounts.into_iter().collect(),
            opened: self.opened,
            created,
            statuses,
        }
    }
}

fn restore<K: std::hash::Hash + Eq, V>(map: &mut IdMap<K, V>, key: K, previous: Option<V>) {
    match previous {
        Some(value) => {
            map.insert(key, value);
        }
        None => {
            map.remove(&key);
        }
    }
}

/// Every transfer adds the same amount to one debit and one credit total of the same books, so
/// the change in Σ debits must equal the change in Σ credits. A mismatch is a bug in this file:
/// crash rather than persist unbalanced books.
fn assert_batch_balances(
    originals: &IdMap<AccountId, Account>,
    accounts: &IdMap<AccountId, Account>,
) {
    let mut totals: BTreeMap<(InstitutionId, Currency), Totals> = BTreeMap::new();
    for (id, after) in accounts {
        let total = totals
            .entry((after.institution, after.currency))
            .or_default();
        total.add(after, 1);
        if let Some(before) = originals.get(id) {
            total.add(before, -1);
        }
    }
    for ((institution, currency), total) in totals {
        assert!(
            total.balanced(),
            "ledger invariant broken: batch unbalances books {} {currency}",
            institution.0
        );
    }
}

/// A batch in progress: any number of request lists, expiries and account openings run
/// against one working set, each seeing the effects of the ones before, and ending in one
/// [`Changes`]. Stores use one session per group commit.
pub struct Session<'a, S> {
    overlay: Overlay<'a, S>,
    requests: usize,
}

impl<'a, S: LedgerState> Session<'a, S> {
    pub fn new(state: &'a S) -> Self {
        Session {
            overlay: Overlay::new(state),
            requests: 0,
        }
    }

    /// Runs `requests` in order at time `now` (request *i* is stamped `now + i`, so timestamps
    /// are unique and increasing). Requests marked `linked` form chains that succeed or fail
    /// together; a chain never extends past the end of `requests`. Refused requests change
    /// nothing.
    pub fn execute(
        &mut self,
        requests: &[TransferRequest],
        now: Timestamp,
    ) -> Vec<Result<Outcome, TransferError>> {
        if requests.len() > MAX_BATCH_SIZE || self.requests + requests.len() > MAX_SESSION_SIZE {
            return vec![Err(TransferError::BatchTooLarge); requests.len()];
        }
        self.requests += requests.len();
        let mut results = Vec::with_capacity(requests.len());
        let mut start = 0;
        while start < requests.len() {
            let end = requests[start..]
                .iter()
                .position(|request| !request.linked)
                .map_or(requests.len(), |offset| start + offset + 1);
            run_chain(
                &mut self.overlay,
                &requests[start..end],
                start,
                now,
                &mut results,
            );
            start = end;
        }
        results
    }

    /// Expires the given holds that are still pending and past their expiry at `now`; others
    /// are left alone (they may have been posted or voided since the caller listed them).
    /// Returns how many expired.
    pub fn expire(&mut self, holds: &[TransferId], now: Timestamp) -> usize {
        let mut expired = 0;
        for id in holds {
            let Some(hold) = self.overlay.transfer(*id) else {
                continue;
            };
            let due = hold.expires_at.is_some_and(|expiry| expiry <= now);
            if hold.status == Some(PendingStatus::Pending)
                && due
                && release_hold(&mut self.overlay, &hold, 0).is_ok()
            {
                self.overlay.set_status(hold, PendingStatus::Expired);
                expired += 1;
            }
            self.overlay.commit_chain();
        }
        expired
    }

    /// Opens accounts. An id seen before with the same spec is accepted again (idempotent);
    /// with a different spec it is refused.
    pub fn open_accounts(
        &mut self,
        specs: &[AccountSpec],
        now: Timestamp,
    ) -> Vec<Result<Account, AccountError>> {
        let mut results = Vec::with_capacity(specs.len());
        for spec in specs {
            if spec.id.0 == 0 {
                results.push(Err(AccountError::IdMustNotBeZero));
                continue;
            }
            results.push(match self.overlay.account(spec.id) {
                Some(account) if account.spec() == *spec => Ok(account),
                Some(_) => Err(AccountError::ExistsWithDifferentContent),
                None => {
                    let account = Account::open(*spec, now);
                    self.overlay.put_account(account);
                    self.overlay.opened.push(account.id);
                    Ok(account)
                }
            });
            self.overlay.commit_chain();
        }
        results
    }

    /// The changes of everything run in this session, to persist together.
    pub fn finish(self) -> Changes {
        self.overlay.into_changes()
    }
}

impl<S> std::fmt::Debug for Session<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("requests", &self.requests)
            .field("accounts", &self.overlay.accounts.len())
            .finish()
    }
}

/// Most requests one session (one group commit) may carry.
pub const MAX_SESSION_SIZE: usize = 1 << 20;

/// Runs one request list in a session of its own; see [`Session::execute`].
pub fn execute<S: LedgerState>(
    state: &S,
    requests: &[TransferRequest],
    now: Timestamp,
) -> (Vec<Result<Outcome, TransferError>>, Changes) {
    let mut session = Session::new(state);
    let results = session.execute(requests, now);
    (results, session.finish())
}

fn run_chain<S: LedgerState>(
    overlay: &mut Overlay<'_, S>,
    chain: &[TransferRequest],
    first_index: usize,
    now: Timestamp,
    results: &mut Vec<Result<Outcome, TransferError>>,
) {
    let open = chain.last().is_some_and(|request| request.linked);
    let mut chain_results = Vec::with_capacity(chain.len());
    let mut failed = None;
    for (offset, request) in chain.iter().enumerate() {
        let outcome = if open && offset + 1 == chain.len() {
            Err(TransferError::LinkedChainOpen)
        } else {
            apply(overlay, request, now + (first_index + offset) as Timestamp)
        };
        if outcome.is_err() {
            failed = Some(offset);
            chain_results.push(outcome);
            break;
        }
        chain_results.push(outcome);
    }
    match failed {
        None => {
            overlay.commit_chain();
            results.extend(chain_results);
        }
        Some(failed_at) => {
            overlay.rollback_chain();
            let error = chain_results
                .pop()
                .unwrap_or(Err(TransferError::LinkedEventFailed));
            for offset in 0..chain.len() {
                results.push(if offset == failed_at {
                    error
                } else {
                    Err(TransferError::LinkedEventFailed)
                });
            }
        }
    }
}

/// Whether a retried request is the same as the recorded one.
fn same_content(request: &TransferRequest, recorded: &Transfer) -> bool {
    recorded.request == *request
}

fn apply<S: LedgerState>(
    overlay: &mut Overlay<'_, S>,
    request: &TransferRequest,
    timestamp: Timestamp,
) -> Result<Outcome, TransferError> {
    if request.id.0 == 0 {
        return Err(TransferError::IdMustNotBeZero);
    }
    if let Some(existing) = overlay.transfer(request.id) {
        return if same_content(request, &existing) {
            Ok(Outcome::AlreadyExists(existing))
        } else {
            Err(TransferError::ExistsWithDifferentContent)
        };
    }
    let transfer = match request.kind {
        TransferKind::Posted {
            debit,
            credit,
            amount,
        } => move_funds(overlay, request, debit, credit, amount, None, timestamp)?,
        TransferKind::Pending {
            debit,
            credit,
            amount,
            timeout_seconds,
        } => move_funds(
            overlay,
            request,
            debit,
            credit,
            amount,
            Some(timeout_seconds),
            timestamp,
        )?,
        TransferKind::PostPending { pending_id, amount } => {
            resolve_hold(overlay, request, pending_id, amount, timestamp)?
        }
        TransferKind::VoidPending { pending_id } => {
            resolve_hold(overlay, request, pending_id, None, timestamp)?
        }
    };
    overlay.create(transfer);
    Ok(Outcome::Created(transfer))
}

/// A posted transfer or a new hold (`timeout_seconds` is `Some` for a hold).
fn move_funds<S: LedgerState>(
    overlay: &mut Overlay<'_, S>,
    request: &TransferRequest,
    debit_id: AccountId,
    credit_id: AccountId,
    amount: money::Amount,
    timeout_seconds: Option<u32>,
    timestamp: Timestamp,
) -> Result<Transfer, TransferError> {
    if amount.minor() <= 0 {
        return Err(TransferError::AmountMustBePositive);
    }
    if debit_id == credit_id {
        return Err(TransferError::AccountsMustBeDifferent);
    }
    let mut debit = overlay
        .account(debit_id)
        .ok_or(TransferError::DebitAccountNotFound)?;
    let mut credit = overlay
        .account(credit_id)
        .ok_or(TransferError::CreditAccountNotFound)?;
    if debit.institution != credit.institution {
        return Err(TransferError::InstitutionMismatch);
    }
    if debit.currency != amount.currency() || credit.currency != amount.currency() {
        return Err(TransferError::CurrencyMismatch);
    }
    let value = amount.minor();
    let add = |total: i64| total.checked_add(value).ok_or(TransferError::Overflow);
    if timeout_seconds.is_some() {
        debit.debits_pending = add(debit.debits_pending)?;
        credit.credits_pending = add(credit.credits_pending)?;
    } else {
        debit.debits_posted = add(debit.debits_posted)?;
        credit.credits_posted = add(credit.credits_posted)?;
    }
    check_constraint(&debit)?;
    check_constraint(&credit)?;
    overlay.put_account(debit);
    overlay.put_account(credit);
    let expires_at = match timeout_seconds {
        Some(seconds) if seconds > 0 => {
            Some(timestamp.saturating_add(u64::from(seconds) * NANOS_PER_SECOND))
        }
        _ => None,
    };
    Ok(Transfer {
        request: *request,
        debit: debit_id,
        credit: credit_id,
        amount,
        institution: debit.institution,
        timestamp,
        expires_at,
        status: timeout_seconds.map(|_| PendingStatus::Pending),
    })
}

fn check_constraint(account: &Account) -> Result<(), TransferError> {
    // Sums in i128: each total fits in i64, their sum may not.
    let debits = i128::from(account.debits_pending) + i128::from(account.debits_posted);
    let credits = i128::from(account.credits_pending) + i128::from(account.credits_posted);
    match account.constraint {
        BalanceConstraint::DebitsMustNotExceedCredits
            if debits > i128::from(account.credits_posted) =>
        {
            Err(TransferError::ExceedsCredits)
        }
        BalanceConstraint::CreditsMustNotExceedDebits
            if credits > i128::from(account.debits_posted) =>
        {
            Err(TransferError::ExceedsDebits)
        }
        _ => Ok(()),
    }
}

/// The hold behind a post or void, if it can still be resolved at `now`.
fn live_hold<S: LedgerState>(
    overlay: &Overlay<'_, S>,
    pending_id: TransferId,
    now: Timestamp,
) -> Result<Transfer, TransferError> {
    let hold = overlay
        .transfer(pending_id)
        .ok_or(TransferError::PendingTransferNotFound)?;
    match hold.status {
        None => Err(TransferError::PendingTransferNotPending),
        Some(PendingStatus::Posted) => Err(TransferError::PendingTransferAlreadyPosted),
        Some(PendingStatus::Voided) => Err(TransferError::PendingTransferAlreadyVoided),
        Some(PendingStatus::Expired) => Err(TransferError::PendingTransferExpired),
        Some(PendingStatus::Pending) if hold.expires_at.is_some_and(|expiry| expiry <= now) => {
            Err(TransferError::PendingTransferExpired)
        }
        Some(PendingStatus::Pending) => Ok(hold),
    }
}

/// Posts (`posting` = `Some(amount or all)`) or voids (`None` from a void request) a hold.
fn resolve_hold<S: LedgerState>(
    overlay: &mut Overlay<'_, S>,
    request: &TransferRequest,
    pending_id: TransferId,
    amount: Option<money::Amount>,
    timestamp: Timestamp,
) -> Result<Transfer, TransferError> {
    let hold = live_hold(overlay, pending_id, timestamp)?;
    let posting = matches!(request.kind, TransferKind::PostPending { .. });
    let posted = match amount {
        None => hold.amount,
        Some(amount) if amount.currency() != hold.amount.currency() => {
            return Err(TransferError::CurrencyMismatch);
        }
        Some(amount) if amount.minor() <= 0 => return Err(TransferError::AmountMustBePositive),
        Some(amount) if amount.minor() > hold.amount.minor() => {
            return Err(TransferError::ExceedsPendingAmount);
        }
        Some(amount) => amount,
    };
    let status = if posting {
        PendingStatus::Posted
    } else {
        PendingStatus::Voided
    };
    release_hold(overlay, &hold, if posting { posted.minor() } else { 0 })?;
    overlay.set_status(hold, status);
    Ok(Transfer {
        request: *request,
        debit: hold.debit,
        credit: hold.credit,
        amount: posted,
        institution: hold.institution,
        timestamp,
        expires_at: None,
        status: None,
    })
}

/// Takes a hold's amount off both pending totals and posts `post_minor` of it (0 for a void or
/// an expiry). Posting at most the held amount can only shrink an account's exposure, so no
/// constraint can newly fail here.
fn release_hold<S: LedgerState>(
    overlay: &mut Overlay<'_, S>,
    hold: &Transfer,
    post_minor: i64,
) -> Result<(), TransferError> {
    let mut debit = overlay
        .account(hold.debit)
        .ok_or(TransferError::DebitAccountNotFound)?;
    let mut credit = overlay
        .account(hold.credit)
        .ok_or(TransferError::CreditAccountNotFound)?;
    let held = hold.amount.minor();
    debit.debits_pending = debit
        .debits_pending
        .checked_sub(held)
        .ok_or(TransferError::Overflow)?;
    credit.credits_pending = credit
        .credits_pending
        .checked_sub(held)
        .ok_or(TransferError::Overflow)?;
    debit.debits_posted = debit
        .debits_posted
        .checked_add(post_minor)
        .ok_or(TransferError::Overflow)?;
    credit.credits_posted = credit
        .credits_posted
        .checked_add(post_minor)
        .ok_or(TransferError::Overflow)?;
    assert!(
        debit.debits_pending >= 0 && credit.credits_pending >= 0,
        "ledger invariant broken: negative pending total"
    );
    overlay.put_account(debit);
    overlay.put_account(credit);
    Ok(())
}

/// Expires due holds in a session of its own; see [`Session::expire`].
pub fn expire<S: LedgerState>(state: &S, holds: &[TransferId], now: Timestamp) -> Changes {
    let mut session = Session::new(state);
    session.expire(holds, now);
    session.finish()
}

/// Opens accounts in a session of its own; see [`Session::open_accounts`].
pub fn open_accounts<S: LedgerState>(
    state: &S,
    specs: &[AccountSpec],
    now: Timestamp,
) -> (Vec<Result<Account, AccountError>>, Changes) {
    let mut session = Session::new(state);
    let results = session.open_accounts(specs, now);
    (results, session.finish())
}
