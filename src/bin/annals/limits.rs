//! `annals limits`: set (or remove) a stream's count and age limits.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use annals::StreamLimits;

use crate::exit::{Failure, out};
use crate::open;

/// Set a stream's limits: only its last --max-count events, and only those
/// recorded within --max-age, are read. Without either, the limits are
/// removed. Events past them stay on disk until `annals scavenge`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals limits ./data sensor-1 --max-count 1000
  annals limits ./data sessions --max-age 7d
  annals limits ./data sessions            # remove the limits

Ages are a number and a unit: s, m, h, d or w (90m, 36h, 7d)."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The stream to limit.
    pub stream: String,
    /// Keep this many of the stream's last events readable (at least 1).
    #[arg(long, value_name = "N")]
    pub max_count: Option<u64>,
    /// Keep the events recorded within this age readable, e.g. 7d.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub max_age: Option<Duration>,
}

/// Parses an age: a whole number and a unit of s, m, h, d or w.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not an age such as 90s, 30m, 36h, 7d or 2w");
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(unit_at);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{s}' is too long an age"))
}

/// Runs `annals limits`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let mut limits = StreamLimits::default();
    if let Some(n) = args.max_count {
        limits = limits.max_count(n);
    }
    if let Some(age) = args.max_age {
        limits = limits.max_age(age);
    }
    let store = open::writer(&args.dir, false)?;
    store.set_stream_limits(&args.stream, limits)?;
    store.close()?;
    let said = match (args.max_count, args.max_age) {
        (None, None) => "limits removed".to_owned(),
        (count, age) => {
            let mut parts = Vec::new();
            if let Some(n) = count {
                parts.push(format!("the last {n} events"));
            }
            if let Some(a) = age {
                parts.push(format!("events of the last {}s", a.as_secs()));
            }
            format!("only {} are read", parts.join(" and "))
        }
    };
    let mut stdout = std::io::stdout().lock();
    out(writeln!(stdout, "{}: {said}", args.stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_their_units() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(2 * 604_800)));
        for bad in ["", "7", "d", "7x", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}
