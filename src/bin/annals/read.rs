//! `annals read`: a stream, or the global log, forward or backward,
//! filtered by stream prefix or event type, or one event by its id, as a
//! table or as JSON lines.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use annals::{Filter, RecordedEvent, Store};

use crate::events;
use crate::exit::{Code, Failure, out};
use crate::open;

/// How many events one read of the global log fetches while filtering.
const PAGE_EVENTS: usize = 1_000;

/// Read a stream, or the global log with --all. Opens the store read-only,
/// so it works while another process writes.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals read ./data order-42
  annals read ./data order-42 --from 10 --max 5
  annals read ./data order-42 --backward --max 10     # the last 10, newest first
  annals read ./data --all --from 1000 --max 50 --json | jq .type
  annals read ./data --all --prefix order- --type OrderPaid
  annals read ./data --all --backward --max 20
  annals read ./data --id 0192f0c4-5b7e-7cc1-8a3e-2f1d9c0b4a11   # one event, by id

With --json, each line is one object with the fields position, stream,
version, type, id, recorded_at (RFC 3339, UTC), recorded_at_us, data and
metadata; data_encoding and metadata_encoding say whether each is UTF-8
text (\"utf8\") or base64 (\"base64\").

--prefix (any of several) and --type (any of several) filter the global
log; given both, an event must pass both. --backward reads newest first,
from --from (default: the end) down.

--id prints the one event with that id (ids are unique in a store), or
exits 3 when there is none."))]
#[command(group = clap::ArgGroup::new("what").required(true).args(["stream", "all", "id"]))]
#[command(
    override_usage = "annals read [OPTIONS] <DIR> <STREAM>\n       annals read [OPTIONS] <DIR> --all [--prefix P]... [--type T]...\n       annals read [OPTIONS] <DIR> --id <UUID>"
)]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The stream to read.
    pub stream: Option<String>,
    /// Read the global log, in position order, instead of one stream.
    #[arg(long)]
    pub all: bool,
    /// The first version (of the stream) or position (with --all) to read;
    /// default 0, or the end with --backward.
    #[arg(long)]
    pub from: Option<u64>,
    /// The most events to print.
    #[arg(long, default_value_t = 100)]
    pub max: usize,
    /// Newest first: versions (or positions) descending from --from.
    #[arg(long)]
    pub backward: bool,
    /// With --all: only streams whose id starts with this (repeatable).
    #[arg(long, conflicts_with = "stream")]
    pub prefix: Vec<String>,
    /// With --all: only events of this type (repeatable).
    #[arg(long = "type", conflicts_with = "stream")]
    pub event_type: Vec<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print the event with this id (a UUID) instead.
    #[arg(long, value_name = "UUID", conflicts_with_all = ["stream", "all", "from", "backward", "prefix", "event_type"])]
    pub id: Option<uuid::Uuid>,
}

/// Runs `annals read`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let store = open::reader(&args.dir)?;
    if let Some(id) = args.id {
        let Some(event) = store.find_event(id)? else {
            return Err(Failure::new(
                Code::NotFound,
                format!("no event with id {id} in {}", args.dir.display()),
            ));
        };
        let mut stdout = BufWriter::new(std::io::stdout().lock());
        if args.json {
            out(events::json_line(&mut stdout, &event))?;
        } else {
            out(events::table(std::slice::from_ref(&event)).write(&mut stdout))?;
        }
        return out(stdout.flush());
    }
    let filter = filter(&args.prefix, &args.event_type);
    let from = args
        .from
        .unwrap_or(if args.backward { u64::MAX } else { 0 });
    let (events, next) = match &args.stream {
        Some(stream) if !args.all => {
            let events = if args.backward {
                store.read_stream_backward(stream, from, args.max)?
            } else {
                store.read_stream(stream, from, args.max)?
            };
            let next = next_stream(&store, stream, args.backward, events.last());
            (events, next)
        }
        _ => match (&filter, args.backward) {
            (None, false) => {
                let events = store.read_all(from, args.max)?;
                // Positions past the last event may hold only removed
                // events or control records: more follow only if a read
                // from there finds one.
                let next = events
                    .last()
                    .map(|l| l.position + 1)
                    .filter(|n| *n < store.global_position())
                    .map(|n| store.read_all(n, 1).map(|e| e.first().map(|_| n)))
                    .transpose()?
                    .flatten();
                (events, next)
            }
            (None, true) => {
                let events = store.read_all_backward(from, args.max)?;
                let next = events.last().and_then(|l| l.position.checked_sub(1));
                (events, next)
            }
            (Some(f), false) => filtered_forward(&store, f, from, args.max)?,
            (Some(f), true) => filtered_backward(&store, f, from, args.max)?,
        },
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
    match next {
        Some(next) => eprintln!("(more events follow: --from {next})"),
        None if events.is_empty() => match args.from {
            Some(from) => eprintln!("(no events from {from})"),
            None => eprintln!("(no events)"),
        },
        None => {}
    }
    Ok(())
}

/// The filter that `--prefix` and `--type` ask for, if any.
pub fn filter(prefixes: &[String], types: &[String]) -> Option<Filter> {
    let by_prefix = (!prefixes.is_empty()).then(|| Filter::stream_prefixes(prefixes));
    let by_type = (!types.is_empty()).then(|| Filter::event_types(types));
    match (by_prefix, by_type) {
        (Some(p), Some(t)) => Some(p.and(t)),
        (p, t) => p.or(t),
    }
}

/// Where a next stream read would start, if there is more that way.
fn next_stream(
    store: &Store,
    stream: &str,
    backward: bool,
    last: Option<&RecordedEvent>,
) -> Option<u64> {
    let last = last?;
    if backward {
        last.version.checked_sub(1)
    } else {
        let next = last.version + 1;
        store
            .stream_version(stream)
            .is_some_and(|v| v >= next)
            .then_some(next)
    }
}

/// Up to `max` events passing `filter` from `from` on, and where to go on
/// when there may be more.
fn filtered_forward(
    store: &Store,
    filter: &Filter,
    from: u64,
    max: usize,
) -> Result<(Vec<RecordedEvent>, Option<u64>), Failure> {
    let end = store.global_position();
    let mut events = Vec::new();
    let mut next = from;
    while events.len() < max && next < end {
        let page = store.read_all_filtered(next, max - events.len(), filter)?;
        next = page.next_position;
        events.extend(page.events);
    }
    Ok((events, (next < end).then_some(next)))
}

/// Up to `max` events passing `filter`, newest first from `from` down, and
/// where to go on when there may be more.
fn filtered_backward(
    store: &Store,
    filter: &Filter,
    from: u64,
    max: usize,
) -> Result<(Vec<RecordedEvent>, Option<u64>), Failure> {
    let mut events = Vec::new();
    let mut next = Some(from);
    while let Some(at) = next {
        if events.len() == max {
            break;
        }
        let page = store.read_all_backward(at, PAGE_EVENTS)?;
        let Some(oldest) = page.last() else {
            next = None;
            break;
        };
        next = oldest.position.checked_sub(1);
        for e in page {
            if filter.matches_event(&e) {
                if events.len() == max {
                    next = Some(e.position);
                    break;
                }
                events.push(e);
            }
        }
    }
    Ok((events, next))
}
