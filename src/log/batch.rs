//! Validating and encoding one append before it joins a commit. This runs
//! on the caller's thread, outside every lock, so that concurrent appenders
//! encode in parallel and the commit leader only copies and seals.

use std::collections::HashSet;
use std::ops::Range;

use crate::error::{Error, Limit, excerpt};
use crate::event::{AppendCondition, EventData, ExpectedVersion, StreamAppend, now_us};
use crate::format::{
    FRAME_HEADER_LEN, RECORD_FLAG_CONTROL, RECORD_FLAG_GAP, RECORD_HEADER_LEN, RecordFields,
    SEGMENT_HEADER_LEN, encode_record, padded_record_len, set_gap_lengths, set_record_flags,
    set_recorded_at,
};
use crate::options::Options;

/// One append, checked and encoded, waiting for a commit: the unit that
/// commits all or nothing. A plain append is one part; `append_multi`
/// gives one part per stream, and a condition (`append_if`) may ride on
/// either.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The streams appended to, in the caller's order, each with its
    /// records.
    pub parts: Vec<Part>,
    /// The records of every part, one after another, padded, with
    /// position, version and checksum still zero.
    pub encoded: Vec<u8>,
    /// Each record's padded length and event type, in order.
    pub records: Vec<(usize, String)>,
    /// Checked under the writer's lock before anything of the batch is
    /// placed: a matching event after its position refuses the batch.
    pub condition: Option<AppendCondition>,
    /// Each event's id, given or generated, in order (as
    /// [`Batch::records`]): what the writer checks for duplicates before
    /// anything else.
    pub ids: Vec<[u8; 16]>,
    /// For a control batch (one control record, see [`Batch::control`]),
    /// the state its record holds, which the index applies when it takes
    /// the frame.
    pub control: Option<Vec<u8>>,
    /// Whether the batch is a run of gap records (a replication import's,
    /// see [`Batch::gaps`]): one part with no stream, every record version
    /// 0, nothing for the duplicate check.
    pub gaps: bool,
}

/// One stream's share of a [`Batch`].
#[derive(Debug)]
pub(crate) struct Part {
    pub stream: String,
    pub expected: ExpectedVersion,
    /// Its records: indices into [`Batch::records`].
    pub records: Range<usize>,
    /// The version of its first record, given by a replication import
    /// (which checked it under the writer's lock); `None` for an append,
    /// whose versions go on from the stream's.
    pub first_version: Option<u64>,
}

impl Batch {
    /// Checks every argument against the limits in `options` and the
    /// segment size, and encodes the records. Nothing is written.
    pub(crate) fn new(
        options: &Options,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<Batch, Error> {
        check_stream_id(options, stream)?;
        check_events(options, events.len())?;
        let total = check_part(options, stream, events)?;
        check_capacity(options, total)?;
        let mut batch = Batch::with_capacity(total, events.len(), 1);
        batch.push_part(stream, expected, events, now_us());
        Ok(batch)
    }

    /// One batch of several streams' appends, all or nothing: checked as
    /// [`Batch::new`] checks one, and together (the events of every part
    /// count against `max_batch_events` and must fit in one segment); the
    /// same stream twice is refused.
    pub(crate) fn multi(options: &Options, parts: &[StreamAppend]) -> Result<Batch, Error> {
        if parts.len() > options.max_batch_events {
            return Err(Error::LimitExceeded {
                limit: Limit::BatchStreams,
                actual: parts.len() as u64,
                max: options.max_batch_events as u64,
            });
        }
        let events = parts
            .iter()
            .fold(0usize, |n, p| n.saturating_add(p.events().len()));
        check_events(options, events)?;
        let mut total = 0usize;
        let mut seen: HashSet<&str> = HashSet::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            total = total.saturating_add(check_part(options, part.stream(), part.events())?);
            if !seen.insert(part.stream()) {
                return Err(Error::DuplicateStream {
                    stream: excerpt(part.stream()),
                    index,
                });
            }
        }
        check_capacity(options, total)?;
        let recorded_at_us = now_us();
        let mut batch = Batch::with_capacity(total, events, parts.len());
        for part in parts {
            batch.push_part(
                part.stream(),
                part.expected(),
                part.events(),
                recorded_at_us,
            );
        }
        Ok(batch)
    }

