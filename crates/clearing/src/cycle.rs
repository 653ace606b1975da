//! A business date's cycle: the span of time whose transactions it settles. The cycle of date
//! D closes at the cut-off on D in the acquirer's time zone and opens at the cut-off the day
//! before, so a transaction received after the cut-off belongs to the next date's cycle.
//!
//! The calendar date in the acquirer's time zone is `acquirer::effects::business_date` (China
//! Standard Time); other fixed offsets are reached by shifting the instant before asking it.

use crate::ClearingError;
use issuer::BusinessDate;

const SECONDS_PER_DAY: i64 = 86_400;
/// China Standard Time, the zone `acquirer::effects::business_date` answers in.
const CHINA_OFFSET_SECONDS: i64 = 8 * 3_600;

/// When and where a business day ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CycleRule {
    /// The acquirer's time zone as a fixed offset from UTC, in seconds.
    pub utc_offset_seconds: i64,
    /// Seconds after local midnight at which a date's cycle closes, in 1..=86 400; 86 400 is
    /// midnight at the end of the date (a calendar-day cycle).
    pub cut_off_seconds: i64,
}

impl Default for CycleRule {
    /// Asia/Shanghai with a 23:00 cut-off, the usual day cut of China UnionPay clearing.
    fn default() -> Self {
        CycleRule {
            utc_offset_seconds: CHINA_OFFSET_SECONDS,
            cut_off_seconds: 23 * 3_600,
        }
    }
}

impl CycleRule {
    /// From the configuration's words: `time_zone` is `Asia/Shanghai` (or another zone of
    /// China Standard Time), `UTC`, or a fixed `UTC+HH:MM` / `UTC-HH:MM`; `cut_off` is `HH:MM`,
    /// with `00:00` and `24:00` both meaning midnight at the end of the date.
    pub fn parse(time_zone: &str, cut_off: &str) -> Result<CycleRule, ClearingError> {
        let utc_offset_seconds = match time_zone {
            "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Harbin" | "Asia/Urumqi" | "PRC" => {
                CHINA_OFFSET_SECONDS
            }
            "UTC" | "Etc/UTC" => 0,
            other => fixed_offset(other).ok_or_else(|| {
                ClearingError::Config(format!(
                    "cycle.time_zone = {other:?} is not a zone easypos knows: use Asia/Shanghai, UTC or a fixed offset such as UTC+08:00 (zones with daylight saving are not supported)"
                ))
            })?,
        };
        let cut_off_seconds = hours_minutes(cut_off)
            .map(|seconds| {
                if seconds == 0 {
                    SECONDS_PER_DAY
                } else {
                    seconds
                }
            })
            .ok_or_else(|| {
                ClearingError::Config(format!(
                    "cycle.cut_off = {cut_off:?} is not a time of day: use HH:MM, for example 23:00"
                ))
            })?;
        Ok(CycleRule {
            utc_offset_seconds,
            cut_off_seconds,
        })
    }

    /// The business date whose cycle holds the instant `unix_seconds`.
    pub fn date_of(&self, unix_seconds: i64) -> BusinessDate {
        let local_shift = self.utc_offset_seconds - CHINA_OFFSET_SECONDS;
        let after_cut_off = SECONDS_PER_DAY - self.cut_off_seconds;
        acquirer::effects::business_date(unix_seconds + local_shift + after_cut_off)
    }

    /// The cycle of `date`: `[start, end)` in microseconds since the epoch.
    pub fn window(&self, date: BusinessDate) -> Window {
        let midnight = days_from_civil(date) * SECONDS_PER_DAY - self.utc_offset_seconds;
        let end = midnight + self.cut_off_seconds;
        Window {
            date,
            start_us: (end - SECONDS_PER_DAY) * 1_000_000,
            end_us: end * 1_000_000,
        }
    }
}

/// The span of one cycle, in microseconds since the epoch (the journal's unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub date: BusinessDate,
    /// Inclusive.
    pub start_us: i64,
    /// Exclusive: the cut-off.
    pub end_us: i64,
}

impl Window {
    pub fn contains(&self, at_us: i64) -> bool {
        (self.start_us..self.end_us).contains(&at_us)
    }
}

/// `YYYY-MM-DD` to a date, refusing anything that is not a real calendar date.
pub fn parse_date(text: &str) -> Result<BusinessDate, ClearingError> {
    let refuse = || {
        ClearingError::Config(format!(
            "{text:?} is not a date: give it as YYYY-MM-DD, for example 2026-11-25"
        ))
    };
    let mut parts = text.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse());
    };
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return Err(refuse());
    }
    let date = BusinessDate {
        year: year.parse().map_err(|_| refuse())?,
        month: month.parse().map_err(|_| refuse())?,
        day: day.parse().map_err(|_| refuse())?,
    };
    // A real date comes back unchanged from the day count.
    let noon = days_from_civil(date) * SECONDS_PER_DAY + 12 * 3_600 - CHINA_OFFSET_SECONDS;
    if date.month == 0 || date.day == 0 || acquirer::effects::business_date(noon) != date {
        return Err(refuse());
    }
    Ok(date)
}

