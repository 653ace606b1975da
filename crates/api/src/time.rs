//! RFC 3339 timestamps in UTC, both ways, without a date library: the API speaks them, the
//! store keeps microseconds or seconds since the epoch. Days from the civil calendar follow
//! Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms.

const SECONDS_PER_DAY: i64 = 86_400;

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
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
    (year, month, day)
}

/// `2026-11-25T20:10:00Z` for unix seconds.
pub fn rfc3339_seconds(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60
    )
}

/// `2026-11-25T20:10:00.123456Z` for microseconds since the epoch.
pub fn rfc3339_micros(micros: i64) -> String {
    let seconds = rfc3339_seconds(micros.div_euclid(1_000_000));
    format!(
        "{}.{:06}Z",
        &seconds[..seconds.len() - 1],
        micros.rem_euclid(1_000_000)
    )
}

/// Microseconds since the epoch of an RFC 3339 date-time (`Z` or `±hh:mm`, optional fraction
/// of up to 9 digits), or of a bare date (midnight UTC). `None` for anything else.
pub fn parse_rfc3339_micros(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|byte| byte.is_ascii_digit())
            .then_some(())?;
        part.parse().ok()
    };
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    if bytes.len() == 10 {
        return days.checked_mul(SECONDS_PER_DAY * 1_000_000);
    }
    if !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes.len() < 20
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut micros = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let padded = format!("{:0<6}", &fraction[..digits.min(6)]);
        micros = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 3_600 + minutes * 60)
        }
        _ => return None,
    };
    let seconds = days * SECONDS_PER_DAY + hour * 3_600 + minute * 60 + second - offset_seconds;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check() {
        // Unix time 1_764_000_000 is 2025-11-24T16:00:00Z (`date -u -d @1764000000`).
        assert_eq!(rfc3339_seconds(1_764_000_000), "2025-11-24T16:00:00Z");
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339_micros(1_764_000_000_000_007),
            "2025-11-24T16:00:00.000007Z"
        );
        for (text, expected) in [
            ("2025-11-24T16:00:00Z", Some(1_764_000_000_000_000)),
            ("2025-11-24T16:00:00.5Z", Some(1_764_000_000_500_000)),
            ("2025-11-25T00:00:00+08:00", Some(1_764_000_000_000_000)),
            ("2025-11-24", Some(1_763_942_400_000_000)),
            ("2025-02-29", None),
            ("2025-11-24T25:00:00Z", None),
            ("2025-11-24T16:00:00", None),
            ("yesterday", None),
        ] {
            assert_eq!(parse_rfc3339_micros(text), expected, "{text}");
        }
    }
}
