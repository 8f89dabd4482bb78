//! Ship: an annals store's global log to a JetStream stream, exactly once,
//! in position order, with no checkpoint file.
//!
//! JetStream itself is the checkpoint. Each attempt (at start, and again
//! after any failure) reads the stream's last message, checks that the
//! store holds the same event id at that message's position, and ships
//! from the next position on. Every publish carries
//! `Nats-Expected-Last-Sequence`: the sequence of the message that holds
//! the event before it. JetStream stores a message only if its stream
//! still ends there, so a second shipper, a restarted one, or a publish
//! repeated after a lost acknowledgement is refused rather than stored
//! twice or out of order; the shipper that is refused reads the stream's
//! end again and goes on from there. `Nats-Msg-Id` (the event id) adds
//! JetStream's duplicate window on top.
//!
//! What is shipped is the store's log as it is on disk
//! ([`annals::replication::read_log`]): every event, also one that reads
//! hide now (a replica hides it by the same control records, and a limit
//! may still be lifted), and every control record, each as one message
//! that names the position of the message before it (see [`crate::wire`]);
//! positions that hold nothing (gap records left by a scavenge) cost no
//! message, except a stretch of them at the end of the log, which one gap
//! message covers. An event that a scavenge removed before it was shipped
//! is never shipped.
//!
//! Publishes are pipelined: up to [`ShipOptions::max_in_flight`] wait for
//! their acknowledgements at once. Because each expects the one before
//! it, the first refusal refuses all that follow, and nothing after a gap
//! can land.

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::time::Duration;

use std::collections::VecDeque;

use annals::Store;
use annals::replication::{self, LogRecord};
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{CreateStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, RawMessageErrorKind, Stream};
use async_nats::jetstream::{Context, context::PublishAckFuture};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use serde_json::json;
use uuid::Uuid;

use crate::error::Error;
use crate::nats::{self, Fault, retry};
use crate::report::{Backoff, Report, Reporter};
use crate::wire;

/// How often the read-only store looks for the writer's new events. The
/// writer is another process and cannot wake the shipper, so this bounds
/// the lag an idle shipper adds; a look costs a few system calls.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(5);

/// How many records one read of the log takes.
const PAGE_RECORDS: usize = 1024;

/// What [`ship`] needs to know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShipOptions {
    /// The annals store's directory; opened read-only, so the writer may
    /// be running.
    pub store: PathBuf,
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub server: String,
    /// The JetStream stream; created (file storage, subjects
    /// `<subject_prefix>.>`) if missing.
    pub stream: String,
    /// The first tokens of every subject; default `annals`.
    pub subject_prefix: String,
    /// How many publishes may wait for their acknowledgement at once;
    /// default 2048. Bounds the memory and the work repeated after a
    /// failure.
    pub max_in_flight: usize,
    /// Where progress goes; default nowhere.
    pub report: Report,
    /// How often a progress line is written; default 1 s.
    pub report_interval: Duration,
}

impl ShipOptions {
    /// Options with the defaults above.
    pub fn new(
        store: impl Into<PathBuf>,
        server: impl Into<String>,
        stream: impl Into<String>,
    ) -> ShipOptions {
        ShipOptions {
            store: store.into(),
            server: server.into(),
            stream: stream.into(),
            subject_prefix: "annals".into(),
            max_in_flight: 2048,
            report: Report::Quiet,
            report_interval: Duration::from_secs(1),
        }
    }

