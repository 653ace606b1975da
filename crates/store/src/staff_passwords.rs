//! Supervisors' terminal passwords (docs/risk.md#supervisor-passwords): per merchant and
//! operator number, the IBM 3624 offset of the password under the platform's staff PIN
//! verification key, never the password. Statements are written once through the
//! `onboarding` helpers.

use crate::onboarding::{Cell, Kind, Step};
use crate::{Store, StoreError};

/// The stored name of the platform's staff PIN verification key (TDES, IBM 3624), generated in
/// the HSM at the first enrolment; the host verifies under it.
pub const STAFF_PVK: &str = "platform/staff-pvk";

impl Store {
    /// Sets (or replaces) the offset of `operator_no`'s terminal password at `merchant_id`.
    pub async fn put_staff_password(
        &self,
        merchant_id: &str,
        operator_no: &str,
        pin_offset: &str,
        by: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.onboarding_execute(vec![Step::new(
            "INSERT INTO staff_passwords (merchant_id, operator_no, pin_offset, set_by, set_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_id, operator_no) DO UPDATE SET pin_offset = excluded.pin_offset, set_by = excluded.set_by, set_at = excluded.set_at",
            vec![
                Cell::text(merchant_id),
                Cell::text(operator_no),
                Cell::text(pin_offset),
                Cell::text(by),
                Cell::int(at),
            ],
        )])
        .await?;
        Ok(())
    }

    /// The enrolled supervisors of `merchant_id`: (operator number, offset), by number.
    pub async fn staff_passwords(
        &self,
        merchant_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .onboarding_query(
                "SELECT operator_no, pin_offset FROM staff_passwords WHERE merchant_id = $1 ORDER BY operator_no",
                vec![Cell::text(merchant_id)],
                &[Kind::Text, Kind::Text],
            )
            .await?
            .iter()
            .filter_map(|row| Some((row[0].as_text()?.to_owned(), row[1].as_text()?.to_owned())))
            .collect())
    }
}

/// An operator number as three digits (`1`, `01` and `001` are one operator); `None` for
/// anything but one to three digits.
pub fn operator_number(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{text:0>3}"))
}

/// The 15 digits a supervisor's password block is built with (in place of a card number, in
/// ISO 9564 format 0): `9`, the merchant id's last 11 digits, the operator number. `None`
/// when the merchant id has fewer than 11 digits at its end.
pub fn staff_account(merchant_id: &str, operator_no: &str) -> Option<String> {
    let merchant = merchant_id.get(merchant_id.len().checked_sub(11)?..)?;
    let operator = operator_number(operator_no)?;
    merchant
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| format!("9{merchant}{operator}"))
}

/// The IBM 3624 validation data of a supervisor: the staff account's last 12 digits.
pub fn validation_data(merchant_id: &str, operator_no: &str) -> Option<String> {
    let account = staff_account(merchant_id, operator_no)?;
    Some(account[account.len() - 12..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisors_are_numbered_and_accounted_the_same_way_everywhere() {
        assert_eq!(operator_number("1").as_deref(), Some("001"));
        assert_eq!(operator_number("001").as_deref(), Some("001"));
        assert_eq!(operator_number("1234"), None);
        assert_eq!(operator_number("0a"), None);
        assert_eq!(
            staff_account("898310058120001", "7").as_deref(),
            Some("910058120001007")
        );
        assert_eq!(
            validation_data("898310058120001", "7").as_deref(),
            Some("058120001007")
        );
        assert_eq!(staff_account("1234", "7"), None);
    }
}
