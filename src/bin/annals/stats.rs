//! `annals stats`: what a store holds, from a read-only open.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use serde_json::json;

use crate::exit::{Failure, out};
use crate::fmt::{Table, bytes, count, plural};
use crate::open;

/// Show a store's segments, events, streams, bytes, index sizes, what a
/// scavenge would reclaim, largest streams and format version. Opens the
/// store read-only, so it works while another process writes.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals stats ./data
  annals stats ./data --top 3 --json

\"index files\" is the bytes of the sealed segments' index files (mapped,
not loaded); \"active index\" is the memory of the active segment's
event-by-event index, the only index memory that grows with events.
\"reclaimable\" is what `annals scavenge` would remove: the events no read
returns any more (deleted, truncated, past a limit); counting it reads
every record."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// How many of the largest streams to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// One JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `annals stats`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = open::reader(&args.dir)?;
    let stats = store.stats();
    // Of the metrics, only what the files show means anything here: the
    // counters count this process's calls since its own open, and this
    // process only reads once. A program gets them live from
    // `Store::metrics`.
    let on_disk = store.metrics().bytes_on_disk;
    let largest = store.largest_streams(args.top);
    let reclaimable = store.reclaimable()?;
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    if args.json {
        let largest: Vec<_> = largest
            .iter()
            .map(|(stream, events)| json!({ "stream": &**stream, "events": events }))
            .collect();
        let value = json!({
            "dir": args.dir.display().to_string(),
            "format_version": stats.format_version,
            "segments": stats.segments,
            "segment_size": stats.segment_size,
            "events": stats.events,
            "first_segment": stats.first_segment,
            "first_position": stats.first_position,
            "streams": stats.streams,
            "bytes_used": stats.bytes_used,
            "bytes_on_disk": on_disk,
            "index_file_bytes": stats.index_file_bytes,
            "active_index_bytes": stats.active_index_bytes,
            "reclaimable_events": reclaimable.events_removed,
            "reclaimable_bytes": reclaimable.bytes_reclaimed,
            "largest_streams": largest,
        });
        out(writeln!(stdout, "{value}"))?;
    } else {
        let mut table = Table::new(&[]);
        let mut row = |name: &str, value: String| table.row(vec![name.to_owned(), value]);
        row("store", args.dir.display().to_string());
        row("format version", stats.format_version.to_string());
        row(
            "segments",
            format!(
                "{} of {} each holding events",
                stats.segments,
                bytes(stats.segment_size)
            ),
        );
        row("events", count(stats.events));
        if stats.first_segment > 0 {
            row(
                "log starts",
                format!(
                    "at position {} (segment {}): retention dropped the ones before",
                    count(stats.first_position),
                    stats.first_segment
                ),
            );
        }
        row("streams", count(stats.streams));
        row(
            "bytes used",
            format!(
                "{} ({} bytes)",
                bytes(stats.bytes_used),
                count(stats.bytes_used)
            ),
        );
        row(
            "bytes on disk",
            format!("{} ({} bytes), allocated", bytes(on_disk), count(on_disk)),
        );
        row(
            "index files",
            format!(
                "{} ({} bytes), mapped",
                bytes(stats.index_file_bytes),
                count(stats.index_file_bytes)
            ),
        );
        row(
            "active index",
            format!(
                "{} ({} bytes) in memory",
                bytes(stats.active_index_bytes),
                count(stats.active_index_bytes)
            ),
        );
        row(
            "reclaimable",
            format!(
                "{} ({} bytes) in {}; `annals scavenge` removes them",
                bytes(reclaimable.bytes_reclaimed),
                count(reclaimable.bytes_reclaimed),
                plural(reclaimable.events_removed, "removed event")
            ),
        );
        out(table.write(&mut stdout))?;
        if !largest.is_empty() {
            out(writeln!(stdout, "\nlargest streams:"))?;
            let mut top = Table::new(&["  STREAM", "EVENTS"]);
            for (stream, events) in &largest {
                top.row(vec![format!("  {stream}"), count(*events)]);
            }
            out(top.write(&mut stdout))?;
        }
    }
    out(stdout.flush())
}
