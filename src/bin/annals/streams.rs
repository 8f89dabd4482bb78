//! `annals streams`: the streams of a store in id order, with their last
//! versions and event counts, a page at a time through
//! `Store::streams`, so that memory stays flat however many there are.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use serde_json::json;

use crate::exit::{Failure, out};
use crate::fmt::{Table, count};
use crate::open;

/// How many streams one call of `Store::streams` returns.
const PAGE_STREAMS: usize = 1_000;

/// List the streams of a store in id order (byte order of the UTF-8 ids),
/// with each one's last version and event count. Opens the store
/// read-only, so it works while another process writes.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals streams ./data
  annals streams ./data --prefix order- --max 20
  annals streams ./data --json | jq -r .stream

With --json, each line is one object with the fields stream, last_version
and events."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// Only streams whose id starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// The most streams to print (default: all).
    #[arg(long)]
    pub max: Option<u64>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `annals streams`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = open::reader(&args.dir)?;
    let prefix = args.prefix.as_deref().unwrap_or("");
    let max = args.max.unwrap_or(u64::MAX);
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    let mut table = Table::new(&["STREAM", "LAST VERSION", "EVENTS"]);
    let mut printed = 0u64;
    let mut emit = |stream: &str, last_version: u64, events: u64| -> Result<(), Failure> {
        if args.json {
            let line = json!({ "stream": stream, "last_version": last_version, "events": events });
            out(writeln!(stdout, "{line}"))?;
        } else {
            table.row(vec![
                stream.to_owned(),
                last_version.to_string(),
                count(events),
            ]);
        }
        Ok(())
    };
    // The streams after the cursor: the prefix itself is the one id that
    // sorts first among those it starts, and is looked at on its own.
    if !prefix.is_empty()
        && max > 0
        && let Some(last) = store.stream_version(prefix)
    {
        emit(prefix, last, last + 1)?;
        printed += 1;
    }
    let mut cursor = (!prefix.is_empty()).then(|| prefix.to_owned());
    'pages: while printed < max {
        let page = store.streams(cursor.as_deref(), PAGE_STREAMS);
        let Some(last) = page.last() else { break };
        let next = last.stream_id.to_string();
        for s in &page {
            if !s.stream_id.starts_with(prefix) || printed >= max {
                break 'pages;
            }
            emit(&s.stream_id, s.last_version, s.event_count)?;
            printed += 1;
        }
        cursor = Some(next);
    }
    if !args.json {
        if printed == 0 {
            out(writeln!(stdout, "no streams"))?;
        } else {
            out(table.write(&mut stdout))?;
        }
    }
    out(stdout.flush())
}
