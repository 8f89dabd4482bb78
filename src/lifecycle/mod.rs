//! Letting data go: soft deletion, tombstones, truncation and stream
//! limits, recorded as control records, and the one place that decides
//! what a read may return.
//!
//! Each lifecycle call is an ordinary append of one *control record*
//! (record flag [`RECORD_FLAG_CONTROL`](crate::format::RECORD_FLAG_CONTROL),
//! format version 2): durable, atomic and recovered like any other append.
//! The record goes to the stream's *control stream*, `$$` followed by 32
//! hex digits of the SHA-256 of the stream id ([`control_stream`]), and its
//! data is the stream's whole lifecycle state after the call
//! ([`StreamState`], 40 bytes). So the last record of a control stream is
//! all there is to know, and the stream id itself is not in it: once the
//! stream's events are scavenged, its name is in no file, while a
//! tombstone still refuses it.
//!
//! The index keeps the states in memory (see
//! [`Index::lifecycle`](crate::index::Index)); an open loads them from the
//! last record of every control stream ([`load`]), whatever the index was
//! taken from (index files, the catalog, a scan). Reads hide removed events
//! at once through [`Visibility`]. This folder may import `crate::index`,
//! `crate::read` and `crate::log::format`.

pub(crate) mod retention;
pub(crate) mod scavenge;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::event::RecordedEvent;
use crate::index::Index;
use crate::index::shared::SharedIndex;

/// The prefix of every control stream's name. Appends to streams whose ids
/// start with it are refused: the namespace is annals'.
pub const RESERVED_PREFIX: &str = "$$";

/// Bytes of a control stream's name: the prefix and 32 hex digits.
const CONTROL_STREAM_LEN: usize = 2 + 32;

/// A stream's key in the lifecycle state: the first 16 bytes of the
/// SHA-256 of its id. A cryptographic hash, so that no one can choose a
/// stream id whose deletion deletes another stream.
pub(crate) type StreamKey = [u8; 16];

/// The key of `stream`.
pub(crate) fn key(stream: &str) -> StreamKey {
    let digest = Sha256::digest(stream.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    key
}

/// The name of the control stream of `stream`.
pub(crate) fn control_stream(stream: &str) -> String {
    let mut name = String::with_capacity(CONTROL_STREAM_LEN);
    name.push_str(RESERVED_PREFIX);
    for b in key(stream) {
        name.push_str(&format!("{b:02x}"));
    }
    name
}

/// The key a control stream's name carries; `None` for any other name.
pub(crate) fn key_of_control_stream(name: &str) -> Option<StreamKey> {
    let hex = name.strip_prefix(RESERVED_PREFIX)?;
    if hex.len() != 32 {
        return None;
    }
    let mut key = [0u8; 16];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Whether `stream` lies in the namespace annals keeps for itself.
pub(crate) fn is_reserved(stream: &str) -> bool {
    stream.starts_with(RESERVED_PREFIX)
}

/// Limits on what a stream keeps readable, applied at read time, at once:
/// its last `max_count` events, and those recorded in the last `max_age`.
/// An event past either limit is no longer returned by any read, and a
/// [`scavenge`](crate::Store::scavenge) may remove it for good. The
/// default has no limit; setting limits replaces the ones before.
///
/// ```
/// use std::time::Duration;
/// use annals::{EventData, ExpectedVersion, Store, StreamLimits};
///
/// # fn main() -> Result<(), annals::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(dir.path())?;
/// for i in 0..5u8 {
///     store.append("sensor-1", ExpectedVersion::Any, &[EventData::new("Read", vec![i])])?;
/// }
/// store.set_stream_limits("sensor-1", StreamLimits::default().max_count(2).max_age(Duration::from_secs(86_400)))?;
/// let left = store.read_stream("sensor-1", 0, 100)?;
/// assert_eq!(left.iter().map(|e| e.version).collect::<Vec<_>>(), [3, 4]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamLimits {
    max_count: Option<u64>,
    max_age: Option<Duration>,
}

impl StreamLimits {
    /// Keeps only the stream's last `n` events readable (at least 1).
    #[must_use]
    pub fn max_count(mut self, n: u64) -> StreamLimits {
        self.max_count = Some(n);
        self
    }

    /// Keeps only the events recorded in the last `age` readable (by their
    /// `recorded_at`; at least one microsecond).
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> StreamLimits {
        self.max_age = Some(age);
        self
    }

    /// The count limit, if any.
    pub fn get_max_count(&self) -> Option<u64> {
        self.max_count
    }

    /// The age limit, if any.
    pub fn get_max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The age limit in microseconds, checked: a zero count or age is
    /// refused, as is an age past what a `u64` of microseconds holds.
    pub(crate) fn checked(&self) -> Result<(Option<u64>, Option<u64>), Error> {
        if self.max_count == Some(0) {
            return Err(Error::InvalidLimits {
                reason: "max_count must be at least 1 (delete the stream to hide every event)"
                    .into(),
            });
        }
        let age_us = match self.max_age {
            None => None,
            Some(age) => match u64::try_from(age.as_micros()) {
                Ok(0) => {
                    return Err(Error::InvalidLimits {
                        reason: "max_age must be at least one microsecond".into(),
                    });
                }
                Ok(us) => Some(us),
                Err(_) => {
                    return Err(Error::InvalidLimits {
                        reason: "max_age is past what u64 microseconds hold".into(),
                    });
                }
            },
        };
        Ok((self.max_count, age_us))
    }
}

/// A lifecycle call, as the writer turns it into a control record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Delete,
    Tombstone,
    TruncateBefore(u64),
    Limits {
        max_count: Option<u64>,
        max_age_us: Option<u64>,
    },
}

