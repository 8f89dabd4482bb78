//! Small formatting helpers for people: counts, sizes, rates, times and
//! aligned tables.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// `1234567` as `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and `what`, with an `s` unless `n` is one: `1 event`, `2 events`.
pub fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{} {what}s", count(n))
    }
}

/// A byte count in binary units: `344.1 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// A duration at a precision that suits its size: `850 µs`, `12.3 ms`,
/// `4.56 s`.
pub fn duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// Events per second over `elapsed`, rounded, with separators.
pub fn rate(events: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return "n/a".to_owned();
    }
    format!("{} events/s", count((events as f64 / secs).round() as u64))
}

/// Microseconds since the Unix epoch as an RFC 3339 UTC time with
/// microseconds: `2026-11-26T03:46:09.123456Z`.
pub use annals::format::recorded_at_utc as utc;

/// A payload as one line of text for a table: UTF-8 with control
/// characters escaped, cut to `max_chars`; or a note that it is binary.
pub fn payload_excerpt(data: &[u8], max_chars: usize) -> String {
    let Ok(text) = std::str::from_utf8(data) else {
        return format!("<{} bytes, not UTF-8; use --json>", data.len());
    };
    let mut out = String::new();
    for (shown, c) in text.chars().enumerate() {
        if shown == max_chars {
            out.push('…');
            return out;
        }
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// A progress bar over `len` events, labelled `what`, showing events/s. It
/// draws on standard error only when that is a terminal.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let template = format!(
        "{what:<13} [{{bar:30}}] {{human_pos}}/{{human_len}} events  {{rate}}  eta {{eta}}"
    );
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{} events/s", count(state.per_sec().round() as u64));
            },
        )
        .progress_chars("=> ");
    ProgressBar::new(len).with_style(style)
}

/// A table of left-aligned text columns, separated by two spaces; the last
/// column is not padded.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header` (pass an empty slice for none).
    pub fn new(header: &[&str]) -> Table {
        let mut rows = Vec::new();
        if !header.is_empty() {
            rows.push(header.iter().map(|s| (*s).to_owned()).collect());
        }
        Table { rows }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the table to `out`.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths.get(i).copied().unwrap_or(0);
                    let _ = write!(line, "{cell:<pad$}  ");
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
    }

    #[test]
    fn excerpts_escape_and_cut() {
        assert_eq!(payload_excerpt(b"a\nb", 10), "a\\nb");
        assert_eq!(payload_excerpt(b"abcdef", 3), "abc…");
        assert_eq!(payload_excerpt(b"abc", 3), "abc");
        assert_eq!(
            payload_excerpt(&[0xff, 0xfe], 10),
            "<2 bytes, not UTF-8; use --json>"
        );
    }
}
