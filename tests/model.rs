//! Guards the whole public contract against a plain in-memory model: random
//! sequences of appends (every expected-version kind, empty and multi-event
//! batches, and invalid inputs of every kind), reads of streams and of the
//! global log, version queries, clean reopens and simulated power cuts are
//! run against the store and against a `Vec` of events, and must agree. For
//! a power cut the model knows which appends were in flight and may or may
//! not have survived; everything acknowledged must.
//!
//! Replay: proptest saves failing cases in `tests/model.proptest-regressions`
//! and prints the shrunk sequence; `ANNALS_SEED` replays a whole run and
//! `ANNALS_MODEL_CASES` runs more cases.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use annals::format::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, padded_record_len};
use annals::{Error, EventData, ExpectedVersion, Limit, Options, RecordedEvent, Store, Uuid};
use common::sim_disk::{CrashImage, Fate, SimDisk};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// What the cases exercised, for the closing line: power cuts that failed
/// an operation, in-doubt appends, and in-doubt appends that survived.
static CUTS: AtomicU64 = AtomicU64::new(0);
static IN_DOUBT: AtomicU64 = AtomicU64::new(0);
static SURVIVED: AtomicU64 = AtomicU64::new(0);

const SEGMENT_SIZE: u64 = 8192;
const MAX_EVENT_SIZE: usize = 2000;
const MAX_BATCH_EVENTS: usize = 8;
const MAX_NAME_LEN: usize = 32;
const STREAMS: [&str; 4] = ["a", "order-42", "ünïcödé-✓", "s3"];

fn options(disk: &Arc<SimDisk>) -> Options {
    Options::default()
        .segment_size(SEGMENT_SIZE)
        .max_event_size(MAX_EVENT_SIZE)
        .max_batch_events(MAX_BATCH_EVENTS)
        .max_stream_id_len(MAX_NAME_LEN)
        .max_event_type_len(MAX_NAME_LEN)
        // Every operation on the caller's thread, so that a case replays.
        .prepare_segments_ahead(false)
        .file_io(disk.clone())
}

#[derive(Clone, Debug)]
enum Expect {
    Any,
    NoStream,
    StreamExists,
    /// Exact with the stream's real last version (passes if it has one).
    ExactCurrent,
    /// Exact with a version `n` away from the real one (fails).
    ExactOff(u8),
}

#[derive(Clone, Debug)]
struct Ev {
    type_index: u8,
    data_len: u16,
    meta_len: u8,
    fill: u8,
    id: Option<u128>,
}

#[derive(Clone, Copy, Debug)]
enum Bad {
    EmptyStream,
    LongStream,
    ControlStream,
    EmptyType,
    LongType,
    ControlType,
    OversizeEvent,
    TooManyEvents,
    BatchTooBig,
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        stream: usize,
        expect: Expect,
        events: Vec<Ev>,
    },
    Invalid(Bad),
    ReadStream {
        stream: usize,
        from: u8,
        max: u8,
    },
    ReadAll {
        from: u16,
        max: u8,
    },
    Versions,
    /// Close and reopen; if a power cut is planned, it happens here at the
    /// latest and the store reopens from what it left.
    Restart,
    /// Plans a power cut after `delay` more file operations, leaving what
    /// `image` says.
    PowerCut {
        delay: u8,
        image: u8,
        keep: u16,
        dir_ops: u8,
    },
}

