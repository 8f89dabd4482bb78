//! `annals truncate`: hide a stream's versions below a bound.

use std::io::Write;
use std::path::PathBuf;

use crate::exit::{Failure, out};
use crate::open;

/// Truncate a stream: its versions below --before are no longer read (the
/// stream and its version stay). They stay on disk until `annals scavenge`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals truncate ./data sensor-1 --before 1000

A bound at or below the stream's current one changes nothing."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The stream to truncate.
    pub stream: String,
    /// The first version to keep.
    #[arg(long, value_name = "VERSION")]
    pub before: u64,
}

/// Runs `annals truncate`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = open::writer(&args.dir, false)?;
    store.truncate_stream_before(&args.stream, args.before)?;
    store.close()?;
    let mut stdout = std::io::stdout().lock();
    out(writeln!(
        stdout,
        "{}: versions below {} are no longer read",
        args.stream, args.before
    ))
}
