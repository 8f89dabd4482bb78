//! `annals read`: a stream, or the global log, as a table or as JSON lines.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use crate::events;
use crate::exit::{Failure, out};
use crate::open;

/// Read a stream, or the global log with --all. Opens the store read-only,
/// so it works while another process writes.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals read ./data order-42
  annals read ./data order-42 --from 10 --max 5
  annals read ./data --all --from 1000 --max 50 --json | jq .type

With --json, each line is one object with the fields position, stream,
version, type, id, recorded_at (RFC 3339, UTC), recorded_at_us, data and
metadata; data_encoding and metadata_encoding say whether each is UTF-8
text (\"utf8\") or base64 (\"base64\")."))]
#[command(group = clap::ArgGroup::new("what").required(true).args(["stream", "all"]))]
#[command(
    override_usage = "annals read [OPTIONS] <DIR> <STREAM>\n       annals read [OPTIONS] <DIR> --all"
)]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The stream to read.
    pub stream: Option<String>,
    /// Read the global log, in position order, instead of one stream.
    #[arg(long)]
    pub all: bool,
    /// The first version (of the stream) or position (with --all) to read.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// The most events to print.
    #[arg(long, default_value_t = 100)]
    pub max: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `annals read`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = open::reader(&args.dir)?;
    let events = match &args.stream {
        Some(stream) if !args.all => store.read_stream(stream, args.from, args.max)?,
        _ => store.read_all(args.from, args.max)?,
    };
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    if args.json {
        for e in &events {
            out(events::json_line(&mut stdout, e))?;
        }
    } else {
        out(events::table(&events).write(&mut stdout))?;
    }
    out(stdout.flush())?;
    // Hints go to standard error, so that they never mix with --json.
    if let Some(last) = events.last() {
        let (more, next) = match &args.stream {
            Some(stream) if !args.all => (
                store
                    .stream_version(stream)
                    .is_some_and(|v| v > last.version),
                last.version + 1,
            ),
            _ => (
                store.global_position() > last.position + 1,
                last.position + 1,
            ),
        };
        if more {
            eprintln!("(more events follow: --from {next})");
        }
    } else {
        eprintln!("(no events from {})", args.from);
    }
    Ok(())
}