impl Op {
    /// The event type of its control record, which `annals dump` shows.
    pub(crate) fn event_type(&self) -> &'static str {
        match self {
            Op::Delete => "$deleted",
            Op::Tombstone => "$tombstoned",
            Op::TruncateBefore(_) => "$truncated",
            Op::Limits { .. } => "$limits",
        }
    }
}

/// One stream's lifecycle state: what the last control record of its
/// control stream says.
///
/// Format (40 bytes): `{ state version u8 = 1 | flags u8 | reserved [u8; 6]
/// | deleted before u64 | truncate before u64 | max count u64 | max age us
/// u64 }`; flags bit 0 tombstoned, bit 1 max count set, bit 2 max age set,
/// the rest zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamState {
    /// Versions below it were soft-deleted; the stream reads as missing
    /// until it has an event at or past it.
    pub deleted_before: u64,
    /// Versions below it are truncated away; the stream still exists.
    pub truncate_before: u64,
    /// Gone for good.
    pub tombstoned: bool,
    pub max_count: Option<u64>,
    pub max_age_us: Option<u64>,
}

/// Bytes of an encoded [`StreamState`].
pub(crate) const STATE_LEN: usize = 40;
const STATE_VERSION: u8 = 1;
const TOMBSTONED: u8 = 1;
const HAS_MAX_COUNT: u8 = 2;
const HAS_MAX_AGE: u8 = 4;

impl StreamState {
    /// The state after `op`, for a stream whose next version is `next`.
    pub(crate) fn apply(mut self, op: Op, next: u64) -> StreamState {
        match op {
            Op::Delete => self.deleted_before = self.deleted_before.max(next),
            Op::Tombstone => {
                self.tombstoned = true;
                self.deleted_before = self.deleted_before.max(next);
            }
            Op::TruncateBefore(v) => self.truncate_before = self.truncate_before.max(v),
            Op::Limits {
                max_count,
                max_age_us,
            } => {
                self.max_count = max_count;
                self.max_age_us = max_age_us;
            }
        }
        self
    }

