//! [`MemoryLedger`]: the ledger state in hash maps. The reference model for property tests and
//! the baseline for benchmarks; stores persist the same [`Changes`].

use crate::engine::{
    Changes, LedgerState, UnbalancedBooks, check_books, execute, expire, open_accounts,
};
use crate::types::*;

#[derive(Clone, Debug, Default)]
pub struct MemoryLedger {
    accounts: IdMap<AccountId, Account>,
    transfers: IdMap<TransferId, Transfer>,
    /// Transfer ids in creation order, so listings are deterministic.
    order: Vec<TransferId>,
}

impl LedgerState for MemoryLedger {
    fn account(&self, id: AccountId) -> Option<Account> {
        self.accounts.get(&id).copied()
    }

    fn transfer(&self, id: TransferId) -> Option<Transfer> {
        self.transfers.get(&id).copied()
    }
}

impl MemoryLedger {
    /// Opens accounts; stops at the first refused spec without opening any.
    pub fn create_accounts(
        &mut self,
        specs: &[AccountSpec],
        now: Timestamp,
    ) -> Result<Vec<Account>, AccountError> {
        let (results, changes) = open_accounts(self, specs, now);
        let accounts = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        self.apply(changes);
        Ok(accounts)
    }

    /// Puts committed state loaded from a database into the map (a store's working set).
    pub fn load(
        &mut self,
        accounts: impl IntoIterator<Item = Account>,
        transfers: impl IntoIterator<Item = Transfer>,
    ) {
        self.accounts
            .extend(accounts.into_iter().map(|account| (account.id, account)));
        for transfer in transfers {
            if self.transfers.insert(transfer.id(), transfer).is_none() {
                self.order.push(transfer.id());
            }
        }
    }

    pub fn execute(
        &mut self,
        requests: &[TransferRequest],
        now: Timestamp,
    ) -> Vec<Result<Outcome, TransferError>> {
        let (results, changes) = execute(self, requests, now);
        self.apply(changes);
        results
    }

    /// Expires every hold due at `now`; returns how many expired.
    pub fn expire_due(&mut self, now: Timestamp) -> usize {
        let due: Vec<TransferId> = self
            .order
            .iter()
            .filter(|id| {
                self.transfers.get(id).is_some_and(|transfer| {
                    transfer.status == Some(PendingStatus::Pending)
                        && transfer.expires_at.is_some_and(|expiry| expiry <= now)
                })
            })
            .copied()
            .collect();
        let changes = expire(self, &due, now);
        let expired = changes.statuses.len();
        self.apply(changes);
        expired
    }

    pub fn apply(&mut self, changes: Changes) {
        self.accounts.extend(changes.accounts);
        for transfer in changes.created {
            self.order.push(transfer.id());
            self.transfers.insert(transfer.id(), transfer);
        }
        for (id, status) in changes.statuses {
            if let Some(transfer) = self.transfers.get_mut(&id) {
                transfer.status = Some(status);
            }
        }
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// Transfers in creation order.
    pub fn transfers(&self) -> impl Iterator<Item = &Transfer> {
        self.order.iter().filter_map(|id| self.transfers.get(id))
    }

    pub fn check_books(&self) -> Result<(), UnbalancedBooks> {
        check_books(self.accounts.values())
    }
}
