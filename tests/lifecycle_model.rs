//! The lifecycle against a plain model: random appends, soft deletes,
//! tombstones, truncations, count limits, scavenges and reopens (clean and
//! not) on small segments, with every stream's reads, `stream_version`,
//! `read_all` and the expected-version answers checked against what a
//! `Vec` of events and a few numbers per stream say after every step.
//! Seeded: a failure prints the seed and replays from `ANNALS_SEED`;
//! `ANNALS_LIFECYCLE_MODEL_RUNS` runs more.

mod common;

use std::collections::BTreeMap;

use annals::{Error, EventData, ExpectedVersion, Options, RecordedEvent, Store, StreamLimits};
use common::{Rng, env_count, mix, seed};

const STREAMS: [&str; 4] = ["a", "b", "c", "d"];
const STEPS: usize = 150;

fn options() -> Options {
    Options::default()
        .segment_size(8 << 10)
        .prepare_segments_ahead(false)
}

/// One stream as the model sees it.
#[derive(Debug, Default, Clone)]
struct MStream {
    /// Every event ever appended: (position, data), version = index.
    events: Vec<(u64, Vec<u8>)>,
    deleted_before: u64,
    truncate_before: u64,
    tombstoned: bool,
    max_count: Option<u64>,
}

impl MStream {
    fn next(&self) -> u64 {
        self.events.len() as u64
    }

    fn version(&self) -> Option<u64> {
        let last = self.next().checked_sub(1)?;
        (!self.tombstoned && last >= self.deleted_before).then_some(last)
    }

    fn first_readable(&self) -> u64 {
        let by_count = self.max_count.map_or(0, |n| self.next().saturating_sub(n));
        self.deleted_before.max(self.truncate_before).max(by_count)
    }

    fn visible(&self) -> Vec<(u64, u64, &[u8])> {
        if self.tombstoned {
            return Vec::new();
        }
        let first = self.first_readable();
        self.events
            .iter()
            .enumerate()
            .filter(|(v, _)| *v as u64 >= first)
            .map(|(v, (p, d))| (v as u64, *p, &d[..]))
            .collect()
    }
}

fn check(store: &Store, model: &BTreeMap<&str, MStream>, step: &str) {
    let mut all: Vec<(u64, &str, u64, &[u8])> = Vec::new();
    for (name, m) in model {
        assert_eq!(
            store.stream_version(name),
            m.version(),
            "{step}: version of {name}"
        );
        let read = store.read_stream(name, 0, 10_000);
        match (m.tombstoned, m.version()) {
            (true, _) => assert!(
                matches!(read, Err(Error::StreamDeleted { .. })),
                "{step}: {name}: {read:?}"
            ),
            (false, None) => assert!(
                matches!(read, Err(Error::StreamNotFound { .. })),
                "{step}: {name}: {read:?}"
            ),
            (false, Some(_)) => {
                let got: Vec<(u64, u64, Vec<u8>)> = read
                    .unwrap()
                    .iter()
                    .map(|e| (e.version, e.position, e.data.to_vec()))
                    .collect();
                let want: Vec<(u64, u64, Vec<u8>)> = m
                    .visible()
                    .into_iter()
                    .map(|(v, p, d)| (v, p, d.to_vec()))
                    .collect();
                assert_eq!(got, want, "{step}: read_stream {name}");
                let back: Vec<u64> = store
                    .read_stream_backward(name, u64::MAX, 3)
                    .unwrap()
                    .iter()
                    .map(|e| e.version)
                    .collect();
                let want_back: Vec<u64> = want.iter().rev().take(3).map(|w| w.0).collect();
                assert_eq!(back, want_back, "{step}: backward {name}");
            }
        }
        all.extend(m.visible().into_iter().map(|(v, p, d)| (p, *name, v, d)));
    }
    all.sort_unstable_by_key(|e| e.0);
    let got: Vec<RecordedEvent> = store.read_all(0, 100_000).unwrap();
    let got: Vec<(u64, &str, u64, &[u8])> = got
        .iter()
        .map(|e| (e.position, &*e.stream_id, e.version, &e.data[..]))
        .collect();
    assert_eq!(got, all, "{step}: read_all");
}

