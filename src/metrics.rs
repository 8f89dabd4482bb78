//! Operational metrics: what the store has done since it was opened, kept
//! in atomics so that they are always on. An append adds a handful of
//! relaxed atomic increments and two clock reads around its `fdatasync`,
//! next to an `fdatasync` that costs tens of microseconds at least.
//!
//! [`Store::metrics`](crate::Store::metrics) takes a [`Metrics`] snapshot;
//! with the `metrics` feature, [`Metrics::publish`] hands it to the
//! [`metrics`](https://docs.rs/metrics) crate's facade, for whatever
//! exporter the application installed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters since open, shared by the store and its writer.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    appends: AtomicU64,
    events_appended: AtomicU64,
    bytes_appended: AtomicU64,
    deduplicated: AtomicU64,
    commits: AtomicU64,
    fsyncs: AtomicU64,
    fsync_latency_us: Histogram,
    events_per_commit: Histogram,
    reads: AtomicU64,
    events_read: AtomicU64,
    rotations: AtomicU64,
}

impl Recorder {
    /// An append call that wrote `events` events of `bytes` encoded bytes.
    pub(crate) fn appended(&self, events: u64, bytes: u64) {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.events_appended.fetch_add(events, Ordering::Relaxed);
        self.bytes_appended.fetch_add(bytes, Ordering::Relaxed);
    }

    /// An append call answered as a retry: nothing written.
    pub(crate) fn deduplicated(&self) {
        self.deduplicated.fetch_add(1, Ordering::Relaxed);
    }

    /// A commit frame of `events` events written and synced.
    pub(crate) fn committed(&self, events: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.events_per_commit.record(events);
    }

    /// One `fdatasync` of a segment that took `took`.
    pub(crate) fn synced(&self, took: Duration) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_latency_us
            .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    /// A read call that returned `events` events.
    pub(crate) fn read(&self, events: usize) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.events_read.fetch_add(events as u64, Ordering::Relaxed);
    }

    /// The active segment was sealed and the next one started.
    pub(crate) fn rotated(&self) {
        self.rotations.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now, with the figures only the store knows.
    pub(crate) fn snapshot(&self, segments: u64, bytes_on_disk: u64) -> Metrics {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Metrics {
            appends: get(&self.appends),
            events_appended: get(&self.events_appended),
            bytes_appended: get(&self.bytes_appended),
            deduplicated_appends: get(&self.deduplicated),
            commits: get(&self.commits),
            fsyncs: get(&self.fsyncs),
            fsync_latency_us: self.fsync_latency_us.percentiles(),
            events_per_commit: self.events_per_commit.percentiles(),
            reads: get(&self.reads),
            events_read: get(&self.events_read),
            rotations: get(&self.rotations),
            segments,
            bytes_on_disk,
        }
    }
}

/// What a store has done since it was opened, from
/// [`Store::metrics`](crate::Store::metrics). Counters count from zero at
/// each open; `segments` and `bytes_on_disk` describe the store now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Append calls that wrote events (`append`, `append_multi`,
    /// `append_if`, `append_multi_if`, and imports); refused calls, empty
    /// ones and retries answered by event id are not counted.
    pub appends: u64,
    /// Events those appends wrote.
    pub events_appended: u64,
    /// Bytes of records those appends wrote (headers and padding
    /// included, frame headers not).
    pub bytes_appended: u64,
    /// Append calls answered as retries of an earlier one (by event id),
    /// which wrote nothing.
    pub deduplicated_appends: u64,
    /// Commit frames written (group commits: one frame may hold several
    /// callers' appends).
    pub commits: u64,
    /// `fdatasync`s of segment files on the append path.
    pub fsyncs: u64,
    /// Their latency in microseconds.
    pub fsync_latency_us: Percentiles,
    /// Events per commit frame: how much group commit gathers.
    pub events_per_commit: Percentiles,
    /// Read calls (`read_stream`, `read_all` and their backward and
    /// filtered forms, `find_event`).
    pub reads: u64,
    /// Events those reads returned.
    pub events_read: u64,
    /// Segments sealed and replaced by the next one.
    pub rotations: u64,
    /// Segment files holding events (as [`Stats::segments`](crate::Stats)).
    pub segments: u64,
    /// Bytes the data directory's files take on disk (allocated blocks, so
    /// a sparse segment counts only what it holds).
    pub bytes_on_disk: u64,
}

