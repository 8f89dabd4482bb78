//! Validating and encoding one append before it joins a commit. This runs
//! on the caller's thread, outside every lock, so that concurrent appenders
//! encode in parallel and the commit leader only copies and seals.

use crate::error::{Error, Limit, excerpt};
use crate::event::{EventData, ExpectedVersion, now_us};
use crate::format::{
    FRAME_HEADER_LEN, RecordFields, SEGMENT_HEADER_LEN, encode_record, padded_record_len,
};
use crate::options::Options;

/// One append, checked and encoded, waiting for a commit.
#[derive(Debug)]
pub(crate) struct Batch {
    pub stream: String,
    pub expected: ExpectedVersion,
    /// The records, padded, with position, version and checksum still zero.
    pub encoded: Vec<u8>,
    /// Each record's padded length and event type, in order.
    pub records: Vec<(usize, String)>,
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
        check_name(stream, options.max_stream_id_len, Limit::StreamIdLength).map_err(|reason| {
            Error::InvalidStreamId {
                stream: excerpt(stream),
                reason,
            }
        })?;
        if events.len() > options.max_batch_events {
            return Err(Error::LimitExceeded {
                limit: Limit::BatchEvents,
                actual: events.len() as u64,
                max: options.max_batch_events as u64,
            });
        }
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
        let capacity = batch_capacity(options.segment_size);
        if total as u64 > capacity {
            return Err(Error::LimitExceeded {
                limit: Limit::BatchSize,
                actual: total as u64,
                max: capacity,
            });
        }
        let recorded_at_us = now_us();
        let mut encoded = Vec::with_capacity(total);
        let mut records = Vec::with_capacity(events.len());
        let mut ids = IdSource::default();
        for event in events {
            let id = event.id.unwrap_or_else(|| ids.next());
            let padded = encode_record(
                &mut encoded,
                &RecordFields {
                    stream,
                    event_type: &event.event_type,
                    metadata: &event.metadata,
                    data: &event.data,
                    id: id.into_bytes(),
                    recorded_at_us,
                },
            );
            records.push((padded, event.event_type.clone()));
        }
        Ok(Batch {
            stream: stream.to_owned(),
            expected,
            encoded,
            records,
        })
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
    })
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
