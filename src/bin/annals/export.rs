//! `annals export`: the global log as JSON lines, in the shape of
//! `annals read --json`, a page at a time, so that memory stays flat
//! however large the store.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use crate::events;
use crate::exit::{Code, Failure, out};
use crate::open;

/// How many events one read takes.
const PAGE_EVENTS: usize = 1_000;

/// Write the events of a store as JSON lines on standard output, one event
/// a line, in position order, in the shape of `annals read --json`. Opens
/// the store read-only, so it works while another process writes; the
/// export ends where the log ended when it began (or at --to).
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals export ./data > events.jsonl
  annals export ./data --from 1000 --to 2000 | gzip > slice.jsonl.gz
  annals export ./data | annals import ./copy - --create

Each line has the fields position, stream, version, type, id, recorded_at,
recorded_at_us, data_encoding, data, metadata_encoding and metadata (data
and metadata as text when UTF-8, as base64 otherwise)."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The first position to export (default: 0).
    #[arg(long)]
    pub from: Option<u64>,
    /// The position to stop before (default: the end of the log when the
    /// export begins).
    #[arg(long)]
    pub to: Option<u64>,
}

/// Runs `annals export`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let from = args.from.unwrap_or(0);
    if let Some(to) = args.to
        && to < from
    {
        return Err(Failure::new(
            Code::Usage,
            format!("--to {to} is before --from {from}"),
        ));
    }
    let store = open::reader(&args.dir)?;
    // A live writer goes on appending: stop where the log ended at the
    // start, so that the export ends, and is a prefix of the log.
    let end = args.to.unwrap_or(u64::MAX).min(store.global_position());
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    let mut at = from;
    while at < end {
        let page = store.read_all(at, PAGE_EVENTS)?;
        let Some(last) = page.last() else { break };
        let next = last.position.saturating_add(1);
        for e in page.iter().take_while(|e| e.position < end) {
            out(events::json_line(&mut stdout, e))?;
        }
        at = next;
    }
    out(stdout.flush())
}
