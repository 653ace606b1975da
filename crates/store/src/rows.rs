//! Mapping between ledger types and the columns both dialects share. One place, so SQLite and
//! PostgreSQL cannot drift apart.

use crate::StoreError;
use ledger::{
    Account, AccountId, BalanceConstraint, InstitutionId, PendingStatus, Transfer, TransferId,
    TransferKind, TransferRequest,
};
use money::{Amount, Currency};

pub fn id_bytes(id: u128) -> [u8; 16] {
    id.to_be_bytes()
}

pub fn id_from_bytes(bytes: &[u8]) -> Result<u128, StoreError> {
    let array: [u8; 16] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("id of {} bytes, expected 16", bytes.len())))?;
    Ok(u128::from_be_bytes(array))
}

fn corrupt(what: &str, value: i64) -> StoreError {
    StoreError::Corrupt(format!("{what} has unknown value {value}"))
}

fn currency(numeric: i64) -> Result<Currency, StoreError> {
    u16::try_from(numeric)
        .ok()
        .and_then(|code| Currency::from_numeric(code).ok())
        .ok_or_else(|| corrupt("currency", numeric))
}

fn narrow<T: TryFrom<i64>>(what: &str, value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| corrupt(what, value))
}

/// An account row, column by column, in the order of [`ACCOUNT_COLUMNS`].
pub struct AccountRow {
    pub id: Vec<u8>,
    pub institution: i64,
    pub currency: i64,
    pub code: i64,
    pub balance_rule: i64,
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
    pub created_at: i64,
}

pub const ACCOUNT_COLUMNS: &str = "id, institution, currency, code, balance_rule, debits_pending, debits_posted, credits_pending, credits_posted, created_at";

impl AccountRow {
    pub fn from_account(account: &Account) -> Self {
        AccountRow {
            id: id_bytes(account.id.0).to_vec(),
            institution: i64::from(account.institution.0),
            currency: i64::from(account.currency.numeric()),
            code: i64::from(account.code),
            balance_rule: account.constraint.code(),
            debits_pending: account.debits_pending,
            debits_posted: account.debits_posted,
            credits_pending: account.credits_pending,
            credits_posted: account.credits_posted,
            created_at: timestamp_to_sql(account.created_at),
        }
    }

    pub fn into_account(self) -> Result<Account, StoreError> {
        Ok(Account {
            id: AccountId(id_from_bytes(&self.id)?),
            institution: InstitutionId(narrow("institution", self.institution)?),
            currency: currency(self.currency)?,
            code: narrow("account code", self.code)?,
            constraint: BalanceConstraint::from_code(self.balance_rule)
                .ok_or_else(|| corrupt("balance rule", self.balance_rule))?,
            debits_pending: self.debits_pending,
            debits_posted: self.debits_posted,
            credits_pending: self.credits_pending,
            credits_posted: self.credits_posted,
            created_at: timestamp_from_sql(self.created_at)?,
        })
    }
}

/// A transfer row in the order of [`TRANSFER_COLUMNS`]: the request as made plus what the
/// ledger resolved.
pub struct TransferRow {
    pub id: Vec<u8>,
    pub kind: i64,
    pub debit: Vec<u8>,
    pub credit: Vec<u8>,
    pub amount: i64,
    pub currency: i64,
    pub requested_amount: Option<i64>,
    pub pending_id: Option<Vec<u8>>,
    pub timeout_seconds: Option<i64>,
    pub linked: bool,
    pub code: i64,
    pub user_data: Vec<u8>,
    pub institution: i64,
    pub timestamp: i64,
    pub expires_at: Option<i64>,
    pub status: Option<i64>,
}

pub const TRANSFER_COLUMNS: &str = "id, kind, debit, credit, amount, currency, requested_amount, pending_id, timeout_seconds, linked, code, user_data, institution, timestamp, expires_at, status";

impl TransferRow {
    pub fn from_transfer(transfer: &Transfer) -> Self {
        let request = &transfer.request;
        let (requested_amount, pending_id, timeout_seconds) = match request.kind {
            TransferKind::Posted { .. } => (None, None, None),
            TransferKind::Pending {
                timeout_seconds, ..
            } => (None, None, Some(i64::from(timeout_seconds))),
            TransferKind::PostPending { pending_id, amount } => (
                amount.map(Amount::minor),
                Some(id_bytes(pending_id.0).to_vec()),
                None,
            ),
            TransferKind::VoidPending { pending_id } => {
                (None, Some(id_bytes(pending_id.0).to_vec()), None)
            }
        };
        TransferRow {
            id: id_bytes(request.id.0).to_vec(),
            kind: request.kind.code(),
            debit: id_bytes(transfer.debit.0).to_vec(),
            credit: id_bytes(transfer.credit.0).to_vec(),
            amount: transfer.amount.minor(),
            currency: i64::from(transfer.amount.currency().numeric()),
            requested_amount,
            pending_id,
            timeout_seconds,
            linked: request.linked,
            code: i64::from(request.code),
            user_data: id_bytes(request.user_data).to_vec(),
            institution: i64::from(transfer.institution.0),
            timestamp: timestamp_to_sql(transfer.timestamp),
            expires_at: transfer.expires_at.map(timestamp_to_sql),
            status: transfer.status.map(PendingStatus::code),
        }
    }

    pub fn into_transfer(self) -> Result<Transfer, StoreError> {
        let currency = currency(self.currency)?;
        let debit = AccountId(id_from_bytes(&self.debit)?);
        let credit = AccountId(id_from_bytes(&self.credit)?);
        let amount = Amount::new(self.amount, currency);
        let pending_id = || -> Result<TransferId, StoreError> {
            let bytes = self
                .pending_id
                .as_deref()
                .ok_or_else(|| StoreError::Corrupt("post or void without pending id".into()))?;
            Ok(TransferId(id_from_bytes(bytes)?))
        };
        let kind = match self.kind {
            0 => TransferKind::Posted {
                debit,
                credit,
                amount,
            },
            1 => TransferKind::Pending {
                debit,
                credit,
                amount,
                timeout_seconds: narrow("timeout", self.timeout_seconds.unwrap_or(0))?,
            },
            2 => TransferKind::PostPending {
                pending_id: pending_id()?,
                amount: self
                    .requested_amount
                    .map(|minor| Amount::new(minor, currency)),
            },
            3 => TransferKind::VoidPending {
                pending_id: pending_id()?,
            },
            other => return Err(corrupt("transfer kind", other)),
        };
        let status = match self.status {
            None => None,
            Some(code) => {
                Some(PendingStatus::from_code(code).ok_or_else(|| corrupt("hold status", code))?)
            }
        };
        Ok(Transfer {
            request: TransferRequest {
                id: TransferId(id_from_bytes(&self.id)?),
                kind,
                linked: self.linked,
                code: narrow("transfer code", self.code)?,
                user_data: id_from_bytes(&self.user_data)?,
            },
            debit,
            credit,
            amount,
            institution: InstitutionId(narrow("institution", self.institution)?),
            timestamp: timestamp_from_sql(self.timestamp)?,
            expires_at: self.expires_at.map(timestamp_from_sql).transpose()?,
            status,
        })
    }
}

/// Nanosecond timestamps fit in i64 until the year 2262.
pub fn timestamp_to_sql(timestamp: u64) -> i64 {
    i64::try_from(timestamp).unwrap_or(i64::MAX)
}

pub fn timestamp_from_sql(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt("timestamp", value))
}