    pub(crate) fn encode(&self) -> [u8; STATE_LEN] {
        let mut out = [0u8; STATE_LEN];
        let flags = if self.tombstoned { TOMBSTONED } else { 0 }
            | if self.max_count.is_some() {
                HAS_MAX_COUNT
            } else {
                0
            }
            | if self.max_age_us.is_some() {
                HAS_MAX_AGE
            } else {
                0
            };
        let fields = [
            self.deleted_before,
            self.truncate_before,
            self.max_count.unwrap_or(0),
            self.max_age_us.unwrap_or(0),
        ];
        let (head, body) = out.split_at_mut(8);
        head.copy_from_slice(&[STATE_VERSION, flags, 0, 0, 0, 0, 0, 0]);
        for (chunk, v) in body.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Decodes a state; `None` (the caller names the record) for bytes that
    /// are not one this build writes.
    pub(crate) fn decode(untrusted: &[u8]) -> Option<StreamState> {
        let bytes: &[u8; STATE_LEN] = untrusted.try_into().ok()?;
        let (head, body) = bytes.split_at(8);
        let (&[version, flags], reserved) = head.split_at(2) else {
            return None;
        };
        if version != STATE_VERSION
            || flags & !(TOMBSTONED | HAS_MAX_COUNT | HAS_MAX_AGE) != 0
            || reserved.iter().any(|b| *b != 0)
        {
            return None;
        }
        let mut fields = body
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()));
        let mut next = || fields.next().unwrap_or(0);
        let (deleted_before, truncate_before, max_count, max_age_us) =
            (next(), next(), next(), next());
        let max_count = (flags & HAS_MAX_COUNT != 0).then_some(max_count);
        let max_age_us = (flags & HAS_MAX_AGE != 0).then_some(max_age_us);
        if max_count == Some(0) || max_age_us == Some(0) {
            return None;
        }
        Some(StreamState {
            deleted_before,
            truncate_before,
            tombstoned: flags & TOMBSTONED != 0,
            max_count,
            max_age_us,
        })
    }

    /// Whether this state keeps every bound of `old`: what any state a
    /// writer makes after `old` does (a tombstone stays, the delete and
    /// truncation bounds never go down; limits may change freely). A
    /// replication import refuses a control record that does not.
    pub(crate) fn keeps_bounds_of(&self, old: &StreamState) -> bool {
        (self.tombstoned || !old.tombstoned)
            && self.deleted_before >= old.deleted_before
            && self.truncate_before >= old.truncate_before
    }

    /// The first version a read may return, for a stream whose next
    /// version is `next` (`u64::MAX` when it is tombstoned).
    pub(crate) fn first_readable(&self, next: u64) -> u64 {
        if self.tombstoned {
            return u64::MAX;
        }
        let by_count = self.max_count.map_or(0, |n| next.saturating_sub(n));
        self.deleted_before.max(self.truncate_before).max(by_count)
    }
}

/// The rule one read applies to one stream's events.
#[derive(Clone, Copy, Debug)]
struct Rule {
    first_version: u64,
    /// Events recorded before this (microseconds since the epoch) are
    /// expired.
    oldest_us: u64,
}

/// What reads may return, decided in one place: a read takes one under
/// the index's read lock, after its events are decoded, and keeps only the
/// events it passes. Rules are worked out once per stream per read.
pub(crate) struct Visibility<'a> {
    index: &'a Index,
    now_us: u64,
    rules: HashMap<Arc<str>, Option<Rule>>,
}