    /// Sets [`ShipOptions::subject_prefix`].
    #[must_use]
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// Sets [`ShipOptions::max_in_flight`].
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Sets [`ShipOptions::report`].
    #[must_use]
    pub fn report(mut self, report: Report) -> Self {
        self.report = report;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        nats::check_stream_name(&self.stream)?;
        nats::check_prefix(&self.subject_prefix)?;
        if !(1..=1 << 16).contains(&self.max_in_flight) {
            return Err(Error::InvalidArgument {
                what: "max in flight",
                reason: format!("{} is not between 1 and 65536", self.max_in_flight),
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

/// What a [`ship`] that was stopped did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShipSummary {
    /// Messages this run stored in JetStream (acknowledged, not
    /// duplicates): events, control records and gap messages.
    pub shipped: u64,
    /// The position of the last message JetStream acknowledged, if any.
    pub last_position: Option<u64>,
    /// How many times it resumed from JetStream's end after a failure.
    pub retries: u64,
}

/// Ships the store's global log to JetStream until `stop` completes, then
/// returns what it did; or returns the error that needs a person (see
/// [`Error`]). Network failures, a restarted server and racing shippers
/// are waited out and resumed from JetStream's end.
///
/// ```no_run
/// # async fn run() -> Result<(), annals_nats::Error> {
/// use annals_nats::{ShipOptions, ship};
/// let options = ShipOptions::new("./data", "nats://127.0.0.1:4222", "EVENTS");
/// let summary = ship(&options, async { tokio::signal::ctrl_c().await.ok(); }).await?;
/// println!("shipped {}", summary.shipped);
/// # Ok(())
/// # }
/// ```
pub async fn ship(
    options: &ShipOptions,
    stop: impl Future<Output = ()>,
) -> Result<ShipSummary, Error> {
    options.validate()?;
    let store = Store::open_read_only_with(
        &options.store,
        annals::Options::default().follow_interval(FOLLOW_INTERVAL),
    )?;
    let mut stop = pin!(stop);
    let mut reporter = Reporter::new(options.report, options.report_interval);
    let mut summary = ShipSummary::default();
    let mut backoff = Backoff::new();
    let mut js: Option<Context> = None;
    loop {
        let shipped_before = summary.shipped;
        let attempt = async {
            let context = match &js {
                Some(c) => c.clone(),
                None => {
                    let c = nats::connect(&options.server, options.max_in_flight).await?;
                    js = Some(c.clone());
                    c
                }
            };
            let mut shipper = Shipper {
                options,
                store: &store,
                js: context,
                reporter: &mut reporter,
                summary: &mut summary,
            };
            shipper.attempt().await
        };
        let outcome = tokio::select! {
            biased;
            () = &mut stop => Ok(()),
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(()) => return Ok(summary),
            Err(Fault::Fatal(e)) => return Err(e),
            Err(Fault::Retry(why)) => {
                summary.retries += 1;
                if summary.shipped > shipped_before {
                    backoff.reset();
                }
                let wait = backoff.next_wait();
                reporter.line(
                    &format!(
                        "{why}; resuming from JetStream's end in {} ms",
                        wait.as_millis()
                    ),
                    json!({"type": "retry", "reason": why, "wait_ms": wait.as_millis() as u64}),
                );
                tokio::select! {
                    biased;
                    () = &mut stop => return Ok(summary),
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// What the log gives the shipper next: a record, or the last position of
/// a stretch of gaps that ends what the log holds so far.
enum Item {
    Record(LogRecord),
    Gap(u64),
}

/// The store's log, read page by page from a position on, and followed
/// as the writer (another process) extends it.
struct LogReader {
    /// The position the next page starts at.
    next: u64,
    /// What the last page gave and was not yet taken.
    buffer: VecDeque<Item>,
}

impl LogReader {
    /// The next item; waits for the writer when the log has no more.
    /// Cancel-safe: its state changes only between awaits, so an item is
    /// never lost when the shipper's `select!` drops this future.
    async fn next(&mut self, store: &Store) -> Result<Item, Fault> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Ok(item);
            }
            let page = replication::read_log(store, self.next, PAGE_RECORDS)?;
            let last = page.records.last().map(LogRecord::position);
            self.buffer
                .extend(page.records.into_iter().map(Item::Record));
            // Positions past the last record up to where the page ended
            // are gaps: one message says so, so that a replica ends where
            // the log does. (Gaps never change back, so this is final.)
            let examined_to = page.next_position;
            if examined_to > self.next && last.is_none_or(|l| examined_to > l + 1) {
                self.buffer.push_back(Item::Gap(examined_to - 1));
            }
            if examined_to == self.next {
                store.refresh()?;
                if store.global_position() == self.next {
                    tokio::time::sleep(FOLLOW_INTERVAL).await;
                }
            }
            self.next = examined_to;
        }
    }
}

/// One message on its way: what its acknowledgement must say.
struct Sent {
    position: u64,
    id: Uuid,
    /// The sequence JetStream must give it: one past the expected last.
    sequence: u64,
}

/// One attempt's state.
struct Shipper<'a> {
    options: &'a ShipOptions,
    store: &'a Store,
    js: Context,
    reporter: &'a mut Reporter,
    summary: &'a mut ShipSummary,
}

impl Shipper<'_> {
    /// Resumes from JetStream's end and ships until something fails.
    /// Never returns `Ok`: it is stopped from outside.
    async fn attempt(&mut self) -> Result<(), Fault> {
        let stream = self.stream().await?;
        let (mut last_sequence, mut follows) = self.resume_point(&stream).await?;
        self.reporter.line(
            &match follows {
                Some(p) => format!(
                    "JetStream stream {} ends at sequence {last_sequence} with position {p}; shipping from position {}",
                    self.options.stream,
                    p + 1
                ),
                None => format!("JetStream stream {} is empty; shipping from the start", self.options.stream),
            },
            json!({
                "type": "resumed",
                "sequence": last_sequence,
                "after_position": follows,
            }),
        );
        let mut log = LogReader {
            next: follows.map_or(0, |p| p + 1),
            buffer: VecDeque::new(),
        };
        let mut acks = FuturesOrdered::new();
        let mut ticker = self.reporter.ticker();
        let max = self.options.max_in_flight;
        loop {
            tokio::select! {
                // Acknowledgements first: they free room for publishes and
                // are what progress counts.
                biased;
                Some((sent, ack)) = acks.next(), if !acks.is_empty() => {
                    self.acknowledged(&stream, sent, ack).await?;
                }
                item = log.next(self.store), if acks.len() < max => {
                    let item = item?;
                    let (ack, sent) = self.publish(&item, follows, last_sequence).await?;
                    last_sequence += 1;
                    follows = Some(sent.position);
                    acks.push_back(async move { (sent, ack.await) });
                }
                _ = ticker.tick() => self.progress(),
            }
        }
    }

    /// The JetStream stream, created if missing, checked to take the
    /// prefix's subjects.
    async fn stream(&self) -> Result<Stream, Fault> {
        let wanted = format!("{}.>", self.options.subject_prefix);
        let stream = self
            .js
            .get_or_create_stream(stream::Config {
                name: self.options.stream.clone(),
                subjects: vec![wanted.clone()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| match e.kind() {
                // Another stream already takes these subjects: no retry
                // makes room, a person must pick a prefix or a stream.
                CreateStreamErrorKind::JetStream(js)
                    if js.error_code() == ErrorCode::STREAM_SUBJECT_OVERLAP =>
                {
                    Fault::Fatal(Error::StreamConfig {
                        stream: self.options.stream.clone(),
                        reason: format!(
                            "cannot create it with subjects {wanted}: {js} (use another --subject-prefix, or that stream)"
                        ),
                    })
                }
                _ => retry("getting or creating the JetStream stream")(&e),
            })?;
        let subjects = &stream.cached_info().config.subjects;
        if !subjects.contains(&wanted) {
            return Err(Error::StreamConfig {
                stream: self.options.stream.clone(),
                reason: format!("it takes subjects {subjects:?}, not {wanted}: use another stream or --subject-prefix"),
            }
            .into());
        }
        Ok(stream)
    }

    /// Where JetStream ends, checked against the store: the last sequence,
    /// and the position of the last message (`None` when nothing was
    /// shipped), after which shipping goes on.
    async fn resume_point(&self, stream: &Stream) -> Result<(u64, Option<u64>), Fault> {
        let info = stream
            .get_info()
            .await
            .map_err(|e| retry("reading the JetStream stream's state")(&e))?;
        let last = info.state.last_sequence;
        // A purged stream holds no messages but keeps counting its
        // sequences: shipping starts over, after the last sequence.
        if info.state.messages == 0 {
            return Ok((last, None));
        }
        let message = stream.get_raw_message(last).await.map_err(|e| match e.kind() {
            RawMessageErrorKind::NoMessageFound => Fault::Fatal(Error::StreamConfig {
                stream: self.options.stream.clone(),
                reason: format!(
                    "its last message (sequence {last}) was deleted, so where shipping stopped is unknown"
                ),
            }),
            _ => retry("reading the JetStream stream's last message")(&e),
        })?;
        let (position, id) =
            wire::position_and_id(Some(&message.headers)).map_err(|source| Error::BadMessage {
                stream: self.options.stream.clone(),
                sequence: last,
                source,
            })?;
        self.check_store_holds(position, id, last)?;
        Ok((last, Some(position)))
    }

    /// Refuses to go on unless the store holds the record `id` at
    /// `position` (a gap message's id when it holds a gap there). A record
    /// the store no longer holds there (a scavenge removed it after it
    /// was shipped) leaves a gap, which cannot be compared and is taken
    /// as the same log.
    fn check_store_holds(&self, position: u64, id: Uuid, sequence: u64) -> Result<(), Error> {
        self.store.refresh()?;
        if position >= self.store.global_position() {
            return Err(Error::Divergent {
                stream: self.options.stream.clone(),
                position,
                jetstream_id: id,
                sequence,
                store: format!(
                    "has no event there (its log ends before it, at position {})",
                    self.store.global_position()
                ),
            });
        }
        let page = replication::read_log(self.store, position, 1)?;
        let held = page
            .records
            .first()
            .filter(|r| r.position() == position)
            .map(|r| r.record().id);
        let store = match held {
            Some(held) if held == id => return Ok(()),
            Some(held) => format!("holds record {held}"),
            None => return Ok(()),
        };
        Err(Error::Divergent {
            stream: self.options.stream.clone(),
            position,
            jetstream_id: id,
            sequence,
            store,
        })
    }

    /// Sends one record (or gap message) that follows position `follows`,
    /// expecting JetStream to end at `last_sequence`.
    async fn publish(
        &self,
        item: &Item,
        follows: Option<u64>,
        last_sequence: u64,
    ) -> Result<(PublishAckFuture, Sent), Fault> {
        let prefix = &self.options.subject_prefix;
        let (position, encoded) = match item {
            Item::Record(record) => (
                record.position(),
                wire::encode_record(prefix, record, follows),
            ),
            Item::Gap(position) => (*position, wire::encode_gap(prefix, *position, follows)),
        };
        let (subject, headers, payload) =
            encoded.map_err(|source| Error::Unsendable { position, source })?;
        let id = match item {
            Item::Record(record) => record.record().id,
            Item::Gap(position) => replication::gap_id(*position),
        };
        let message = PublishMessage::build()
            .payload(payload)
            .headers(headers)
            .expected_last_sequence(last_sequence);
        let ack = self
            .js
            .send_publish(subject, message)
            .await
            .map_err(|e| match e.kind() {
                PublishErrorKind::MaxPayloadExceeded => Fault::Fatal(Error::TooBig {
                    position,
                    reason: e.to_string(),
                }),
                _ => retry("publishing")(&e),
            })?;
        let sent = Sent {
            position,
            id,
            sequence: last_sequence + 1,
        };
        Ok((ack, sent))
    }

    /// Takes one acknowledgement, in publish order.
    async fn acknowledged(
        &mut self,
        stream: &Stream,
        sent: Sent,
        ack: Result<
            async_nats::jetstream::publish::PublishAck,
            async_nats::jetstream::context::PublishError,
        >,
    ) -> Result<(), Fault> {
        let ack = match ack {
            Ok(ack) => ack,
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                return Err(Fault::Retry(format!(
                    "JetStream no longer ends where position {} was to follow (another shipper, or an earlier attempt's publish, got there first)",
                    sent.position
                )));
            }
            Err(e) => return Err(retry("waiting for JetStream's acknowledgement")(&e)),
        };
        if ack.duplicate {
            // JetStream already holds this id within its duplicate window.
            // Where it holds it decides: as this very event (an earlier
            // attempt got it there), go on from JetStream's end; anywhere
            // else, the stream holds another store's events.
            let message = stream
                .get_raw_message(ack.sequence)
                .await
                .map_err(|e| retry("reading the message JetStream calls a duplicate")(&e))?;
            let (shipped_position, id) =
                wire::position_and_id(Some(&message.headers)).map_err(|source| {
                    Error::BadMessage {
                        stream: self.options.stream.clone(),
                        sequence: ack.sequence,
                        source,
                    }
                })?;
            if shipped_position == sent.position && id == sent.id {
                return Err(Fault::Retry(format!(
                    "position {} was already shipped",
                    sent.position
                )));
            }
            return Err(Error::AlreadyShipped {
                stream: self.options.stream.clone(),
                id: sent.id,
                position: sent.position,
                sequence: ack.sequence,
                shipped_position,
            }
            .into());
        }
        if ack.sequence != sent.sequence {
            // The expected-last-sequence header makes this impossible on
            // a server that honours it; retrying re-reads the truth.
            return Err(Fault::Retry(format!(
                "JetStream stored position {} at sequence {}, not {}",
                sent.position, ack.sequence, sent.sequence
            )));
        }
        self.summary.shipped += 1;
        self.summary.last_position = Some(sent.position);
        Ok(())
    }

    fn progress(&mut self) {
        let rate = self.reporter.rate(self.summary.shipped);
        let store_next = self.store.global_position();
        let next = self.summary.last_position.map_or(0, |p| p + 1);
        let lag = store_next.saturating_sub(next);
        let position = self
            .summary
            .last_position
            .map_or_else(|| "none yet".to_string(), |p| p.to_string());
        self.reporter.progress(
            rate > 0 || lag > 0,
            &format!(
                "shipped {} messages ({rate}/s), last position {position}, lag {lag} positions",
                self.summary.shipped
            ),
            json!({
                "type": "progress",
                "shipped": self.summary.shipped,
                "messages_per_s": rate,
                "last_position": self.summary.last_position,
                "store_next_position": store_next,
                "lag_positions": lag,
            }),
        );
    }
}
