//! Guards `Store::metrics` (issue 15): every counter moves exactly with
//! what the store did (appends that wrote, retries, refusals that did not,
//! commits and their `fdatasync`s, reads, rotations), the distributions
//! count what they summarise, and, with the `metrics` feature, `publish`
//! hands the same figures to the `metrics` facade.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use annals::{Error, EventData, ExpectedVersion, Filter, Options, Store, StreamAppend, Uuid};

fn ev(id: u128) -> EventData {
    EventData::new("T", vec![7u8; 100]).with_id(Uuid::from_u128(id))
}

#[test]
fn counters_follow_what_the_store_did() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), Options::default().segment_size(64 * 1024)).unwrap();
    let fresh = store.metrics();
    assert_eq!(
        (fresh.appends, fresh.commits, fresh.fsyncs, fresh.reads),
        (0, 0, 0, 0)
    );
    assert_eq!(fresh.fsync_latency_us.count, 0);
    assert!(
        fresh.bytes_on_disk > 0,
        "segment 0 and the lock take blocks"
    );

    store
        .append("a", ExpectedVersion::NoStream, &[ev(1), ev(2)])
        .unwrap();
    store
        .append_multi(&[
            StreamAppend::new("b", ExpectedVersion::Any, vec![ev(3)]),
            StreamAppend::new("c", ExpectedVersion::Any, vec![ev(4)]),
        ])
        .unwrap();
    // A retry, a refusal and an empty append write nothing.
    assert!(
        store
            .append("a", ExpectedVersion::NoStream, &[ev(1), ev(2)])
            .unwrap()
            .deduplicated
    );
    assert!(matches!(
        store.append("a", ExpectedVersion::NoStream, &[ev(5)]),
        Err(Error::WrongExpectedVersion { .. })
    ));
    store.append("a", ExpectedVersion::Any, &[]).unwrap();
    let m = store.metrics();
    assert_eq!(m.appends, 2);
    assert_eq!(m.events_appended, 4);
    assert_eq!(m.deduplicated_appends, 1);
    assert_eq!((m.commits, m.fsyncs), (2, 2));
    assert_eq!(m.fsync_latency_us.count, 2);
    assert!(m.fsync_latency_us.p50 <= m.fsync_latency_us.max);
    assert_eq!(m.events_per_commit.count, 2);
    assert_eq!(m.events_per_commit.max, 2);
    // Four records of a 1-byte stream, 1-byte type and 100 bytes of data,
    // each at least that long plus its 64-byte header.
    assert!(m.bytes_appended >= 4 * (64 + 102), "{}", m.bytes_appended);
    assert_eq!(m.segments, 1);

    assert_eq!(store.read_stream("a", 0, 10).unwrap().len(), 2);
    assert_eq!(store.read_all(0, 10).unwrap().len(), 4);
    assert_eq!(store.read_all_backward(u64::MAX, 3).unwrap().len(), 3);
    assert_eq!(
        store.read_stream_backward("a", u64::MAX, 1).unwrap().len(),
        1
    );
    let page = store
        .read_all_filtered(0, 10, &Filter::stream_prefix("b"))
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert!(store.find_event(Uuid::from_u128(3)).unwrap().is_some());
    assert!(store.read_stream("missing", 0, 1).is_err());
    let m = store.metrics();
    assert_eq!(m.reads, 6, "a failed read is not counted");
    assert_eq!(m.events_read, 2 + 4 + 3 + 1 + 1 + 1);

    // Rotations: fill past a few 64 KiB segments.
    for i in 0..3000u128 {
        store
            .append("big", ExpectedVersion::Any, &[ev(1000 + i)])
            .unwrap();
    }
    let m = store.metrics();
    assert!(m.rotations >= 2, "{m:?}");
    assert_eq!(m.segments, m.rotations + 1);
    assert_eq!(m.appends, 3002);
    assert_eq!(m.fsyncs, m.commits);
    assert!(m.bytes_on_disk >= m.bytes_appended, "{m:?}");
}

#[test]
fn a_read_only_store_counts_its_reads_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.append("a", ExpectedVersion::Any, &[ev(1)]).unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    reader.read_all(0, 10).unwrap();
    let m = reader.metrics();
    assert_eq!((m.appends, m.commits, m.reads, m.events_read), (0, 0, 1, 1));
    assert_eq!(m.segments, 1);
}

/// A `metrics` recorder that keeps the last value of every counter and
/// gauge by name.
#[derive(Default, Clone)]
struct Last(Arc<Mutex<HashMap<String, f64>>>);

struct Handle(String, Last);

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.1
            .0
            .lock()
            .unwrap()
            .insert(self.0.clone(), value as f64);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, value: f64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.1.0.lock().unwrap().insert(self.0.clone(), value);
    }
}

impl metrics::Recorder for Last {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(Arc::new(Handle(name_of(key), self.clone())))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(Arc::new(Handle(name_of(key), self.clone())))
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// `name{label=value}`, so that the test sees the labels too.
fn name_of(key: &metrics::Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

#[test]
fn publish_hands_the_snapshot_to_the_metrics_facade() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("a", ExpectedVersion::Any, &[ev(1), ev(2)])
        .unwrap();
    store.read_all(0, 10).unwrap();
    let m = store.metrics();
    let last = Last::default();
    metrics::with_local_recorder(&last, || m.publish("orders"));
    let got = last.0.lock().unwrap().clone();
    let at = |name: &str| got.get(&format!("{name}{{store=orders}}")).copied();
    assert_eq!(at("annals_appends_total"), Some(1.0));
    assert_eq!(at("annals_events_appended_total"), Some(2.0));
    assert_eq!(at("annals_fsyncs_total"), Some(m.fsyncs as f64));
    assert_eq!(at("annals_reads_total"), Some(1.0));
    assert_eq!(at("annals_bytes_on_disk"), Some(m.bytes_on_disk as f64));
    assert_eq!(
        at("annals_fsync_latency_p99_us"),
        Some(m.fsync_latency_us.p99 as f64)
    );
    // Publishing again sets the same values, never adds them up.
    metrics::with_local_recorder(&last, || m.publish("orders"));
    assert_eq!(
        last.0
            .lock()
            .unwrap()
            .get("annals_appends_total{store=orders}"),
        Some(&1.0)
    );
}
