//! `annals scavenge`: remove for good what no read returns any more.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::exit::{Failure, out};
use crate::fmt::{bytes, plural};
use crate::open;

/// Rewrite the sealed segments without the events no read returns any more
/// (deleted, tombstoned, truncated, past a stream's limits), so that their
/// bytes are in no file of the store. The active segment is sealed first.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals delete ./data user-17 --hard && annals scavenge ./data
  annals scavenge ./data --json

Takes the writer lock (another process that has the store open for
writing makes this fail with exit code 4); `annals stats` shows what a
scavenge would reclaim. Crash-safe: an interrupted scavenge leaves each
segment either as it was or rewritten whole."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs `annals scavenge`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = open::writer(&args.dir, false)?;
    let bar = if std::io::stderr().is_terminal() && !args.json {
        let style = ProgressStyle::with_template("scavenging    [{bar:30}] {pos}/{len} segments")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        ProgressBar::new(0).with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let report = store
        .scavenge_with_progress(&mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .inspect_err(|_| bar.abandon())?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    store.close()?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let value = json!({
            "segments_scanned": report.segments_scanned,
            "segments_rewritten": report.segments_rewritten,
            "events_removed": report.events_removed,
            "bytes_reclaimed": report.bytes_reclaimed,
            "seconds": elapsed.as_secs_f64(),
        });
        return out(writeln!(stdout, "{value}"));
    }
    out(writeln!(
        stdout,
        "scavenged in {:.1} s: {} of {} rewritten, {} removed, {} reclaimed",
        elapsed.as_secs_f64(),
        report.segments_rewritten,
        plural(report.segments_scanned, "sealed segment"),
        plural(report.events_removed, "event"),
        bytes(report.bytes_reclaimed)
    ))
}
