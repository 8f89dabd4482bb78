//! `annals import`: JSON lines in the shape of `annals export` (and
//! `annals read --json`) appended to a store, a run of one stream's
//! consecutive events at a time, keeping each event's id so that a second
//! import of the same lines writes nothing twice.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use annals::{EventData, ExpectedVersion, Store};
use indicatif::{ProgressBar, ProgressStyle};

use crate::events;
use crate::exit::{Code, Failure, out};
use crate::fmt::{bytes, count, duration, plural};
use crate::open;

/// The longest line taken, in bytes: more than the JSON of the largest
/// event the store takes by default (1 MiB of data and metadata, as
/// escaped text or base64), and a bound on what one line can make this
/// process hold.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// The most events appended as one batch.
const RUN_EVENTS_MAX: usize = 1_000;

/// What the bytes of one batch are kept under, as a fraction of the
/// store's segment size (a batch must fit in one segment).
const RUN_SEGMENT_FRACTION: u64 = 4;

/// Append the events of JSON lines (from `annals export`, or `annals read
/// --json`) to a store, in order, keeping their ids.
///
/// Consecutive lines of one stream are appended as one batch (split at
/// 1,000 events or a quarter of a segment), with any expected version.
/// Event ids are kept, so importing the same lines again, or again after an
/// import was cut short, writes nothing twice: a batch whose ids are
/// already stored is answered as a retry. Positions, versions and
/// recorded-at times are the store's own: an import into an empty store of
/// a whole export gets the same positions and versions, but the time of the
/// import (an append cannot set recorded_at).
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals import ./copy events.jsonl --create
  annals export ./data | annals import ./copy - --create
  zcat slice.jsonl.gz | annals import ./data -

A line that is not an event (or is longer than 8 MiB) stops the import with
its line number (exit 9); nothing of its batch is written, the batches
before it are. Fix the line and run the same import again: what was
imported is recognised by its ids and not written twice. An id that is
already in the store elsewhere stops it with exit 6."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The file of JSON lines, or - for standard input.
    pub input: PathBuf,
    /// Create the store if there is none (otherwise a missing store is an
    /// error, so that a mistyped path does not start a new store).
    #[arg(long)]
    pub create: bool,
}

/// A run of consecutive events of one stream, not yet appended.
struct Run {
    stream: String,
    events: Vec<EventData>,
    bytes: u64,
    first_line: u64,
}

/// What has been appended so far.
#[derive(Default)]
struct Totals {
    events: u64,
    deduplicated: u64,
    batches: u64,
}

/// Runs `annals import`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let from_stdin = args.input.as_os_str() == "-";
    let (input, len): (Box<dyn Read>, Option<u64>) = if from_stdin {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = File::open(&args.input).map_err(|e| {
            Failure::new(
                Code::NotFound,
                format!("cannot read {}: {e}", args.input.display()),
            )
        })?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(file), len)
    };
    let store = open::writer(&args.dir, args.create)?;
    let run_bytes_max = store.stats().segment_size / RUN_SEGMENT_FRACTION;
    let progress = progress(len);
    progress.set_message("0");
    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let mut run: Option<Run> = None;
    let mut totals = Totals::default();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| {
                Failure::new(
                    Code::Failure,
                    format!("cannot read {}: {e}", args.input.display()),
                )
            })?;
        if read == 0 {
            break;
        }
        line_no += 1;
        progress.inc(read as u64);
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.len() > MAX_LINE_BYTES {
            return Err(bad_line(
                line_no,
                &format!("longer than {}", bytes(MAX_LINE_BYTES as u64)),
                &run,
                &totals,
            ));
        }
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (stream, event) = events::from_json_line(text)
            .map_err(|reason| bad_line(line_no, &reason, &run, &totals))?;
        let size = 64
            + (stream.len()
                + event.event_type().len()
                + event.data().len()
                + event.metadata().len()) as u64;
        let follows = run.as_ref().is_some_and(|r| {
            r.stream == stream && r.events.len() < RUN_EVENTS_MAX && r.bytes + size <= run_bytes_max
        });
        if !follows && let Some(done) = run.take() {
            append(&store, done, line_no - 1, &mut totals)?;
            progress.set_message(count(totals.events));
        }
        let current = run.get_or_insert_with(|| Run {
            stream,
            events: Vec::new(),
            bytes: 0,
            first_line: line_no,
        });
        current.events.push(event);
        current.bytes += size;
    }
    if let Some(done) = run.take() {
        append(&store, done, line_no, &mut totals)?;
    }
    progress.finish_and_clear();
    store.close()?;
    let written = totals.events - totals.deduplicated;
    let mut stdout = std::io::stdout().lock();
    out(writeln!(
        stdout,
        "imported {} from {} into {} in {} ({} in {} {}; {} already there)",
        plural(written, "event"),
        plural(line_no, "line"),
        args.dir.display(),
        duration(started.elapsed()),
        plural(totals.events, "event"),
        count(totals.batches),
        if totals.batches == 1 {
            "batch"
        } else {
            "batches"
        },
        count(totals.deduplicated),
    ))
}

/// Appends one run as one batch, keeping its ids.
fn append(store: &Store, run: Run, last_line: u64, totals: &mut Totals) -> Result<(), Failure> {
    let n = run.events.len() as u64;
    match store.append(&run.stream, ExpectedVersion::Any, &run.events) {
        Ok(r) => {
            totals.events += n;
            totals.batches += 1;
            if r.deduplicated {
                totals.deduplicated += n;
            }
            Ok(())
        }
        Err(e) => {
            let mut failure = Failure::from(e);
            failure.message = format!(
                "lines {} to {last_line} (stream '{}'): {}. Imported before them: {}; \
                 nothing from line {} on was written",
                run.first_line,
                run.stream,
                failure.message,
                plural(totals.events, "event"),
                run.first_line,
            );
            Err(failure)
        }
    }
}

/// The failure for a line that is not an event: nothing of its batch (the
/// run it would have joined or started) was written.
fn bad_line(line: u64, reason: &str, run: &Option<Run>, totals: &Totals) -> Failure {
    let unwritten = run.as_ref().map_or(line, |r| r.first_line);
    Failure::new(
        Code::BadInput,
        format!(
            "line {line} is not an event: {reason}. Imported before it: {}; nothing from \
             line {unwritten} on was written",
            plural(totals.events, "event"),
        ),
    )
}

/// A progress bar over the input's bytes when its length is known, a
/// spinner otherwise; drawn on standard error only when that is a
/// terminal.
fn progress(len: Option<u64>) -> ProgressBar {
    match len {
        Some(len) => {
            let style = ProgressStyle::with_template(
                "importing     [{bar:30}] {bytes}/{total_bytes}  {msg} events  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            ProgressBar::new(len).with_style(style)
        }
        None => {
            let style =
                ProgressStyle::with_template("importing     {spinner} {bytes}  {msg} events")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
            ProgressBar::no_length().with_style(style)
        }
    }
}
