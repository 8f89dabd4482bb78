//! Mirror: a JetStream stream written by [`ship`](crate::ship) back into an
//! annals store, a read replica with the origin's positions, versions,
//! ids, recorded-at times and bytes.
//!
//! The replica is its own checkpoint. Each attempt finds the message
//! holding the replica's last position (checking that it holds the same
//! record id), and reads on from the next sequence with an ordered
//! consumer. Messages are imported in batches through
//! [`annals::replication::import_log`]: events and control records at
//! their positions, gap records at the positions between. Each message
//! names the position of the one shipped before it (see [`crate::wire`]);
//! a message that does not follow the one before it (a message lost, or
//! removed from JetStream) stops the mirror with [`Error::Lost`], and the
//! import itself refuses anything that does not follow on. An import is
//! durable when it returns, so a mirror killed at any moment resumes after
//! the last batch it imported (or inside a stretch of gaps, which the
//! import then checks are gaps).

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use annals::Store;
use annals::replication::{self, LogRecord};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::{self, Context};
use futures_util::{FutureExt as _, StreamExt as _};
use serde_json::json;

use crate::error::Error;
use crate::nats::{self, Fault, retry};
use crate::report::{Backoff, Report, Reporter};
use crate::wire;

/// What [`mirror`] needs to know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MirrorOptions {
    /// The replica's directory; created if missing, and held open for
    /// writing (readers open it read-only beside the mirror).
    pub store: PathBuf,
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub server: String,
    /// The JetStream stream that `ship` writes.
    pub stream: String,
    /// The most events imported as one commit; default 4096.
    pub max_batch_events: usize,
    /// The most payload and metadata bytes imported as one commit;
    /// default 8 MiB.
    pub max_batch_bytes: usize,
    /// Where progress goes; default nowhere.
    pub report: Report,
    /// How often a progress line is written; default 1 s.
    pub report_interval: Duration,
}

impl MirrorOptions {
    /// Options with the defaults above.
    pub fn new(
        store: impl Into<PathBuf>,
        server: impl Into<String>,
        stream: impl Into<String>,
    ) -> MirrorOptions {
        MirrorOptions {
            store: store.into(),
            server: server.into(),
            stream: stream.into(),
            max_batch_events: 4096,
            max_batch_bytes: 8 << 20,
            report: Report::Quiet,
            report_interval: Duration::from_secs(1),
        }
    }

    /// Sets [`MirrorOptions::report`].
    #[must_use]
    pub fn report(mut self, report: Report) -> Self {
        self.report = report;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        nats::check_stream_name(&self.stream)?;
        if !(1..=100_000).contains(&self.max_batch_events) {
            return Err(Error::InvalidArgument {
                what: "max batch events",
                reason: format!("{} is not between 1 and 100000", self.max_batch_events),
            });
        }
        if !(1..=1 << 30).contains(&self.max_batch_bytes) {
            return Err(Error::InvalidArgument {
                what: "max batch bytes",
                reason: format!("{} is not between 1 and 1 GiB", self.max_batch_bytes),
            });
        }
        if self.report_interval.is_zero() {
            return Err(Error::InvalidArgument {
                what: "report interval",
                reason: "zero".into(),
            });
        }
        Ok(())
    }
}

/// What a [`mirror`] that was stopped did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorSummary {
    /// Messages this run imported: events, control records and gap
    /// messages.
    pub imported: u64,
    /// The replica's next position when it stopped.
    pub next_position: u64,
    /// How many times it resumed after a failure.
    pub retries: u64,
}

