//! How a record's recorded-at field (microseconds since the Unix epoch)
//! reads as a time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `recorded_at_us` as a [`SystemTime`].
pub fn recorded_at_time(recorded_at_us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(recorded_at_us)
}

/// `recorded_at_us` as an RFC 3339 UTC time with microseconds, the form
/// `annals read --json` and [`RecordedEvent`](crate::RecordedEvent)'s
/// `Serialize` (feature `serde`) give: `2026-11-26T03:46:09.123456Z`.
///
/// ```
/// assert_eq!(annals::format::recorded_at_utc(0), "1970-01-01T00:00:00.000000Z");
/// ```
pub fn recorded_at_utc(recorded_at_us: u64) -> String {
    let secs = recorded_at_us / 1_000_000;
    let micros = recorded_at_us % 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_matches_known_instants() {
        assert_eq!(recorded_at_utc(0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 12:34:56.789 UTC, a leap day.
        assert_eq!(
            recorded_at_utc(951_827_696_789_000),
            "2000-02-29T12:34:56.789000Z"
        );
        // 2024-12-31 23:59:59 UTC.
        assert_eq!(
            recorded_at_utc(1_735_689_599_000_000),
            "2024-12-31T23:59:59.000000Z"
        );
        // The largest value a record can hold does not overflow.
        assert!(recorded_at_utc(u64::MAX).ends_with('Z'));
    }

    #[test]
    fn time_is_micros_after_the_epoch() {
        let t = recorded_at_time(1_500_000);
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_micros(1_500_000)
        );
    }
}