    /// Sets the condition the batch is committed under.
    pub(crate) fn on_condition(mut self, condition: &AppendCondition) -> Result<Batch, Error> {
        condition.filter().validate()?;
        self.condition = Some(condition.clone());
        Ok(self)
    }

    fn with_capacity(bytes: usize, events: usize, parts: usize) -> Batch {
        Batch {
            parts: Vec::with_capacity(parts),
            encoded: Vec::with_capacity(bytes),
            records: Vec::with_capacity(events),
            condition: None,
            ids: Vec::with_capacity(events),
            control: None,
            gaps: false,
        }
    }

    /// One control record (see [`crate::lifecycle`]): `data` to the control
    /// stream `stream`, flagged as control. Built by the writer under its
    /// lock, with names of its own making, so nothing is checked here.
    pub(crate) fn control(stream: &str, event_type: &str, data: &[u8]) -> Batch {
        let event = EventData::new(event_type, data.to_vec());
        let mut batch = Batch::with_capacity(RECORD_HEADER_LEN + 128, 1, 1);
        batch.push_part(stream, ExpectedVersion::Any, &[event], now_us());
        set_record_flags(&mut batch.encoded, RECORD_FLAG_CONTROL);
        batch.control = Some(data.to_vec());
        batch
    }

    /// Encodes one checked part after the others.
    fn push_part(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
        recorded_at_us: u64,
    ) {
        let first = self.records.len();
        let mut ids = IdSource::default();
        for event in events {
            let id = event.id.unwrap_or_else(|| ids.next());
            let padded = encode_record(
                &mut self.encoded,
                &RecordFields {
                    stream,
                    event_type: &event.event_type,
                    metadata: &event.metadata,
                    data: &event.data,
                    id: id.into_bytes(),
                    recorded_at_us,
                },
            );
            self.records.push((padded, event.event_type.clone()));
            self.ids.push(id.into_bytes());
        }
        self.parts.push(Part {
            stream: stream.to_owned(),
            expected,
            records: first..self.records.len(),
            first_version: None,
        });
    }

    /// How many events the batch holds.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}

fn check_events(options: &Options, events: usize) -> Result<(), Error> {
    if events > options.max_batch_events {
        return Err(Error::LimitExceeded {
            limit: Limit::BatchEvents,
            actual: events as u64,
            max: options.max_batch_events as u64,
        });
    }
    Ok(())
}

fn check_capacity(options: &Options, total: usize) -> Result<(), Error> {
    let capacity = batch_capacity(options.segment_size);
    if total as u64 > capacity {
        return Err(Error::LimitExceeded {
            limit: Limit::BatchSize,
            actual: total as u64,
            max: capacity,
        });
    }
    Ok(())
}

/// Checks one stream's id and events; returns their encoded length.
fn check_part(options: &Options, stream: &str, events: &[EventData]) -> Result<usize, Error> {
    check_stream_id(options, stream)?;
    let mut total = 0usize;
    for (index, event) in events.iter().enumerate() {
        check_name(
            &event.event_type,
            options.max_event_type_len,
            Limit::EventTypeLength,
        )
        .map_err(|reason| Error::InvalidEventType {
            event_type: excerpt(&event.event_type),
            index,
            reason,
        })?;
        let size = event.data.len().saturating_add(event.metadata.len());
        if size > options.max_event_size {
            return Err(Error::LimitExceeded {
                limit: Limit::EventSize,
                actual: size as u64,
                max: options.max_event_size as u64,
            });
        }
        let padded = padded_record_len(
            stream.len(),
            event.event_type.len(),
            event.metadata.len(),
            event.data.len(),
        )
        .map_or(usize::MAX, |(_, padded)| padded);
        total = total.saturating_add(padded);
    }
    Ok(total)
}

impl Batch {
    /// Checks and encodes a replication import's run of one stream's
    /// events as [`Batch::new`] does, then gives each record its source's
    /// recorded-at time (`recorded_at_us`, one per event) instead of now,
    /// and the run its source's first version (which the writer checks
    /// under its lock).
    pub(crate) fn imported(
        options: &Options,
        stream: &str,
        first_version: u64,
        events: &[EventData],
        recorded_at_us: &[u64],
    ) -> Result<Batch, Error> {
        let mut batch = Batch::new(options, stream, ExpectedVersion::Any, events)?;
        let mut at = 0usize;
        for ((len, _), time) in batch.records.iter().zip(recorded_at_us) {
            if let Some(record) = batch.encoded.get_mut(at..at + len) {
                set_recorded_at(record, *time);
            }
            at += len;
        }
        if let Some(part) = batch.parts.first_mut() {
            part.first_version = Some(first_version);
        }
        Ok(batch)
    }

