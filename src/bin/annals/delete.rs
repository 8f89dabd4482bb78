//! `annals delete`: soft-delete a stream, or tombstone it with `--hard`.

use std::io::Write;
use std::path::PathBuf;

use annals::ExpectedVersion;

use crate::exit::{Failure, out};
use crate::open;

/// Delete a stream: soft (it reads as missing; an append starts it again at
/// the next version), or for good with --hard (a tombstone: every later read
/// of and append to it fails). Its events stay on disk until `annals scavenge`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals delete ./data cart-42
  annals delete ./data cart-42 --expected 7
  annals delete ./data user-17 --hard      # for good; then `annals scavenge ./data` erases it

A tombstoned stream answers exit code 3 from read and append. The writer
lock is held only while the command runs; another process that has the
store open for writing makes this fail with exit code 4."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The stream to delete.
    pub stream: String,
    /// Tombstone the stream: deleted for good, its name never used again.
    #[arg(long)]
    pub hard: bool,
    /// The check the stream's version must pass: `any`, `no-stream`,
    /// `exists`, or a version number N (the stream's last version must be N).
    #[arg(long, default_value = "any", value_parser = crate::append::parse_expected)]
    pub expected: ExpectedVersion,
}

/// Runs `annals delete`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = open::writer(&args.dir, false)?;
    let before = store.stream_version(&args.stream);
    if args.hard {
        store.tombstone_stream(&args.stream, args.expected)?;
    } else {
        store.delete_stream(&args.stream, args.expected)?;
    }
    store.close()?;
    let what = match (args.hard, before) {
        (true, _) => "tombstoned (deleted for good)",
        (false, Some(_)) => "deleted",
        (false, None) => "had no events; nothing to delete",
    };
    let mut stdout = std::io::stdout().lock();
    out(writeln!(stdout, "{}: {what}", args.stream))
}
