//! A supervisor's password on a void or refund (R16; docs/protocol.md, "Supervisor password"):
//! field 63 carries the supervisor's operator number (3 digits) and the password as a PIN
//! block (hex) under the terminal's PIN key, built with the supervisor's staff account
//! (`store::staff_passwords::staff_account`) in place of a card number. Once a merchant has
//! enrolled a supervisor's password (its IBM 3624 offset), every void and refund of its
//! terminals must carry a right one: the host checks it inside the HSM (the clear password is
//! never outside it) and answers 55 otherwise. A merchant with none enrolled keeps the
//! terminal's own check.

use crate::handler::{TerminalHandler, TerminalRecord};
use crate::keys::MessageKeys;
use hsm::PinVerification;
use iso8583::{Message, ResponseCode};
use paycrypto::card::DecimalisationTable;
use paycrypto::{Pan, PinBlock};

pub use store::staff_passwords::{operator_number, staff_account, validation_data};

/// Field 63 of a void or refund: the operator number (three digits) and the password block in
/// upper-case hex (8 bytes; 16 for an AES DUKPT terminal's format 4).
pub fn field63(operator_no: &str, block: &PinBlock) -> Option<String> {
    let operator = store::staff_passwords::operator_number(operator_no)?;
    Some(format!("{operator}{}", paycrypto::to_hex(block.as_bytes())))
}

/// The supervisor and the password block of a field 63; `None` when it is not one.
pub fn parse_field63(text: &str) -> Option<(String, PinBlock)> {
    let operator = store::staff_passwords::operator_number(text.get(..3)?)?;
    let hex = text.get(3..)?;
    if hex.len() != 16 && hex.len() != 32 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some((operator, PinBlock::new(&bytes).ok()?))
}

impl TerminalHandler {
    /// Checks the supervisor's password of a void or refund at `terminal_id`: `Ok(None)` when
    /// the merchant enrolled none, `Ok(Some(operator))` when right, 55 when missing, unknown
    /// or wrong (96 when the store or the key cannot be read).
    pub(crate) async fn check_supervisor(
        &self,
        message: &Message<'_>,
        terminal_id: &str,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Result<Option<String>, ResponseCode> {
        let enrolled = self
            .store
            .staff_passwords(&terminal.merchant_id)
            .await
            .map_err(|error| {
                tracing::error!(%error, "cannot read the supervisors' passwords");
                ResponseCode::SystemMalfunction
            })?;
        if enrolled.is_empty() {
            return Ok(None);
        }
        let refused = |why: &str| {
            tracing::info!(terminal = %terminal_id, why, "void or refund without a right supervisor password");
            ResponseCode::IncorrectPin
        };
        let (operator, block) = message
            .get(63)
            .and_then(|value| parse_field63(value.to_text().trim()))
            .ok_or_else(|| refused("no supervisor password in field 63"))?;
        let offset = enrolled
            .iter()
            .find(|(number, _)| *number == operator)
            .map(|(_, offset)| offset.clone())
            .ok_or_else(|| refused("no enrolled supervisor of that number"))?;
        let account = store::staff_passwords::staff_account(&terminal.merchant_id, &operator)
            .and_then(|digits| Pan::new(&digits).ok())
            .ok_or_else(|| refused("no staff account for the merchant"))?;
        let validation = store::staff_passwords::validation_data(&terminal.merchant_id, &operator)
            .ok_or_else(|| refused("no validation data for the merchant"))?;
        let pvk = self.key(store::staff_passwords::STAFF_PVK).await?;
        let source = keys.pin_source()?;
        let method = PinVerification::Ibm3624 {
            pvk: &pvk,
            validation_data: &validation,
            pad: 'F',
            table: DecimalisationTable::DEFAULT,
            offset: &offset,
        };
        match self.hsm.verify_pin(&block, &source, &account, &method) {
            Ok(true) => Ok(Some(operator)),
            Ok(false) => Err(refused("wrong supervisor password")),
            Err(error) => {
                tracing::info!(%error, terminal = %terminal_id, "supervisor password block refused by the HSM");
                Err(ResponseCode::IncorrectPin)
            }
        }
    }

    /// Feeds a checked supervisor's use to the insider watch and hands its alert, if any, to
    /// the case writer (docs/risk.md#insider-alerts).
    pub(crate) fn watch_supervisor(&self, merchant_id: &str, terminal_id: &str, supervisor: &str) {
        let operator = self.operator_at(terminal_id).unwrap_or_default();
        let operator = store::staff_passwords::operator_number(&operator).unwrap_or(operator);
        let (learned, alert) = {
            let mut watch = self
                .supervisors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let learned = !watch.knows(merchant_id, supervisor, terminal_id);
            (
                learned,
                watch.observe(merchant_id, supervisor, terminal_id, &operator),
            )
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        if learned {
            self.keep_supervisor_terminal(merchant_id, supervisor, terminal_id, now);
        }
        let (Some(alert), Some(cases)) = (alert, &self.cases) else {
            return;
        };
        let case = store::cases::NewCase {
            at: now,
            merchant_id: merchant_id.to_owned(),
            terminal_id: terminal_id.to_owned(),
            card_id: String::new(),
            rules: format!("{}(alert,0): {}", alert.rule, alert.reason),
            severity: "alert".into(),
            rule_names: vec![alert.rule.to_owned(), format!("supervisor {supervisor}")],
        };
        if cases.try_send(case).is_err() {
            self.count_dropped_case();
        }
    }

    /// Writes a terminal new to a supervisor to the store in the background (the answer to the
    /// terminal does not wait for it), so that the next start still knows it is usual. A
    /// failed write is logged: after a restart that terminal counts as new once more.
    fn keep_supervisor_terminal(
        &self,
        merchant_id: &str,
        supervisor: &str,
        terminal_id: &str,
        at: i64,
    ) {
        let used = store::supervisor_terminals::SupervisorTerminal {
            merchant_id: merchant_id.to_owned(),
            operator_no: supervisor.to_owned(),
            terminal_id: terminal_id.to_owned(),
            last_used_at: at,
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(error) = store.remember_supervisor_terminal(&used).await {
                tracing::error!(%error, terminal = %used.terminal_id, "cannot keep a supervisor's usual terminal");
            }
        });
    }

    /// Teaches the unusual-terminal watch the supervisors' usual terminals kept in the store
    /// (`easypos up` calls it at start); how many it read.
    pub async fn load_supervisor_terminals(&self) -> Result<usize, store::StoreError> {
        let kept = self.store.supervisor_terminals().await?;
        let mut watch = self
            .supervisors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for used in &kept {
            watch.remember(&used.merchant_id, &used.operator_no, &used.terminal_id);
        }
        Ok(kept.len())
    }
}