    /// A replication import's control record, a batch of its own (as the
    /// writer's are, since [`Batch::control`] is per batch): `data` to the
    /// control stream `stream` at `version`, with the source's id and
    /// recorded-at time. The caller has checked the name and the state;
    /// the writer checks the version under its lock.
    pub(crate) fn imported_control(
        stream: &str,
        event_type: &str,
        data: &[u8],
        version: u64,
        id: uuid::Uuid,
        recorded_at_us: u64,
    ) -> Batch {
        let event = EventData::new(event_type, data.to_vec()).with_id(id);
        let mut batch = Batch::with_capacity(RECORD_HEADER_LEN + 128, 1, 1);
        batch.push_part(stream, ExpectedVersion::Any, &[event], recorded_at_us);
        set_record_flags(&mut batch.encoded, RECORD_FLAG_CONTROL);
        batch.control = Some(data.to_vec());
        if let Some(part) = batch.parts.first_mut() {
            part.first_version = Some(version);
        }
        batch
    }

    /// A run of gap records for the positions `first..first + count` (the
    /// writer places them at its next positions, which the import checked
    /// are these): each a record header alone, flagged as a gap, with the
    /// id FORMAT.md gives a gap record at its position, as a scavenge
    /// writes them.
    pub(crate) fn gaps(first: u64, count: usize) -> Batch {
        let mut batch = Batch::with_capacity(count * RECORD_HEADER_LEN, count, 1);
        for position in first..first + count as u64 {
            let at = batch.encoded.len();
            let id = crate::lifecycle::scavenge::gap_id(position);
            // A stream and type of one byte each, to pass the encoder's
            // checks, then cut back to the header with the lengths zeroed.
            encode_record(
                &mut batch.encoded,
                &RecordFields {
                    stream: "-",
                    event_type: "-",
                    metadata: &[],
                    data: &[],
                    id,
                    recorded_at_us: 0,
                },
            );
            batch.encoded.truncate(at + RECORD_HEADER_LEN);
            if let Some(record) = batch.encoded.get_mut(at..) {
                set_gap_lengths(record);
                set_record_flags(record, RECORD_FLAG_GAP);
            }
            batch.records.push((RECORD_HEADER_LEN, String::new()));
            batch.ids.push(id);
        }
        batch.parts.push(Part {
            stream: String::new(),
            expected: ExpectedVersion::Any,
            records: 0..count,
            first_version: Some(0),
        });
        batch.gaps = true;
        batch
    }
}

/// Generated event ids for one batch: time-ordered UUID v7s.
///
/// `Uuid::now_v7` asks the OS for random bits on every call, a system call
/// per event that costs more than the rest of encoding. A batch instead
/// takes one v7 id and counts up in its low 32 bits, which the `uuid`
/// crate fills with random bits (the bits above them hold its
/// per-process counter, which keeps ids from one process ordered). When
/// the low bits would wrap, a fresh id is drawn, so a count never carries
/// into the counter: ids stay distinct, ordered within the batch and
/// across batches, and carry the batch's millisecond timestamp.
#[derive(Default)]
struct IdSource {
    last: Option<u128>,
}

impl IdSource {
    const LOW: u128 = u32::MAX as u128;

