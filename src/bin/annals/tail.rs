//! `annals tail`: follow a live store from another process.
//!
//! The writer holds the directory's lock, so tail opens the store
//! read-only (no lock, nothing modified) and follows it with a
//! subscription, which the store's refresher feeds every `--interval-ms`
//! with every batch the writer has completed, whole or not at all.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use annals::{Options, Store, SubscribeFrom, Subscription, SubscriptionItem};

use crate::events;
use crate::exit::{Code, Failure, out};
use crate::open;
use crate::read::filter;

/// Print events as they are appended, until interrupted (Ctrl-C). Opens
/// the store read-only, so it follows a writer in another process.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals tail ./data
  annals tail ./data --stream order-42 --json
  annals tail ./data --from 0          # everything so far, then follow
  annals tail ./data --filter-prefix order- --type OrderPaid
  annals tail ./data --wait            # the store need not exist yet

Each event is one line: #POSITION STREAM@VERSION TYPE DATA, or one JSON
object per line with --json (the fields of `annals read --json`). A batch
shows up whole or not at all. A batch the writer has written but not yet
synced can show up a moment before its append returns. A --from past the
end of the log (or stream) is refused (exit 2): nothing was ever there."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// Follow only this stream (it need not exist yet).
    #[arg(long, conflicts_with_all = ["filter_prefix", "event_type"])]
    pub stream: Option<String>,
    /// Start at this position (or version, with --stream) instead of at the
    /// current end.
    #[arg(long)]
    pub from: Option<u64>,
    /// Only streams whose id starts with this (repeatable).
    #[arg(long)]
    pub filter_prefix: Vec<String>,
    /// Only events of this type (repeatable); with --filter-prefix, an
    /// event must pass both.
    #[arg(long = "type")]
    pub event_type: Vec<String>,
    /// Wait for the store to be created if it does not exist yet.
    #[arg(long)]
    pub wait: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// How often to look for new events, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub interval_ms: u64,
}

/// Runs `annals tail`; returns only on an error (a closed output counts).
pub fn run(args: &Args) -> Result<(), Failure> {
    let interval = Duration::from_millis(args.interval_ms);
    let store = open_store(args, interval)?;
    let from = match args.from {
        None => SubscribeFrom::End,
        Some(0) => SubscribeFrom::Start,
        Some(n) => SubscribeFrom::After(n - 1),
    };
    let start = |what: &str, unit: &str, end: u64| {
        eprintln!(
            "following {what} in {} from {unit} {} (Ctrl-C to stop)",
            args.dir.display(),
            args.from.unwrap_or(end)
        );
    };
    let past_end = |e: annals::Error| match e {
        annals::Error::CheckpointAhead { end, .. } => Failure::new(
            Code::Usage,
            format!(
                "--from {} is past the end of the {} ({end} events): nothing was ever there",
                args.from.unwrap_or(0),
                if args.stream.is_some() {
                    "stream"
                } else {
                    "log"
                }
            ),
        ),
        other => other.into(),
    };
    let sub = match &args.stream {
        Some(stream) => {
            let sub = store.subscribe_stream(stream, from).map_err(past_end)?;
            let end = store.stream_version(stream).map_or(0, |v| v + 1);
            start(&format!("stream '{stream}'"), "version", end);
            sub
        }
        None => {
            let filter = filter(&args.filter_prefix, &args.event_type);
            let sub = store.subscribe_all(from, filter).map_err(past_end)?;
            start("the log", "position", store.global_position());
            sub
        }
    };
    print(sub, args.json)
}

/// Opens the store, or with --wait, waits until there is one to open.
fn open_store(args: &Args, interval: Duration) -> Result<Store, Failure> {
    let options = Options::default().follow_interval(interval);
    let mut announced = false;
    loop {
        match open::reader_with(&args.dir, options.clone()) {
            Err(f) if args.wait && f.code == Code::NotFound => {
                if !announced {
                    eprintln!("waiting for a store in {}", args.dir.display());
                    announced = true;
                }
                // Polling is the design here: there is no store yet to
                // notify anyone, only a directory that may appear.
                std::thread::sleep(interval);
            }
            other => return other,
        }
    }
}

/// Prints every event the subscription delivers, flushing whenever it has
/// nothing more at hand; returns only on an error.
fn print(mut sub: Subscription, json: bool) -> Result<(), Failure> {
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    loop {
        let item = match sub.next_timeout(Duration::ZERO)? {
            Some(item) => item,
            None => {
                out(stdout.flush())?;
                match sub.next() {
                    Some(item) => item?,
                    // The store is this command's own and stays open.
                    None => return Ok(()),
                }
            }
        };
        if let SubscriptionItem::Event(e) = item {
            if json {
                out(events::json_line(&mut stdout, &e))?;
            } else {
                out(events::line(&mut stdout, &e))?;
            }
        }
    }
}