fn run_once(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(seed);
    let mut model: BTreeMap<&str, MStream> =
        STREAMS.iter().map(|s| (*s, MStream::default())).collect();
    let mut store = Some(Store::open_with(dir.path(), options()).unwrap());
    for step in 0..STEPS {
        let s = store.as_ref().unwrap();
        let name = STREAMS[rng.below(STREAMS.len() as u64) as usize];
        let m = model.get_mut(name).unwrap();
        let what = match rng.below(20) {
            0..=8 => {
                let n = rng.between(1, 4);
                let data: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        let len = rng.below(600) as usize;
                        rng.bytes(len)
                    })
                    .collect();
                let events: Vec<EventData> = data
                    .iter()
                    .map(|d| EventData::new("T", d.clone()))
                    .collect();
                // An expected version that is right, or one that is not.
                let (expected, ok) = match rng.below(3) {
                    0 => (ExpectedVersion::Any, true),
                    1 => match m.version() {
                        Some(v) => (ExpectedVersion::Exact(v), true),
                        None => (ExpectedVersion::NoStream, true),
                    },
                    _ => (ExpectedVersion::Exact(m.next() + 7), false),
                };
                let r = s.append(name, expected, &events);
                match (m.tombstoned, ok) {
                    (true, _) => assert!(matches!(r, Err(Error::StreamDeleted { .. })), "{r:?}"),
                    (false, false) => {
                        assert!(
                            matches!(r, Err(Error::WrongExpectedVersion { .. })),
                            "{r:?}"
                        )
                    }
                    (false, true) => {
                        let r = r.unwrap();
                        assert_eq!(r.versions.start, m.next(), "versions go on");
                        for (p, d) in r.positions.zip(data) {
                            m.events.push((p, d));
                        }
                    }
                }
                format!("append {n} to {name}")
            }
            9..=10 => {
                let r = s.delete_stream(name, ExpectedVersion::Any);
                if m.tombstoned {
                    assert!(matches!(r, Err(Error::StreamDeleted { .. })), "{r:?}");
                } else {
                    r.unwrap();
                    if m.version().is_some() {
                        m.deleted_before = m.next();
                    }
                }
                format!("delete {name}")
            }
            11 => {
                let r = s.tombstone_stream(name, ExpectedVersion::Any);
                if m.tombstoned {
                    assert!(matches!(r, Err(Error::StreamDeleted { .. })), "{r:?}");
                } else {
                    r.unwrap();
                    m.tombstoned = true;
                    m.deleted_before = m.next();
                }
                format!("tombstone {name}")
            }
            12..=13 => {
                let v = rng.below(m.next() + 2);
                let r = s.truncate_stream_before(name, v);
                if m.tombstoned {
                    assert!(matches!(r, Err(Error::StreamDeleted { .. })), "{r:?}");
                } else {
                    r.unwrap();
                    m.truncate_before = m.truncate_before.max(v);
                }
                format!("truncate {name} before {v}")
            }
            14 => {
                let n = rng.below(4);
                let limits = match n {
                    0 => StreamLimits::default(),
                    n => StreamLimits::default().max_count(n),
                };
                let r = s.set_stream_limits(name, limits);
                if m.tombstoned {
                    assert!(matches!(r, Err(Error::StreamDeleted { .. })), "{r:?}");
                } else {
                    r.unwrap();
                    m.max_count = (n > 0).then_some(n);
                }
                format!("limit {name} to {n}")
            }
            15..=16 => {
                s.scavenge().unwrap();
                // Limits become truncations.
                for m in model.values_mut() {
                    if !m.tombstoned && m.max_count.is_some() {
                        m.truncate_before = m.first_readable();
                    }
                }
                "scavenge".to_owned()
            }
            17 => {
                store.take().unwrap().close().unwrap();
                store = Some(Store::open_with(dir.path(), options()).unwrap());
                "clean reopen".to_owned()
            }
            _ => {
                drop(store.take());
                store = Some(Store::open_with(dir.path(), options()).unwrap());
                "reopen after a drop".to_owned()
            }
        };
        // Shown with a failure: the steps that led to it.
        eprintln!(
            "step {step}: {what}; model {:?}",
            model.get(name).map(|m| (
                m.next(),
                m.deleted_before,
                m.truncate_before,
                m.tombstoned,
                m.max_count
            ))
        );
        check(
            store.as_ref().unwrap(),
            &model,
            &format!("step {step} ({what})"),
        );
    }
}

#[test]
fn the_lifecycle_agrees_with_a_plain_model() {
    let seed = seed("lifecycle_model");
    for run in 0..env_count("ANNALS_LIFECYCLE_MODEL_RUNS", 6) {
        run_once(mix(seed, run));
    }
}