    fn next(&mut self) -> uuid::Uuid {
        let id = match self.last {
            Some(prev) if prev & Self::LOW != Self::LOW => prev + 1,
            _ => uuid::Uuid::now_v7().as_u128(),
        };
        self.last = Some(id);
        uuid::Uuid::from_u128(id)
    }
}

/// Checks a stream id as an append would, for the calls that name a
/// stream without writing to it (a subscription).
pub(crate) fn check_stream_id(options: &Options, stream: &str) -> Result<(), Error> {
    check_name(stream, options.max_stream_id_len, Limit::StreamIdLength).map_err(|reason| {
        Error::InvalidStreamId {
            stream: excerpt(stream),
            reason,
        }
    })?;
    if crate::lifecycle::is_reserved(stream) {
        return Err(Error::InvalidStreamId {
            stream: excerpt(stream),
            reason: format!(
                "ids starting with '{}' are reserved for annals' control streams",
                crate::lifecycle::RESERVED_PREFIX
            ),
        });
    }
    Ok(())
}

/// The most record bytes one batch may hold: what fits in an empty segment
/// after its header and one frame header.
pub(crate) fn batch_capacity(segment_size: u64) -> u64 {
    segment_size.saturating_sub((SEGMENT_HEADER_LEN + FRAME_HEADER_LEN) as u64)
}

/// Stream ids and event types are non-empty UTF-8 of at most `max` bytes,
/// without control characters: they end up in logs, terminals and file
/// names of tools, where a newline or an escape sequence does harm.
fn check_name(name: &str, max: usize, limit: Limit) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name.len() > max {
        return Err(format!("{limit} exceeded: {} > {max}", name.len()));
    }
    // Printable ASCII, the common case, is told apart a byte at a time
    // without decoding characters: decoding each event's type cost a
    // batch of 100 events about 14,000 instructions, more than its id
    // check. Anything else is decoded and its characters tested.
    if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!("it contains the control character {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_v7_distinct_and_ordered_within_a_batch() {
        let mut ids = IdSource::default();
        let all: Vec<uuid::Uuid> = (0..1000).map(|_| ids.next()).collect();
        for pair in all.windows(2) {
            assert_eq!(pair[1].get_version_num(), 7);
            assert_eq!(pair[1].get_variant(), uuid::Variant::RFC4122);
            assert!(pair[0] < pair[1]);
        }
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        // At the top of the low bits a fresh id is drawn: no carry upward.
        let mut ids = IdSource {
            last: Some(uuid::Uuid::now_v7().as_u128() | IdSource::LOW),
        };
        let before = ids.last.unwrap_or_default();
        let next = ids.next();
        // A carry would leave the low bits zero; a fresh draw has random
        // ones (zero with probability 2^-32).
        assert_ne!(
            next.as_u128() & IdSource::LOW,
            0,
            "carried into the counter"
        );
        assert_eq!(next.get_version_num(), 7);
        assert!(next.as_u128() > before);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("order-42", 256, Limit::StreamIdLength).is_ok());
        assert!(check_name("", 256, Limit::StreamIdLength).is_err());
        assert!(check_name("a\nb", 256, Limit::StreamIdLength).is_err());
        assert!(check_name("a\u{1b}[31m", 256, Limit::StreamIdLength).is_err());
        assert!(check_name("a\u{7f}", 256, Limit::StreamIdLength).is_err());
        assert!(check_name("a\u{85}b", 256, Limit::StreamIdLength).is_err());
        assert!(check_name(" ~", 256, Limit::StreamIdLength).is_ok());
        assert!(check_name(&"x".repeat(257), 256, Limit::StreamIdLength).is_err());
        assert!(check_name("ünïcödé-✓", 256, Limit::StreamIdLength).is_ok());
    }

    #[test]
    fn a_batch_that_cannot_fit_a_segment_is_refused() {
        let options = Options::default()
            .max_event_size(1 << 20)
            .segment_size(8192);
        let big = EventData::new("T", vec![0u8; 8192]);
        let err = Batch::new(&options, "s", ExpectedVersion::Any, &[big]).unwrap_err();
        assert!(matches!(
            err,
            Error::LimitExceeded {
                limit: Limit::BatchSize,
                ..
            }
        ));
    }
}