pub fn format_date(date: BusinessDate) -> String {
    format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
}

/// Local date and time of `at_us` as `YYYY-MM-DD HH:MM:SS` (for reports).
pub fn format_local(rule: &CycleRule, at_us: i64) -> String {
    let seconds = at_us.div_euclid(1_000_000) + rule.utc_offset_seconds;
    // `business_date` answers in UTC+8: shift back so that it reads the local wall clock.
    let date = acquirer::effects::business_date(seconds - CHINA_OFFSET_SECONDS);
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{} {:02}:{:02}:{:02}",
        format_date(date),
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`, the inverse of
/// the acquirer's `civil_from_days`).
fn days_from_civil(date: BusinessDate) -> i64 {
    let month = i64::from(date.month);
    let year = i64::from(date.year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(date.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn hours_minutes(text: &str) -> Option<i64> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i64 = hours.parse().ok()?;
    let minutes: i64 = minutes.parse().ok()?;
    match (hours, minutes) {
        (24, 0) => Some(0),
        (0..=23, 0..=59) => Some(hours * 3_600 + minutes * 60),
        _ => None,
    }
}

fn fixed_offset(text: &str) -> Option<i64> {
    let rest = text.strip_prefix("UTC")?;
    let (sign, rest) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let seconds = hours_minutes(rest)?;
    (seconds <= 14 * 3_600).then_some(sign * seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: u16, month: u8, day: u8) -> BusinessDate {
        BusinessDate { year, month, day }
    }

    #[test]
    fn a_cycle_closes_at_the_cut_off_in_shanghai() {
        let rule = CycleRule::default();
        // 2026-11-25 23:00 in Shanghai is 15:00Z: 1_795_618_800.
        let window = rule.window(date(2026, 11, 25));
        assert_eq!(window.end_us, 1_795_618_800 * 1_000_000);
        assert_eq!(window.start_us, (1_795_618_800 - 86_400) * 1_000_000);
        assert_eq!(rule.date_of(1_795_618_799), date(2026, 11, 25));
        assert_eq!(
            rule.date_of(1_795_618_800),
            date(2026, 11, 26),
            "received at the cut-off: the next cycle"
        );
        assert_eq!(rule.date_of(1_795_618_800 - 86_400), date(2026, 11, 25));
        assert_eq!(rule.date_of(1_795_618_799 - 86_400), date(2026, 11, 24));
    }

    #[test]
    fn midnight_cut_offs_and_other_zones() {
        let calendar = CycleRule::parse("Asia/Shanghai", "00:00").unwrap();
        assert_eq!(
            calendar,
            CycleRule::parse("Asia/Shanghai", "24:00").unwrap()
        );
        let window = calendar.window(date(2026, 11, 25));
        // 2026-11-25T00:00+08:00 = 2026-11-24T16:00Z.
        assert_eq!(window.start_us, 1_795_536_000 * 1_000_000);
        assert_eq!(calendar.date_of(1_795_536_000), date(2026, 11, 25));
        assert_eq!(calendar.date_of(1_795_535_999), date(2026, 11, 24));
        let utc = CycleRule::parse("UTC", "00:00").unwrap();
        assert_eq!(utc.date_of(1_795_564_800), date(2026, 11, 25), "00:00Z");
        assert_eq!(utc.date_of(1_795_564_799), date(2026, 11, 24));
        assert_eq!(
            CycleRule::parse("UTC-05:00", "18:30").unwrap(),
            CycleRule {
                utc_offset_seconds: -5 * 3_600,
                cut_off_seconds: 18 * 3_600 + 30 * 60
            }
        );
        for (zone, cut_off) in [
            ("Europe/Paris", "23:00"),
            ("UTC+8", "23:00"),
            ("UTC", "25:00"),
            ("UTC", "2300"),
        ] {
            assert!(
                matches!(
                    CycleRule::parse(zone, cut_off),
                    Err(ClearingError::Config(_))
                ),
                "{zone} {cut_off}"
            );
        }
    }

    #[test]
    fn dates_are_checked() {
        assert_eq!(parse_date("2024-02-29").unwrap(), date(2024, 2, 29));
        assert_eq!(format_date(parse_date("2026-11-25").unwrap()), "2026-11-25");
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-11-31",
            "2026-11-00",
            "26-11-25",
            "2026/11/25",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_times_for_reports() {
        let rule = CycleRule::default();
        assert_eq!(
            format_local(&rule, 1_795_618_799 * 1_000_000),
            "2026-11-25 22:59:59"
        );
    }
}
