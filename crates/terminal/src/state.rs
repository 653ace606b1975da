//! What a terminal remembers between runs, in its state directory (`state.json`, mode 0600,
//! replaced atomically after every change):
//!
//! - the trace number (STAN) last used and the batch number;
//! - the sign-on: field 62 of the host's 0810 as it came, i.e. the PIN and MAC working keys
//!   **encrypted under the terminal master key** with their check values, so the file never
//!   holds a working key in clear;
//! - the open batch's transactions (card numbers masked, first 6 / last 4);
//! - a reversal not yet acknowledged by the host (store-and-forward): the fields of the 0400,
//!   which carry no card data;
//! - the last receipt, for reprints.
//!
//! Closed batches are kept beside it as `batch-NNNNNN.json`.

use crate::files::{FileError, create_private_dir, read_bounded, write_atomic};
use crate::receipt::{Cvm, Entry, Receipt};
use crate::transactions::TransactionType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const STATE_FORMAT: &str = "easypos-terminal-state-v1";
/// STANs run 1..=999999 and wrap (field 11 has 6 digits).
pub const MAX_STAN: u32 = 999_999;
/// The most transactions a batch holds before the terminal asks for a settlement; UnionPay
/// terminals commonly cap a batch near this (and it bounds the state file).
pub const MAX_BATCH_TRANSACTIONS: usize = 500;

/// The sign-on the terminal works under.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// Field 62 of the 0810 in hex: PIK and MAK under the terminal master key, with check
    /// values. Decrypted into memory per run, never written in clear.
    pub field62_under_tmk: String,
    pub operator: String,
    /// Unix seconds.
    pub signed_on_at: u64,
}

/// One message of the open batch that the host answered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchEntry {
    pub kind: TransactionType,
    pub stan: u32,
    pub batch: u32,
    pub amount_minor: u64,
    pub currency: String,
    /// First 6 / last 4.
    pub card: String,
    pub entry: Entry,
    pub cvm: Cvm,
    pub response_code: String,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    pub original_stan: Option<u32>,
    /// Unix seconds.
    pub at: u64,
    /// The terminal reversed it (the host acknowledged, or the reversal is pending).
    #[serde(default)]
    pub reversed: bool,
    /// A void or refund (of a sale) or a completion (of a pre-authorization) was approved
    /// against it; the host takes one per original.
    #[serde(default)]
    pub voided: bool,
}

impl BatchEntry {
    pub fn approved(&self) -> bool {
        self.response_code == "00" && !self.reversed
    }
}

/// A reversal the host has not acknowledged yet.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingReversal {
    /// The 0400's fields as text (3, 4, 11, 22, 25, 39, 41, 42, 49, 60, 61): no card data.
    pub fields: BTreeMap<u8, String>,
    /// Sent at least once: the next attempt is a repeat (0401).
    pub attempts: u32,
    pub original_stan: u32,
}

/// `state.json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TerminalState {
    pub format: String,
    pub terminal_id: String,
    /// The last trace number used (0 before the first message).
    pub stan: u32,
    pub batch: u32,
    pub session: Option<Session>,
    pub transactions: Vec<BatchEntry>,
    pub pending_reversal: Option<PendingReversal>,
    pub last_receipt: Option<Receipt>,
    /// AES DUKPT: the last KSN counter used (0 before the first message). Saved before each
    /// use, so a KSN is never sent twice.
    #[serde(default)]
    pub ksn_counter: u32,
    /// The parameter set of the last download (docs/protocol.md, "Parameter download"); it
    /// wins over `terminal.toml` when its version is newer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<acquirer::parameters::TerminalParameters>,
}

impl TerminalState {
    pub fn new(terminal_id: &str) -> TerminalState {
        TerminalState {
            format: STATE_FORMAT.into(),
            terminal_id: terminal_id.into(),
            stan: 0,
            batch: 1,
            session: None,
            transactions: Vec::new(),
            pending_reversal: None,
            last_receipt: None,
            ksn_counter: 0,
            parameters: None,
        }
    }

    /// The next trace number (1..=999999, wrapping).
    pub fn next_stan(&mut self) -> u32 {
        self.stan = if self.stan >= MAX_STAN {
            1
        } else {
            self.stan + 1
        };
        self.stan
    }

    /// The host's totals of the open batch as the terminal counts them: approved sales and
    /// completions are debits; approved voids and refunds are credits; reversed messages do
    /// not count.
    pub fn totals(&self) -> acquirer::settlement::Totals {
        let mut totals = acquirer::settlement::Totals::default();
        for entry in self.counted() {
            match entry.kind.settlement_direction() {
                Some(true) => {
                    totals.debit_minor += entry.amount_minor;
                    totals.debit_count += 1;
                }
                Some(false) => {
                    totals.credit_minor += entry.amount_minor;
                    totals.credit_count += 1;
                }
                None => {}
            }
        }
        totals
    }

    /// The transactions the settlement counts (and a batch upload sends): approved, not
    /// reversed, and moving money.
    pub fn counted(&self) -> impl Iterator<Item = &BatchEntry> {
        self.transactions
            .iter()
            .filter(|entry| entry.approved() && entry.kind.settlement_direction().is_some())
    }

    /// Count and amount per transaction type (60.1 code) of the counted transactions.
    pub fn totals_by_type(&self) -> BTreeMap<String, (u64, u64)> {
        let mut types: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for entry in self.counted() {
            let totals = types.entry(entry.kind.type_code().to_owned()).or_default();
            totals.0 += 1;
            totals.1 += entry.amount_minor;
        }
        types
    }

