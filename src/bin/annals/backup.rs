//! `annals backup`: an online backup of a store into a directory, through
//! `Store::backup`, from a read-only open, so that it runs while another
//! process writes.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use crate::exit::{Failure, out};
use crate::fmt::{bytes, count, duration, plural};
use crate::open;

/// Back up a store into a directory while it is in use: every event
/// acknowledged up to a moment during the run, whole batches only, as a
/// store that opens and verifies. Backing up into the same directory again
/// copies only what changed.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals backup ./data /backups/data       # a new or empty directory, or an earlier backup
  annals backup ./data /backups/data --json
  annals verify /backups/data

DEST must be missing, empty, or an earlier backup of the same store; a file,
the store itself or a directory holding anything else is refused (exit 2),
changing nothing. Sealed segments are copied once; a later run leaves the
ones already there alone and extends the one that grew. A run cut short
leaves either the earlier backup or a directory holding BACKUP-INCOMPLETE,
which does not open as a store until a later run completes."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// Where the backup goes.
    pub dest: PathBuf,
    /// One JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// Runs `annals backup`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = open::reader(&args.dir)?;
    let started = Instant::now();
    let report = store.backup(&args.dest)?;
    let elapsed = started.elapsed();
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let line = json!({
            "dest": args.dest.display().to_string(),
            "events": report.events,
            "segments": report.segments,
            "segments_unchanged": report.segments_unchanged,
            "segments_extended": report.segments_extended,
            "bytes_copied": report.bytes_copied,
            "index_bytes": report.index_bytes,
            "seconds": elapsed.as_secs_f64(),
        });
        return out(writeln!(stdout, "{line}"));
    }
    let rate = report.bytes_copied as f64 / elapsed.as_secs_f64().max(1e-9);
    out(writeln!(
        stdout,
        "backed up {} in {} to {}: copied {} of segments ({}/s) and {} of indexes in {}; \
         {} unchanged, {} extended",
        plural(report.events, "event"),
        plural(report.segments, "segment"),
        args.dest.display(),
        bytes(report.bytes_copied),
        bytes(rate as u64),
        bytes(report.index_bytes),
        duration(elapsed),
        count(report.segments_unchanged),
        count(report.segments_extended),
    ))
}