/// A distribution's median, 99th percentile and maximum, each within
/// 1/8 (12.5 %) of the true value; all zero when nothing was recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Percentiles {
    /// How many values were recorded.
    pub count: u64,
    /// The median.
    pub p50: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The largest value.
    pub max: u64,
}

/// Sub-buckets per power of two: the resolution of [`Histogram`].
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this have a bucket each.
const LINEAR: u64 = 2 * SUB;
/// Buckets for the whole `u64` range: the linear ones, then `SUB` per
/// power of two from `LINEAR` up.
const BUCKETS: usize = (LINEAR + (64 - (SUB_BITS + 1)) as u64 * SUB) as usize;

/// A log-linear histogram of `u64` values in atomics: lock-free to record,
/// a few kilobytes, and within 1/8 of the true value at any percentile.
#[derive(Debug)]
struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    fn record(&self, value: u64) {
        if let Some(b) = self.buckets.get(bucket_of(value)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    fn percentiles(&self) -> Percentiles {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max = self.max.load(Ordering::Relaxed);
        let at = |q: u64| {
            // The smallest value with at least q% of the values at or below
            // it, as the bucket's lowest value, never above the maximum.
            let rank = (count * q).div_ceil(100).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return lowest_of(i).min(max);
                }
            }
            max
        };
        if count == 0 {
            return Percentiles::default();
        }
        Percentiles {
            count,
            p50: at(50),
            p99: at(99),
            max,
        }
    }
}

/// The bucket holding `value`.
fn bucket_of(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros();
    let sub = (value >> (exp - SUB_BITS)) & (SUB - 1);
    (LINEAR + u64::from(exp - SUB_BITS - 1) * SUB + sub) as usize
}

/// The lowest value in bucket `i`.
fn lowest_of(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let exp = (i - LINEAR) / SUB + u64::from(SUB_BITS) + 1;
    let sub = (i - LINEAR) % SUB;
    (1u64 << exp) | (sub << (exp - u64::from(SUB_BITS)))
}

#[cfg(feature = "metrics")]
impl Metrics {
    /// Hands the snapshot to the [`metrics`](https://docs.rs/metrics)
    /// facade: counters as `annals_*_total` (absolute values, so that
    /// publishing again is safe) and gauges for the rest, each with a
    /// `store` label. Call it periodically, e.g. from the exporter's
    /// scrape hook.
    pub fn publish(&self, store: &str) {
        let label = [("store", store.to_owned())];
        let counters = [
            ("annals_appends_total", self.appends),
            ("annals_events_appended_total", self.events_appended),
            ("annals_bytes_appended_total", self.bytes_appended),
            (
                "annals_deduplicated_appends_total",
                self.deduplicated_appends,
            ),
            ("annals_commits_total", self.commits),
            ("annals_fsyncs_total", self.fsyncs),
            ("annals_reads_total", self.reads),
            ("annals_events_read_total", self.events_read),
            ("annals_rotations_total", self.rotations),
        ];
        for (name, value) in counters {
            metrics::counter!(name, &label).absolute(value);
        }
        let gauges = [
            ("annals_segments", self.segments),
            ("annals_bytes_on_disk", self.bytes_on_disk),
            ("annals_fsync_latency_p50_us", self.fsync_latency_us.p50),
            ("annals_fsync_latency_p99_us", self.fsync_latency_us.p99),
            ("annals_events_per_commit_p50", self.events_per_commit.p50),
            ("annals_events_per_commit_p99", self.events_per_commit.p99),
        ];
        for (name, value) in gauges {
            metrics::gauge!(name, &label).set(value as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_u64_in_order_and_their_lowest_values_map_back() {
        let mut last = 0;
        for v in (0..10_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v} -> {b}");
            assert!(b >= last || v > 10_000, "buckets out of order at {v}");
            last = b;
            let low = lowest_of(b);
            assert!(low <= v && bucket_of(low) == b, "{v}: bucket {b} low {low}");
            // Within 1/8 of the value.
            assert!(v - low <= v / SUB, "{v}: {low}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let h = Histogram::default();
        assert_eq!(h.percentiles(), Percentiles::default());
        for v in 1..=1000u64 {
            h.record(v);
        }
        let p = h.percentiles();
        assert_eq!((p.count, p.max), (1000, 1000));
        assert!((500 - 500 / 8..=500).contains(&p.p50), "{p:?}");
        assert!((990 - 990 / 8..=990).contains(&p.p99), "{p:?}");
        let one = Histogram::default();
        one.record(7);
        let p = one.percentiles();
        assert_eq!((p.count, p.p50, p.p99, p.max), (1, 7, 7, 7));
    }
}
