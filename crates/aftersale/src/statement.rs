//! Monthly statements as CSV (R7, R14): every transaction of a month for a card or a merchant,
//! with local time, merchant name and city, the merchant category in words, terminal, card,
//! status and amount (pure: the caller reads the journal and the directory).
//!
//! Months are calendar months in Asia/Shanghai (UTC+8, no daylight saving), the time zone of
//! the demo world's cardholders and merchants. PDF statements come with the shared PDF writer;
//! the card's entry mode is not in the journal yet, so the statement does not show it.

use store::accounts::TransactionRecord;
use store::directory::Merchant;

/// Seconds east of UTC of statement times: Asia/Shanghai.
pub const SHANGHAI_OFFSET_SECONDS: i64 = 8 * 3_600;

/// The CSV header line.
pub const HEADER: &str = "time_local,merchant_id,merchant_name,merchant_city,mcc,category,terminal_id,card,entry_mode,entry,transaction,status,response_code,amount,currency,rrn,auth_code";

/// A merchant category code in words (ISO 18245), or `None` for one easypos does not name.
pub fn mcc_words(mcc: &str) -> Option<&'static str> {
    Some(match mcc {
        "4111" => "Commuter transport",
        "4121" => "Taxis and limousines",
        "4511" => "Airlines",
        "4814" => "Telecommunication services",
        "5311" => "Department stores",
        "5411" => "Grocery stores and supermarkets",
        "5499" => "Convenience and speciality food stores",
        "5541" => "Service stations",
        "5651" => "Family clothing stores",
        "5691" => "Clothing stores",
        "5732" => "Electronics stores",
        "5812" => "Restaurants",
        "5813" => "Bars and taverns",
        "5814" => "Fast food restaurants",
        "5912" => "Drug stores and pharmacies",
        "5942" => "Book stores",
        "5999" => "Miscellaneous retail",
        "7011" => "Hotels and lodging",
        "7832" => "Cinemas",
        "8062" => "Hospitals",
        _ => return None,
    })
}

/// `[start, end)` of month `text` (`YYYY-MM`) in Asia/Shanghai, as microseconds since the
/// epoch; `None` for anything else.
pub fn month_bounds(text: &str) -> Option<(i64, i64)> {
    let (year, month) = text.split_once('-')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let month: i64 = month.parse().ok()?;
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let start = |year, month| {
        (days_from_civil(year, month, 1) * 86_400 - SHANGHAI_OFFSET_SECONDS) * 1_000_000
    };
    Some((start(year, month), start(next_year, next_month)))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `2026-11-26 07:10:00` for microseconds since the epoch, in Asia/Shanghai.
pub fn local_time(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000) + SHANGHAI_OFFSET_SECONDS;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

/// One CSV cell: quoted when it holds a comma, quote or line break; a cell a spreadsheet would
/// run as a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.
fn cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// How the card was read, in words, from the POS entry mode's first two digits (ISO 8583
/// field 22 as China UnionPay terminals send it); `None` for a code easypos does not name.
pub fn entry_words(code: &str) -> Option<&'static str> {
    Some(match code.get(..2)? {
        "01" => "keyed",
        "02" | "90" => "magnetic stripe",
        "05" => "chip",
        "07" => "contactless chip",
        "80" => "magnetic stripe (chip fallback)",
        "91" => "contactless stripe",
        _ => return None,
    })
}

/// The statement: [`HEADER`] and one line per record, in the order given.
pub fn csv(records: &[TransactionRecord], merchants: &[Merchant]) -> String {
    let mut out = String::from(HEADER);
    out.push_str("\r\n");
    for record in records {
        let merchant = merchants
            .iter()
            .find(|merchant| merchant.id == record.merchant_id);
        let currency = record
            .currency
            .and_then(|numeric| u16::try_from(numeric).ok())
            .and_then(|numeric| money::Currency::from_numeric(numeric).ok());
        let amount = match (record.amount_minor, currency) {
            (Some(minor), Some(currency)) => money::Amount::new(minor, currency).format_major(),
            _ => String::new(),
        };
        let status = match record.response.as_deref() {
            Some("00") => "approved",
            Some(_) => "declined",
            None => "unanswered",
        };
        let mcc = merchant.map(|merchant| merchant.mcc.as_str()).unwrap_or("");
        let cells = [
            local_time(record.received_at),
            record.merchant_id.clone(),
            merchant.map(|m| m.name.clone()).unwrap_or_default(),
            merchant.map(|m| m.city.clone()).unwrap_or_default(),
            mcc.to_owned(),
            mcc_words(mcc).unwrap_or("").to_owned(),
            record.terminal_id.clone(),
            record.card.clone().unwrap_or_default(),
            record.entry_mode.clone().unwrap_or_default(),
            record
                .entry_mode
                .as_deref()
                .and_then(entry_words)
                .unwrap_or("")
                .to_owned(),
            record.kind.clone(),
            status.to_owned(),
            record.response.clone().unwrap_or_default(),
            amount,
            currency.map(|c| c.alpha().to_owned()).unwrap_or_default(),
            record.rrn.clone().unwrap_or_default(),
            record.auth_code.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|text| cell(text)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entry_modes_are_named_by_their_first_two_digits() {
        assert_eq!(entry_words("051"), Some("chip"));
        assert_eq!(entry_words("072"), Some("contactless chip"));
        assert_eq!(entry_words("021"), Some("magnetic stripe"));
        assert_eq!(entry_words("801"), Some("magnetic stripe (chip fallback)"));
        assert_eq!(entry_words("991"), None);
        assert_eq!(entry_words("0"), None);
    }

    #[test]
    fn months_are_shanghai_calendar_months() {
        // 2026-11-01 00:00 in Shanghai is 2026-10-31 16:00 UTC.
        let (start, end) = month_bounds("2026-11").unwrap();
        assert_eq!(start, 1_793_462_400 * 1_000_000);
        assert_eq!(local_time(start), "2026-11-01 00:00:00");
        assert_eq!(local_time(end), "2026-12-01 00:00:00");
        assert_eq!(
            local_time(month_bounds("2026-12").unwrap().1),
            "2027-01-01 00:00:00"
        );
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-00"] {
            assert_eq!(month_bounds(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_statement_line_names_the_merchant_in_words_and_escapes_its_cells() {
        let merchant = Merchant {
            id: "898310058120001".into(),
            acquirer: ledger::InstitutionId(1),
            name: "Coffee, \"Lujiazui\"".into(),
            name_zh: String::new(),
            city: "=Shanghai".into(),
            mcc: "5812".into(),
            settlement_account: ledger::AccountId(9),
        };
        let record = TransactionRecord {
            id: 1,
            received_at: 1_764_000_000_000_000,
            terminal_id: "10000001".into(),
            merchant_id: merchant.id.clone(),
            mti: "0200".into(),
            kind: "Sale".into(),
            batch: Some(1),
            stan: Some(2),
            amount_minor: Some(1_234),
            currency: Some(156),
            card: Some("621234******0000".into()),
            original_batch: None,
            original_stan: None,
            response: Some("00".into()),
            rrn: Some("000000012345".into()),
            auth_code: Some("654321".into()),
            duration_us: 1,
            risk: None,
            entry_mode: Some("051".into()),
        };
        let text = csv(&[record], &[merchant]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(
            lines[1],
            "2025-11-25 00:00:00,898310058120001,\"Coffee, \"\"Lujiazui\"\"\",'=Shanghai,5812,Restaurants,10000001,621234******0000,051,chip,Sale,approved,00,12.34,CNY,000000012345,654321"
        );
        assert_eq!(lines[2], "");
    }
}