impl<'a> Visibility<'a> {
    /// The visibility `index` gives now; `None` when no stream has a
    /// lifecycle state, so that reads of such a store pay nothing.
    pub(crate) fn of(index: &'a Index) -> Option<Visibility<'a>> {
        index.has_lifecycle().then(|| Visibility {
            index,
            now_us: crate::event::now_us(),
            rules: HashMap::new(),
        })
    }

    /// Whether a read may return the event of `stream` at `version`,
    /// recorded at `recorded_at_us`: as [`shows`](Visibility::shows), for
    /// a record not decoded into an event.
    pub(crate) fn shows_raw(&mut self, stream: &str, version: u64, recorded_at_us: u64) -> bool {
        let rule = self.index.lifecycle(stream).map(|state| {
            let next = self.index.raw_next_version(stream);
            Rule {
                first_version: state.first_readable(next),
                oldest_us: state
                    .max_age_us
                    .map_or(0, |age| self.now_us.saturating_sub(age)),
            }
        });
        rule.is_none_or(|r| version >= r.first_version && recorded_at_us >= r.oldest_us)
    }

    /// Whether a read may return `event`.
    pub(crate) fn shows(&mut self, event: &RecordedEvent) -> bool {
        let rule = match self.rules.get(&event.stream_id) {
            Some(rule) => *rule,
            None => {
                let rule = self.index.lifecycle(&event.stream_id).map(|state| {
                    let next = self.index.raw_next_version(&event.stream_id);
                    Rule {
                        first_version: state.first_readable(next),
                        oldest_us: state
                            .max_age_us
                            .map_or(0, |age| self.now_us.saturating_sub(age)),
                    }
                });
                self.rules.insert(Arc::clone(&event.stream_id), rule);
                rule
            }
        };
        rule.is_none_or(|r| event.version >= r.first_version && event.recorded_at >= r.oldest_us)
    }
}

/// Keeps the events of `events` that a read may return now.
pub(crate) fn retain_visible(index: &SharedIndex, events: &mut Vec<RecordedEvent>) {
    let index = index.read();
    if let Some(mut v) = Visibility::of(&index) {
        events.retain(|e| v.shows(e));
    }
}

/// Loads every stream's lifecycle state into `index` from the last record
/// of each control stream: what an open does once the log is indexed. A
/// record there that holds no state this build reads is skipped with a
/// warning: a version-1 store may hold a user stream of such a name, and
/// its checksum passed, so it is not damage.
pub(crate) fn load(index: &SharedIndex) -> Result<(), Error> {
    let found: Vec<(Arc<str>, StreamKey, u64)> = {
        let index = index.read();
        index
            .stream_names_from(0)
            .filter_map(|name| {
                let key = key_of_control_stream(name)?;
                let last = index.raw_next_version(name).checked_sub(1)?;
                // Its last record was dropped by retention: the log's
                // base gave its state.
                if last < index.first_version(name) {
                    return None;
                }
                Some((Arc::clone(name), key, last))
            })
            .collect()
    };
    let mut states = Vec::new();
    for (name, key, last) in found {
        let record = crate::read::control_record(index, &name, last)?;
        match StreamState::decode(&record.data) {
            Some(state) => states.push((key, state)),
            None => tracing::warn!(
                stream = %name,
                position = record.position,
                "a stream named like a control stream whose last record holds no lifecycle state; ignored"
            ),
        }
    }
    if !states.is_empty() {
        index.update(move |index| {
            for (key, state) in &states {
                index.set_lifecycle(*key, *state);
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_bad_bytes_are_refused() {
        let s = StreamState {
            deleted_before: 7,
            truncate_before: 3,
            tombstoned: true,
            max_count: Some(5),
            max_age_us: None,
        };
        assert_eq!(StreamState::decode(&s.encode()), Some(s));
        assert_eq!(
            StreamState::decode(&StreamState::default().encode()),
            Some(StreamState::default())
        );
        let mut bad = s.encode();
        bad[0] = 2;
        assert_eq!(StreamState::decode(&bad), None);
        let mut bad = s.encode();
        bad[1] |= 8;
        assert_eq!(StreamState::decode(&bad), None);
        assert_eq!(StreamState::decode(&s.encode()[..39]), None);
    }

    #[test]
    fn control_stream_names_carry_the_key_and_nothing_of_the_name() {
        let name = control_stream("user-secret-42");
        assert_eq!(name.len(), CONTROL_STREAM_LEN);
        assert!(!name.contains("secret"));
        assert_eq!(key_of_control_stream(&name), Some(key("user-secret-42")));
        assert_eq!(key_of_control_stream("$$abc"), None);
        assert_eq!(key_of_control_stream("user"), None);
        assert_ne!(key("a"), key("b"));
    }

    #[test]
    fn first_readable_takes_the_strictest_bound() {
        let s = StreamState {
            deleted_before: 4,
            truncate_before: 6,
            max_count: Some(3),
            ..StreamState::default()
        };
        assert_eq!(s.first_readable(20), 17);
        assert_eq!(s.first_readable(8), 6);
        let t = s.apply(Op::Tombstone, 20);
        assert_eq!(t.first_readable(20), u64::MAX);
        assert_eq!(t.deleted_before, 20);
    }
}