    pub fn find(&self, stan: u32) -> Option<&BatchEntry> {
        self.transactions
            .iter()
            .rev()
            .find(|entry| entry.stan == stan)
    }
}

/// A damaged JSON file, by position only (serde_json's message may quote values).
fn damaged(path: &Path, error: &serde_json::Error) -> FileError {
    FileError::content(
        path,
        format!(
            "is damaged (line {}, column {})",
            error.line(),
            error.column()
        ),
    )
}

/// The state directory, locked for as long as this value lives: one terminal is one process
/// at a time (a second would reuse trace numbers and race on the batch).
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    /// Holds the advisory lock on `dir/lock`; the system releases it when the process ends,
    /// even by a crash.
    _lock: std::fs::File,
}

impl StateDir {
    /// Opens (creating, mode 0700) and locks the directory; refuses if another process has it.
    pub fn open(dir: &Path) -> Result<StateDir, FileError> {
        create_private_dir(dir)?;
        let path = dir.join("lock");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let lock = options
            .open(&path)
            .map_err(|error| FileError::io(&path, error))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(FileError::content(
                    dir,
                    "is in use by another easypos terminal process",
                ));
            }
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(FileError::io(&path, error));
            }
        }
        Ok(StateDir {
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The saved state, or a new one for `terminal_id`.
    pub fn load(&self, terminal_id: &str) -> Result<TerminalState, FileError> {
        let path = self.state_path();
        if !path.exists() {
            return Ok(TerminalState::new(terminal_id));
        }
        let state: TerminalState = serde_json::from_slice(&read_bounded(&path)?)
            .map_err(|error| damaged(&path, &error))?;
        if state.format != STATE_FORMAT {
            return Err(FileError::content(&path, "is not a terminal state file"));
        }
        if state.terminal_id != terminal_id {
            return Err(FileError::content(
                &path,
                format!(
                    "belongs to terminal {}, not {terminal_id}",
                    state.terminal_id
                ),
            ));
        }
        Ok(state)
    }

    pub fn save(&self, state: &TerminalState) -> Result<(), FileError> {
        let path = self.state_path();
        let text = serde_json::to_string_pretty(state)
            .map_err(|error| FileError::content(&path, error.to_string()))?;
        write_atomic(&path, text.as_bytes())
    }

    /// A closed batch's transactions, as [`StateDir::archive_batch`] kept them.
    pub fn archived_batch(&self, batch: u32) -> Result<Vec<BatchEntry>, FileError> {
        let path = self.dir.join(format!("batch-{batch:06}.json"));
        if !path.exists() {
            return Err(FileError::content(
                &path,
                format!("does not exist: batch {batch:06} was not closed on this terminal"),
            ));
        }
        serde_json::from_slice(&read_bounded(&path)?).map_err(|error| damaged(&path, &error))
    }

    /// Keeps a closed batch's transactions beside the state.
    pub fn archive_batch(&self, batch: u32, entries: &[BatchEntry]) -> Result<(), FileError> {
        let path = self.dir.join(format!("batch-{batch:06}.json"));
        let text = serde_json::to_string_pretty(entries)
            .map_err(|error| FileError::content(&path, error.to_string()))?;
        write_atomic(&path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(kind: TransactionType, stan: u32, amount_minor: u64, code: &str) -> BatchEntry {
        BatchEntry {
            kind,
            stan,
            batch: 1,
            amount_minor,
            currency: "CNY".into(),
            card: "621234******0000".into(),
            entry: Entry::Chip,
            cvm: Cvm::PinVerified,
            response_code: code.into(),
            rrn: None,
            auth_code: None,
            original_stan: None,
            at: 0,
            reversed: false,
            voided: false,
        }
    }

    #[test]
    fn totals_count_what_the_host_counts() {
        let mut state = TerminalState::new("10000001");
        state.transactions = vec![
            entry(TransactionType::Sale, 1, 1_000, "00"),
            entry(TransactionType::Sale, 2, 500, "55"),
            entry(TransactionType::Void, 3, 1_000, "00"),
            entry(TransactionType::PreAuthorization, 4, 9_000, "00"),
            entry(TransactionType::Completion, 5, 7_000, "00"),
            entry(TransactionType::Refund, 6, 200, "00"),
            entry(TransactionType::Sale, 7, 300, "00"),
        ];
        state.transactions[6].reversed = true;
        assert_eq!(
            state.totals(),
            acquirer::settlement::Totals {
                debit_minor: 8_000,
                debit_count: 2,
                credit_minor: 1_200,
                credit_count: 2,
            }
        );
    }

    #[test]
    fn trace_numbers_wrap_after_999999_and_skip_zero() {
        let mut state = TerminalState::new("10000001");
        state.stan = MAX_STAN - 1;
        assert_eq!((state.next_stan(), state.next_stan()), (MAX_STAN, 1));
    }

    #[test]
    fn a_state_directory_is_one_process_s_at_a_time() {
        let dir = std::env::temp_dir().join(format!("terminal-state-{}", std::process::id()));
        let first = StateDir::open(&dir).unwrap();
        let second = StateDir::open(&dir).unwrap_err();
        assert!(second.to_string().contains("in use"), "{second}");
        drop(first);
        let mut state = TerminalState::new("10000001");
        state.next_stan();
        let reopened = StateDir::open(&dir).unwrap();
        reopened.save(&state).unwrap();
        assert_eq!(reopened.load("10000001").unwrap(), state);
        assert!(
            reopened.load("10000002").is_err(),
            "another terminal's state"
        );
        drop(reopened);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