fn ev() -> impl Strategy<Value = Ev> {
    (
        0u8..6,
        prop_oneof![4 => 0u16..200, 1 => 200u16..1900],
        prop_oneof![2 => Just(0u8), 1 => any::<u8>()],
        any::<u8>(),
        proptest::option::of(any::<u128>()),
    )
        .prop_map(|(type_index, data_len, meta_len, fill, id)| Ev {
            type_index,
            data_len,
            meta_len: meta_len % 100,
            fill,
            id,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let expect = prop_oneof![
        1 => Just(Expect::Any),
        1 => Just(Expect::NoStream),
        1 => Just(Expect::StreamExists),
        3 => Just(Expect::ExactCurrent),
        1 => (1u8..4).prop_map(Expect::ExactOff),
    ];
    let bad = prop_oneof![
        Just(Bad::EmptyStream),
        Just(Bad::LongStream),
        Just(Bad::ControlStream),
        Just(Bad::EmptyType),
        Just(Bad::LongType),
        Just(Bad::ControlType),
        Just(Bad::OversizeEvent),
        Just(Bad::TooManyEvents),
        Just(Bad::BatchTooBig),
    ];
    prop_oneof![
        12 => (0..STREAMS.len(), expect, prop::collection::vec(ev(), 0..5))
            .prop_map(|(stream, expect, events)| Op::Append { stream, expect, events }),
        2 => bad.prop_map(Op::Invalid),
        2 => (0..STREAMS.len(), 0u8..8, 0u8..6)
            .prop_map(|(stream, from, max)| Op::ReadStream { stream, from, max }),
        2 => (0u16..80, 0u8..20).prop_map(|(from, max)| Op::ReadAll { from, max }),
        1 => Just(Op::Versions),
        1 => Just(Op::Restart),
        1 => (0u8..12, 0u8..4, any::<u16>(), any::<u8>())
            .prop_map(|(delay, image, keep, dir_ops)| Op::PowerCut { delay, image, keep, dir_ops }),
    ]
}

/// An event as the model holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MEvent {
    stream: String,
    version: u64,
    event_type: String,
    data: Vec<u8>,
    metadata: Vec<u8>,
    id: Option<Uuid>,
}

fn event_data(ev: &Ev) -> EventData {
    let data: Vec<u8> = (0..ev.data_len)
        .map(|i| ev.fill.wrapping_add(i as u8))
        .collect();
    let metadata = vec![ev.fill ^ 0x5a; usize::from(ev.meta_len)];
    let e = EventData::new(format!("Type{}", ev.type_index), data).with_metadata(metadata);
    match ev.id {
        Some(id) => e.with_id(Uuid::from_u128(id)),
        None => e,
    }
}

/// The encoded size check the store makes: a batch must fit in one segment.
fn fits_a_segment(stream: &str, events: &[EventData]) -> bool {
    let total: usize = events
        .iter()
        .map(|e| {
            padded_record_len(
                stream.len(),
                e.event_type().len(),
                e.metadata().len(),
                e.data().len(),
            )
            .expect("lengths within the format")
            .1
        })
        .sum();
    total as u64 <= SEGMENT_SIZE - (SEGMENT_HEADER_LEN + FRAME_HEADER_LEN) as u64
}

#[derive(Default)]
struct Model {
    events: Vec<MEvent>,
    /// A write or sync failed: appends are refused until a restart.
    poisoned: bool,
    /// The planned power cut's image, if one is planned.
    cut: Option<CrashImage>,
    /// Batches whose append failed with an I/O error after the cut was
    /// planned: each may or may not have reached the disk.
    in_doubt: Vec<Vec<MEvent>>,
}

impl Model {
    fn last_version(&self, stream: &str) -> Option<u64> {
        self.events
            .iter()
            .rev()
            .find(|e| e.stream == stream)
            .map(|e| e.version)
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Asserts that `got` is the model's `want` at `position`.
fn assert_same(got: &RecordedEvent, want: &MEvent, position: u64, started_us: u64) {
    assert_eq!(got.position, position);
    assert_eq!(&*got.stream_id, want.stream, "stream at {position}");
    assert_eq!(got.version, want.version, "version at {position}");
    assert_eq!(&*got.event_type, want.event_type, "type at {position}");
    assert_eq!(&got.data[..], &want.data[..], "data at {position}");
    assert_eq!(
        &got.metadata[..],
        &want.metadata[..],
        "metadata at {position}"
    );
    match want.id {
        Some(id) => assert_eq!(got.id, id, "id at {position}"),
        None => assert_eq!(got.id.get_version_num(), 7, "a generated id is a UUID v7"),
    }
    assert!(
        (started_us.saturating_sub(60_000_000)..=now_us() + 60_000_000).contains(&got.recorded_at),
        "recorded_at {} is not the time of the test",
        got.recorded_at
    );
}

fn read_everything(store: &Store) -> Vec<RecordedEvent> {
    store.read_all(0, usize::MAX).unwrap()
}

/// Runs one sequence against a store on a simulated disk and the model.
fn run(ops: &[Op]) {
    let started_us = now_us();
    let mut dirs = vec![tempfile::tempdir().unwrap()];
    let mut disk = SimDisk::attach(dirs[0].path());
    let mut store = Some(Store::open_with(dirs[0].path(), options(&disk)).unwrap());
    let mut model = Model::default();
    let mut ops = ops.to_vec();
    // Every sequence ends with a restart, so that what was acknowledged is
    // checked after a reopen.
    ops.push(Op::Restart);
    for op in &ops {
        let s = store.as_ref().expect("a store is open");
        match op {
            Op::Append {
                stream,
                expect,
                events,
            } => {
                let name = STREAMS[*stream];
                let actual = model.last_version(name);
                let expected = match expect {
                    Expect::Any => ExpectedVersion::Any,
                    Expect::NoStream => ExpectedVersion::NoStream,
                    Expect::StreamExists => ExpectedVersion::StreamExists,
                    Expect::ExactCurrent => ExpectedVersion::Exact(actual.unwrap_or(0)),
                    Expect::ExactOff(n) => {
                        ExpectedVersion::Exact(actual.map_or(u64::from(*n), |v| v + u64::from(*n)))
                    }
                };
                let data: Vec<EventData> = events.iter().map(event_data).collect();
                let result = s.append(name, expected, &data);
                let next_version = actual.map_or(0, |v| v + 1);
                let batch: Vec<MEvent> = data
                    .iter()
                    .enumerate()
                    .map(|(i, e)| MEvent {
                        stream: name.to_owned(),
                        version: next_version + i as u64,
                        event_type: e.event_type().to_owned(),
                        data: e.data().to_vec(),
                        metadata: e.metadata().to_vec(),
                        id: e.id(),
                    })
                    .collect();
                // The store checks the arguments, then whether it is
                // poisoned, then the expected version.
                if !fits_a_segment(name, &data) {
                    assert!(
                        matches!(
                            result,
                            Err(Error::LimitExceeded {
                                limit: Limit::BatchSize,
                                ..
                            })
                        ),
                        "{result:?}"
                    );
                } else if model.poisoned {
                    assert!(matches!(result, Err(Error::Poisoned)), "{result:?}");
                } else if !expected.admits(actual) {
                    match result {
                        Err(Error::WrongExpectedVersion {
                            stream,
                            expected: e,
                            actual: a,
                        }) => assert_eq!((stream.as_str(), e, a), (name, expected, actual)),
                        other => panic!("expected WrongExpectedVersion, got {other:?}"),
                    }
                } else {
                    match result {
                        Ok(r) => {
                            let n = batch.len() as u64;
                            let p = model.events.len() as u64;
                            assert_eq!(r.versions, next_version..next_version + n);
                            assert_eq!(r.positions, p..p + n);
                            model.events.extend(batch);
                        }
                        Err(Error::Io { .. }) if model.cut.is_some() && disk.crashed() => {
                            model.poisoned = true;
                            model.in_doubt.push(batch);
                        }
                        Err(e) => panic!("append failed: {e:?}"),
                    }
                }
            }
            Op::Invalid(bad) => {
                let ops_before = disk.ops();
                let position = s.global_position();
                let ok = || EventData::new("T", b"x".to_vec());
                let long = "x".repeat(MAX_NAME_LEN + 1);
                let (stream, events): (&str, Vec<EventData>) = match bad {
                    Bad::EmptyStream => ("", vec![ok()]),
                    Bad::LongStream => (&long, vec![ok()]),
                    Bad::ControlStream => ("a\nb", vec![ok()]),
                    Bad::EmptyType => ("a", vec![ok(), EventData::new("", b"x".to_vec())]),
                    Bad::LongType => ("a", vec![EventData::new(long.clone(), b"x".to_vec())]),
                    Bad::ControlType => ("a", vec![EventData::new("T\u{1b}[1m", b"x".to_vec())]),
                    Bad::OversizeEvent => (
                        "a",
                        vec![
                            EventData::new("T", vec![1u8; MAX_EVENT_SIZE - 10])
                                .with_metadata(vec![2u8; 11]),
                        ],
                    ),
                    Bad::TooManyEvents => ("a", (0..=MAX_BATCH_EVENTS).map(|_| ok()).collect()),
                    Bad::BatchTooBig => (
                        "a",
                        (0..5)
                            .map(|_| EventData::new("T", vec![3u8; 1900]))
                            .collect(),
                    ),
                };
                let result = s.append(stream, ExpectedVersion::Any, &events);
                assert!(
                    matches!(
                        (bad, &result),
                        (
                            Bad::EmptyStream | Bad::LongStream | Bad::ControlStream,
                            Err(Error::InvalidStreamId { .. })
                        ) | (
                            Bad::EmptyType,
                            Err(Error::InvalidEventType { index: 1, .. })
                        ) | (
                            Bad::LongType | Bad::ControlType,
                            Err(Error::InvalidEventType { index: 0, .. })
                        ) | (
                            Bad::OversizeEvent,
                            Err(Error::LimitExceeded {
                                limit: Limit::EventSize,
                                ..
                            })
                        ) | (
                            Bad::TooManyEvents,
                            Err(Error::LimitExceeded {
                                limit: Limit::BatchEvents,
                                ..
                            })
                        ) | (
                            Bad::BatchTooBig,
                            Err(Error::LimitExceeded {
                                limit: Limit::BatchSize,
                                ..
                            })
                        )
                    ),
                    "{bad:?} gave {result:?}"
                );
                assert_eq!(
                    s.global_position(),
                    position,
                    "a refused append changed the store"
                );
                assert_eq!(disk.ops(), ops_before, "a refused append touched the disk");
            }
            Op::ReadStream { stream, from, max } => {
                let name = STREAMS[*stream];
                let result = s.read_stream(name, u64::from(*from), usize::from(*max));
                let want: Vec<(u64, &MEvent)> = model
                    .events
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.stream == name)
                    .map(|(p, e)| (p as u64, e))
                    .collect();
                if want.is_empty() {
                    assert!(
                        matches!(result, Err(Error::StreamNotFound { .. })),
                        "{result:?}"
                    );
                } else {
                    let got = result.unwrap();
                    let want: Vec<_> = want
                        .into_iter()
                        .skip(usize::from(*from))
                        .take(usize::from(*max))
                        .collect();
                    assert_eq!(got.len(), want.len(), "read_stream({name}, {from}, {max})");
                    for (g, (p, w)) in got.iter().zip(want) {
                        assert_same(g, w, p, started_us);
                    }
                }
            }
            Op::ReadAll { from, max } => {
                let got = s.read_all(u64::from(*from), usize::from(*max)).unwrap();
                let want: Vec<_> = model
                    .events
                    .iter()
                    .enumerate()
                    .skip(usize::from(*from))
                    .take(usize::from(*max))
                    .collect();
                assert_eq!(got.len(), want.len(), "read_all({from}, {max})");
                for (g, (p, w)) in got.iter().zip(want) {
                    assert_same(g, w, p as u64, started_us);
                }
                // Position arithmetic saturates.
                assert!(s.read_all(u64::MAX, usize::MAX).unwrap().is_empty());
            }
            Op::Versions => {
                for name in STREAMS {
                    assert_eq!(s.stream_version(name), model.last_version(name), "{name}");
                }
                assert_eq!(s.global_position(), model.events.len() as u64);
            }
            Op::PowerCut {
                delay,
                image,
                keep,
                dir_ops,
            } => {
                if model.cut.is_none() {
                    disk.crash_after(disk.ops() + u64::from(*delay));
                    let writes = match image {
                        0 => Fate::DurableOnly,
                        1 => Fate::AllWrites,
                        2 => Fate::TornLast {
                            keep: usize::from(*keep),
                        },
                        _ => Fate::GarbageLast {
                            len: usize::from(*keep),
                            seed: u64::from(*keep),
                        },
                    };
                    model.cut = Some(CrashImage {
                        writes,
                        dir_ops: usize::from(*dir_ops % 4),
                    });
                }
            }
            Op::Restart => {
                drop(store.take());
                let dir = dirs.last().unwrap().path().to_path_buf();
                if let Some(image) = model.cut.take() {
                    if disk.crashed() {
                        CUTS.fetch_add(1, Ordering::Relaxed);
                    } else {
                        disk.crash_now();
                    }
                    IN_DOUBT.fetch_add(model.in_doubt.len() as u64, Ordering::Relaxed);
                    let next = tempfile::tempdir().unwrap();
                    disk.materialize(&dir, next.path(), &image);
                    disk = SimDisk::attach(next.path());
                    dirs.push(next);
                    let reopened = reopen(dirs.last().unwrap().path(), &disk);
                    adopt_survivors(&mut model, &reopened, image, started_us);
                    store = Some(reopened);
                } else {
                    store = Some(reopen(&dir, &disk));
                }
                model.poisoned = false;
                let s = store.as_ref().unwrap();
                let got = read_everything(s);
                assert_eq!(got.len(), model.events.len(), "events after the restart");
                for (p, (g, w)) in got.iter().zip(&model.events).enumerate() {
                    assert_same(g, w, p as u64, started_us);
                }
            }
        }
    }
}

fn reopen(dir: &Path, disk: &Arc<SimDisk>) -> Store {
    Store::open_with(dir, options(disk)).unwrap_or_else(|e| panic!("reopen failed: {e}"))
}

/// After a power cut: the store holds every acknowledged event, then whole
/// in-doubt batches in order, perhaps none; the model adopts those.
fn adopt_survivors(model: &mut Model, store: &Store, image: CrashImage, started_us: u64) {
    let got = read_everything(store);
    let acked = model.events.len();
    assert!(
        got.len() >= acked,
        "a power cut lost acknowledged events: {} of {acked} left",
        got.len()
    );
    for (p, (g, w)) in got.iter().zip(&model.events).enumerate() {
        assert_same(g, w, p as u64, started_us);
    }
    let mut rest = &got[acked..];
    let mut survivors = 0;
    for batch in std::mem::take(&mut model.in_doubt) {
        if rest.is_empty() {
            break;
        }
        assert!(rest.len() >= batch.len(), "part of a batch survived");
        for (i, w) in batch.iter().enumerate() {
            assert_same(&rest[i], w, (model.events.len() + i) as u64, started_us);
        }
        rest = &rest[batch.len()..];
        model.events.extend(batch);
        survivors += 1;
        SURVIVED.fetch_add(1, Ordering::Relaxed);
    }
    assert!(rest.is_empty(), "events nobody appended appeared: {rest:?}");
    if image.writes == Fate::DurableOnly {
        assert_eq!(
            survivors, 0,
            "an unsynced append survived with nothing unsynced kept"
        );
    }
}

#[test]
fn the_store_agrees_with_a_plain_model() {
    let seed = common::seed("model");
    let cases = common::env_count("ANNALS_MODEL_CASES", 256) as u32;
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/model.proptest-regressions",
        ))),
        ..Config::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..60))| {
        run(&ops);
    });
    eprintln!(
        "{cases} cases: {} power cuts that failed an operation, {} appends in doubt, {} of them survived",
        CUTS.load(Ordering::Relaxed),
        IN_DOUBT.load(Ordering::Relaxed),
        SURVIVED.load(Ordering::Relaxed)
    );
}

/// The case the model found first, kept as a plain test: an empty append
/// between two appends must leave a store that opens.
#[test]
fn an_empty_append_between_two_appends_leaves_a_store_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let event = || EventData::new("T", b"x".to_vec());
    store.append("s", ExpectedVersion::Any, &[event()]).unwrap();
    let empty = store
        .append("s", ExpectedVersion::StreamExists, &[])
        .unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.first_position(), 1);
    store
        .append("s", ExpectedVersion::Exact(0), &[event()])
        .unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("reopen failed: {e}"));
    assert_eq!(store.global_position(), 2);
    assert_eq!(store.read_stream("s", 0, 10).unwrap().len(), 2);
}
