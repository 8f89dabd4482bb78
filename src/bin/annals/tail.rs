//! `annals tail`: follow a live store from another process.
//!
//! The writer holds the directory's lock, so tail opens the store
//! read-only (no lock, nothing modified) and polls `Store::refresh`, which
//! picks up every batch the writer has completed, whole or not at all.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use annals::{Error, RecordedEvent, Store};

use crate::events;
use crate::exit::{Failure, out};
use crate::open;

/// How many events one read fetches while catching up.
const PAGE_EVENTS: usize = 1_000;

/// Print events as they are appended, until interrupted (Ctrl-C). Opens
/// the store read-only, so it follows a writer in another process.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals tail ./data
  annals tail ./data --stream order-42 --json
  annals tail ./data --from 0          # everything so far, then follow

Each event is one line: #POSITION STREAM@VERSION TYPE DATA, or one JSON
object per line with --json (the fields of `annals read --json`). A batch
shows up whole or not at all. A batch the writer has written but not yet
synced can show up a moment before its append returns."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// Follow only this stream (it need not exist yet).
    #[arg(long)]
    pub stream: Option<String>,
    /// Start at this position (or version, with --stream) instead of at the
    /// current end.
    #[arg(long)]
    pub from: Option<u64>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// How often to look for new events, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub interval_ms: u64,
}

/// Runs `annals tail`; returns only on an error (a closed output counts).
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = open::reader(&args.dir)?;
    let mut next = match (&args.stream, args.from) {
        (_, Some(from)) => from,
        (Some(stream), None) => store.stream_version(stream).map_or(0, |v| v + 1),
        (None, None) => store.global_position(),
    };
    match &args.stream {
        Some(stream) => eprintln!(
            "following stream '{stream}' in {} from version {next} (Ctrl-C to stop)",
            args.dir.display()
        ),
        None => eprintln!(
            "following {} from position {next} (Ctrl-C to stop)",
            args.dir.display()
        ),
    }
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    loop {
        loop {
            let page = read_page(&store, args.stream.as_deref(), next)?;
            let Some(last) = page.last() else { break };
            next = match args.stream {
                Some(_) => last.version + 1,
                None => last.position + 1,
            };
            for e in &page {
                if args.json {
                    out(events::json_line(&mut stdout, e))?;
                } else {
                    out(events::line(&mut stdout, e))?;
                }
            }
        }
        out(stdout.flush())?;
        // Polling is the design here: the writer is another process and
        // the crate offers no change notification.
        std::thread::sleep(Duration::from_millis(args.interval_ms));
        store.refresh()?;
    }
}

/// The next page of events from `next`: of one stream (empty while the
/// stream does not exist yet), or of the global log.
fn read_page(
    store: &Store,
    stream: Option<&str>,
    next: u64,
) -> Result<Vec<RecordedEvent>, Failure> {
    match stream {
        Some(stream) => match store.read_stream(stream, next, PAGE_EVENTS) {
            Err(Error::StreamNotFound { .. }) => Ok(Vec::new()),
            other => Ok(other?),
        },
        None => Ok(store.read_all(next, PAGE_EVENTS)?),
    }
}