/// Mirrors the JetStream stream into the replica until `stop` completes;
/// or returns the error that needs a person. Network failures and a
/// restarted server are waited out; a stream that does not exist yet is
/// waited for.
///
/// ```no_run
/// # async fn run() -> Result<(), annals_nats::Error> {
/// use annals_nats::{MirrorOptions, mirror};
/// let options = MirrorOptions::new("./replica", "nats://127.0.0.1:4222", "EVENTS");
/// mirror(&options, async { tokio::signal::ctrl_c().await.ok(); }).await?;
/// # Ok(())
/// # }
/// ```
pub async fn mirror(
    options: &MirrorOptions,
    stop: impl Future<Output = ()>,
) -> Result<MirrorSummary, Error> {
    options.validate()?;
    let store = Arc::new(Store::open(&options.store)?);
    let mut stop = pin!(stop);
    let mut reporter = Reporter::new(options.report, options.report_interval);
    let mut summary = MirrorSummary::default();
    let mut backoff = Backoff::new();
    let mut js: Option<Context> = None;
    // An import runs on a blocking thread and cannot be cut short; a stop
    // that lands while one runs leaves it here, and it is awaited before
    // returning, so that the replica is closed (and its lock released)
    // when `mirror` returns.
    let mut importing: Option<Importing> = None;
    let outcome = loop {
        let imported_before = summary.imported;
        let attempt = async {
            let context = match &js {
                Some(c) => c.clone(),
                None => {
                    let c = nats::connect(&options.server, 1).await?;
                    js = Some(c.clone());
                    c
                }
            };
            let mut mirror = Mirror {
                options,
                store: &store,
                js: context,
                reporter: &mut reporter,
                summary: &mut summary,
                importing: &mut importing,
            };
            mirror.attempt().await
        };
        let outcome = tokio::select! {
            biased;
            () = &mut stop => Ok(()),
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(()) => break Ok(()),
            Err(Fault::Fatal(e)) => break Err(e),
            Err(Fault::Retry(why)) => {
                summary.retries += 1;
                if summary.imported > imported_before {
                    backoff.reset();
                }
                let wait = backoff.next_wait();
                reporter.line(
                    &format!("{why}; resuming in {} ms", wait.as_millis()),
                    json!({"type": "retry", "reason": why, "wait_ms": wait.as_millis() as u64}),
                );
                tokio::select! {
                    biased;
                    () = &mut stop => break Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    };
    if let Some(import) = importing.take() {
        // Whether it worked or not, the next start reads the replica's
        // end afresh; what it imported is counted like any other import.
        if let Ok(Ok((_, count))) = import.await {
            summary.imported += count;
        }
    }
    summary.next_position = store.global_position();
    drop(store);
    outcome.map(|()| summary)
}

/// An import on its blocking thread: the replica's next position, or why not.
/// Its result: the replica's next position and how many events it
/// imported.
type Importing = tokio::task::JoinHandle<Result<(u64, u64), annals::Error>>;

/// One attempt's state.
struct Mirror<'a> {
    options: &'a MirrorOptions,
    store: &'a Arc<Store>,
    js: Context,
    reporter: &'a mut Reporter,
    summary: &'a mut MirrorSummary,
    importing: &'a mut Option<Importing>,
}

impl Mirror<'_> {
    /// Finds where the replica ends in JetStream and imports from there
    /// until something fails. Never returns `Ok`: it is stopped from
    /// outside.
    async fn attempt(&mut self) -> Result<(), Fault> {
        let stream = self
            .js
            .get_stream(&self.options.stream)
            .await
            .map_err(|e| {
                Fault::Retry(format!(
                    "waiting for JetStream stream {}: {e}",
                    self.options.stream
                ))
            })?;
        let start = self.start_sequence(&stream).await?;
        self.reporter.line(
            &format!(
                "replica at position {}; reading JetStream stream {} from sequence {start}",
                self.store.global_position(),
                self.options.stream
            ),
            json!({"type": "resumed", "next_position": self.store.global_position(), "sequence": start}),
        );
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| retry("creating an ordered consumer")(&e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| retry("reading the ordered consumer")(&e))?;
        let mut ticker = self.reporter.ticker();
        let mut pending = 0u64;
        loop {
            let first = tokio::select! {
                message = messages.next() => message,
                _ = ticker.tick() => {
                    self.progress(pending);
                    continue;
                }
            };
            // A batch is what has already arrived, up to the limits: one
            // commit for many events when the mirror is behind, one event
            // at a time when it keeps up.
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            let mut next = first;
            loop {
                let message = match next {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => return Err(retry("reading the ordered consumer")(&e)),
                    None => return Err(Fault::Retry("the ordered consumer ended".into())),
                };
                let (message, left) = self.decode(&message)?;
                pending = left;
                if let Some(r) = &message.shipped.record {
                    bytes = bytes.saturating_add(r.record().data.len() + r.record().metadata.len());
                }
                batch.push(message);
                if batch.len() >= self.options.max_batch_events
                    || bytes >= self.options.max_batch_bytes
                {
                    break;
                }
                match messages.next().now_or_never() {
                    Some(m) => next = m,
                    None => break,
                }
            }
            self.import(batch).await?;
        }
    }

    /// One message as what it carries, with its sequence, and how many
    /// messages follow it.
    fn decode(&self, message: &jetstream::Message) -> Result<(Message, u64), Fault> {
        let info = message
            .info()
            .map_err(|e| retry("reading a message's metadata")(&e))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        let shipped = wire::decode_message(
            message.subject.as_str(),
            message.headers.as_ref(),
            message.payload.clone(),
        )
        .map_err(|source| Error::BadMessage {
            stream: self.options.stream.clone(),
            sequence,
            source,
        })?;
        Ok((Message { sequence, shipped }, pending))
    }

    /// Imports a batch on a blocking thread (it syncs to disk), after
    /// checking that each message follows the one before it.
    async fn import(&mut self, mut batch: Vec<Message>) -> Result<(), Fault> {
        // The messages before a break in the chain go in; the break stops
        // the mirror once they are in.
        let broken = batch
            .windows(2)
            .position(|pair| {
                matches!(pair, [before, message] if message.shipped.follows != Some(before.shipped.position))
            })
            .map(|i| i + 1);
        let lost = broken.and_then(|k| {
            let message = batch.get(k)?;
            Some(Error::Lost {
                stream: self.options.stream.clone(),
                sequence: message.sequence,
                position: message.shipped.position,
                follows: message.shipped.follows,
                reached: batch.get(k - 1).map(|m| m.shipped.position),
            })
        });
        if let Some(k) = broken {
            batch.truncate(k);
        }
        self.import_chained(batch).await?;
        match lost {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Imports messages that follow one another on a blocking thread.
    async fn import_chained(&mut self, batch: Vec<Message>) -> Result<(), Fault> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let (after, first_sequence, first_position) = (
            first.shipped.follows,
            first.sequence,
            first.shipped.position,
        );
        let store = Arc::clone(self.store);
        let count = batch.len() as u64;
        // A stop while this waits drops the wait, not the import: the
        // handle stays in `importing`, and `mirror` counts it at the end.
        let import = self.importing.insert(tokio::task::spawn_blocking(move || {
            import_chain(&store, after, batch).map(|next| (next, count))
        }));
        let result = import.await;
        *self.importing = None;
        let (_, count) = result
            .map_err(|e| retry("the import thread")(&e))?
            .map_err(|e| match e {
                // The first message does not follow where the replica
                // is: a message in between is missing.
                annals::Error::ImportRefused { .. }
                    if self.store.global_position() < after.map_or(0, |a| a + 1) =>
                {
                    Fault::Fatal(Error::Lost {
                        stream: self.options.stream.clone(),
                        sequence: first_sequence,
                        position: first_position,
                        follows: after,
                        reached: self.store.global_position().checked_sub(1),
                    })
                }
                e => Fault::Fatal(e.into()),
            })?;
        self.summary.imported += count;
        Ok(())
    }

    /// The sequence to read from: 1 for an empty replica, else one past
    /// the message that holds the replica's last position, found by
    /// bisection (positions rise with sequences; the first probe is where
    /// a log without gaps puts it) and checked by its id. A replica that
    /// stopped inside the stretch of gaps before a message (a crash in the
    /// middle of a large import) reads from that message; the import
    /// checks that what the replica holds after the message's `follows`
    /// is gaps alone.
    async fn start_sequence(&self, stream: &Stream) -> Result<u64, Fault> {
        let Some(target) = self.store.global_position().checked_sub(1) else {
            return Ok(1);
        };
        let info = stream
            .get_info()
            .await
            .map_err(|e| retry("reading the JetStream stream's state")(&e))?;
        let (mut low, mut high) = (info.state.first_sequence, info.state.last_sequence);
        let mut probe = target.saturating_add(1);
        // The first message (lowest sequence) whose position is at or
        // past the target, with its position, id and follows.
        let mut found: Option<(u64, u64, uuid::Uuid, Option<u64>)> = None;
        let mut found_at_end = None;
        while info.state.messages > 0 && low <= high && high > 0 {
            if !(low..=high).contains(&probe) {
                probe = low + (high - low) / 2;
            }
            let message = stream
                .get_raw_message(probe)
                .await
                .map_err(|e| retry("reading a JetStream message")(&e))?;
            let bad = |source| Error::BadMessage {
                stream: self.options.stream.clone(),
                sequence: probe,
                source,
            };
            let (position, id) = wire::position_and_id(Some(&message.headers)).map_err(bad)?;
            let follows = wire::follows(Some(&message.headers)).map_err(bad)?;
            if probe == info.state.last_sequence {
                found_at_end = Some(position);
            }
            if position >= target {
                found = Some((probe, position, id, follows));
                if position == target {
                    break;
                }
                match probe.checked_sub(1) {
                    Some(h) => high = h,
                    None => break,
                }
            } else {
                low = probe + 1;
            }
            probe = u64::MAX;
        }
        match found {
            Some((sequence, position, id, _)) if position == target => {
                // What the replica holds there: a record, or a gap (which
                // only a gap message leaves at a message's position).
                let page = replication::read_log(self.store, target, 1)?;
                let held = page
                    .records
                    .first()
                    .filter(|r| r.position() == target)
                    .map_or_else(|| replication::gap_id(target), |r| r.record().id);
                if held != id {
                    return Err(Error::Divergent {
                        stream: self.options.stream.clone(),
                        position,
                        jetstream_id: id,
                        sequence,
                        store: format!("(the replica) holds record {held}"),
                    }
                    .into());
                }
                Ok(sequence + 1)
            }
            Some((sequence, _, _, follows)) if follows.is_none_or(|f| f < target) => Ok(sequence),
            _ => {
                let last = replication::read_log(self.store, target, 1)?
                    .records
                    .first()
                    .filter(|r| r.position() == target)
                    .map_or_else(|| replication::gap_id(target), |r| r.record().id);
                Err(Error::ReplicaAhead {
                    stream: self.options.stream.clone(),
                    position: target,
                    id: last,
                    reason: match found_at_end {
                        Some(p) => format!("its last message holds position {p}"),
                        None if info.state.messages == 0 => "the stream is empty".into(),
                        None => "no message holds that position".into(),
                    },
                }
                .into())
            }
        }
    }

    fn progress(&mut self, pending: u64) {
        let rate = self.reporter.rate(self.summary.imported);
        let next = self.store.global_position();
        self.reporter.progress(
            rate > 0 || pending > 0,
            &format!(
                "imported {} messages ({rate}/s), replica at position {next}, {pending} messages behind",
                self.summary.imported
            ),
            json!({
                "type": "progress",
                "imported": self.summary.imported,
                "messages_per_s": rate,
                "next_position": next,
                "lag_messages": pending,
            }),
        );
    }
}

/// One message as the mirror takes it: its sequence and what it carries.
struct Message {
    sequence: u64,
    shipped: wire::Shipped,
}

/// Imports a batch of messages that follow one another, the first
/// following position `after`, into `store`; returns its next position.
/// A stretch of gaps longer than one import takes
/// ([`replication::MAX_IMPORT_POSITIONS`]) is written in several imports,
/// each following the last position the one before wrote.
fn import_chain(
    store: &Store,
    mut after: Option<u64>,
    batch: Vec<Message>,
) -> Result<u64, annals::Error> {
    let max = replication::MAX_IMPORT_POSITIONS;
    let mut records: Vec<LogRecord> = Vec::new();
    // Where the pending records' import starts: the store's next
    // position once everything before them is written.
    let mut from = store.global_position();
    let mut end = from;
    for message in batch {
        let position = message.shipped.position;
        if position + 1 - from.min(position) > max {
            // This message does not fit in the pending import: write that
            // first, then the gaps before it in pieces.
            if end > from {
                from = replication::import_log(store, after, &records, end)?;
                after = end.checked_sub(1);
                records.clear();
            }
            while position.saturating_sub(from) >= max {
                from = replication::import_log(store, after, &[], from + max)?;
                after = from.checked_sub(1);
            }
        }
        records.extend(message.shipped.record);
        end = position + 1;
    }
    if end > from {
        from = replication::import_log(store, after, &records, end)?;
    }
    Ok(from)
}
