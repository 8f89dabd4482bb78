//! Guards exact idempotent appends (issue 11): a client that retries an
//! append it got no answer for must never write its events twice. Before
//! event ids were checked, the same `with_id` batch appended twice landed at
//! positions 21 and 22. Every rule of `Store::append`'s id semantics is
//! tried here for each `ExpectedVersion`, in the active segment, in sealed
//! segments (their persisted id tables), across reopens, with the index
//! files removed, damaged or of an older version, and from eight threads
//! at once; a proptest model checks random retries with random id reuse.

mod common;
mod fixture;

use std::path::Path;
use std::sync::{Arc, Barrier};

use annals::{AppendResult, Error, EventData, ExpectedVersion, Options, Store, Uuid};
use fixture::{segments, small};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// An event with id `id` (as a u128), its data naming it.
fn ev(id: u128) -> EventData {
    EventData::new("Happened", format!("event {id}").into_bytes()).with_id(Uuid::from_u128(id))
}

fn batch(ids: &[u128]) -> Vec<EventData> {
    ids.iter().map(|id| ev(*id)).collect()
}

/// The versions and positions of a result, without its flag.
fn place(r: &AppendResult) -> (std::ops::Range<u64>, std::ops::Range<u64>) {
    (r.versions.clone(), r.positions.clone())
}

/// Asserts that `store` holds every event once: no id twice in the log.
fn assert_ids_unique(store: &Store) {
    let all = store.read_all(0, usize::MAX).unwrap();
    let mut ids: Vec<Uuid> = all.iter().map(|e| e.id).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "an id is stored twice");
}

fn assert_duplicate(
    got: Result<AppendResult, Error>,
    id: u128,
    stream: &str,
    position: Option<u64>,
) {
    match got {
        Err(Error::DuplicateEventId {
            id: got_id,
            stream: got_stream,
            position: got_position,
        }) => {
            assert_eq!(got_id, Uuid::from_u128(id));
            assert_eq!(got_stream, stream);
            assert_eq!(got_position, position);
        }
        other => {
            panic!("expected DuplicateEventId for {id} in {stream} at {position:?}, got {other:?}")
        }
    }
}

/// The expected version of each kind that admits a first append of a
/// stream that already holds `held` events (0: none) at version `held`.
fn expected_kinds(held: u64) -> Vec<ExpectedVersion> {
    let mut kinds = vec![ExpectedVersion::Any];
    if held == 0 {
        kinds.push(ExpectedVersion::NoStream);
    } else {
        kinds.push(ExpectedVersion::StreamExists);
        kinds.push(ExpectedVersion::Exact(held - 1));
    }
    kinds
}

#[test]
fn a_full_retry_returns_the_original_result_for_every_expected_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Something else in the log first, so positions and versions differ.
    store
        .append("other", ExpectedVersion::Any, &batch(&[1, 2]))
        .unwrap();
    let mut next_id = 100u128;
    for (k, held) in [0u64, 2].into_iter().enumerate() {
        for expected in expected_kinds(held) {
            let stream = format!("s-{k}-{expected}");
            if held > 0 {
                let ids: Vec<u128> = (0..held as u128).map(|i| next_id + i).collect();
                next_id += held as u128;
                store
                    .append(&stream, ExpectedVersion::NoStream, &batch(&ids))
                    .unwrap();
            }
            let ids: Vec<u128> = (next_id..next_id + 3).collect();
            next_id += 3;
            let original = store.append(&stream, expected, &batch(&ids)).unwrap();
            assert!(!original.deduplicated);
            let end = store.global_position();
            let retried = store.append(&stream, expected, &batch(&ids)).unwrap();
            assert!(retried.deduplicated, "{expected}: retry not deduplicated");
            assert_eq!(place(&retried), place(&original), "{expected}");
            assert_eq!(retried.len(), 3);
            assert_eq!(store.global_position(), end, "{expected}: retry wrote");
            // Still a retry after the stream went on: the ids say where.
            store
                .append(&stream, ExpectedVersion::Any, &batch(&[next_id]))
                .unwrap();
            next_id += 1;
            let later = store.append(&stream, expected, &batch(&ids)).unwrap();
            assert!(later.deduplicated, "{expected}: later retry");
            assert_eq!(place(&later), place(&original));
            assert_eq!(
                store.stream_version(&stream),
                Some(original.versions.end),
                "{expected}"
            );
        }
    }
    assert_ids_unique(&store);
}

#[test]
fn reuse_other_than_a_retry_is_a_duplicate_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Stream "s": versions 0..3 hold ids 10, 11, 12 at positions 1..4.
    store
        .append("x", ExpectedVersion::NoStream, &batch(&[1]))
        .unwrap();
    store
        .append("s", ExpectedVersion::NoStream, &batch(&[10, 11, 12]))
        .unwrap();
    let end = store.global_position();
    let kinds = [
        ExpectedVersion::Any,
        ExpectedVersion::NoStream,
        ExpectedVersion::StreamExists,
        ExpectedVersion::Exact(2),
        ExpectedVersion::Exact(0),
    ];
    for expected in kinds {
        // Part of the batch: stored ids then a fresh one.
        assert_duplicate(
            store.append("s", expected, &batch(&[10, 11, 12, 13])),
            10,
            "s",
            Some(1),
        );
        // A fresh id first: the first stored one is named.
        assert_duplicate(
            store.append("s", expected, &batch(&[14, 11])),
            11,
            "s",
            Some(2),
        );
        // The right ids in another order.
        assert_duplicate(
            store.append("s", expected, &batch(&[11, 10, 12])),
            11,
            "s",
            Some(2),
        );
        // Stored ids appended to another stream.
        assert_duplicate(
            store.append("t", expected, &batch(&[10, 11, 12])),
            10,
            "s",
            Some(1),
        );
        // An id of another stream.
        assert_duplicate(store.append("s", expected, &batch(&[1])), 1, "x", Some(0));
        // A repeat within the batch: the batch's stream, no position.
        assert_duplicate(
            store.append("s", expected, &batch(&[20, 21, 20])),
            20,
            "s",
            None,
        );
        assert_duplicate(
            store.append("fresh", expected, &batch(&[22, 22])),
            22,
            "fresh",
            None,
        );
        assert_eq!(
            store.global_position(),
            end,
            "{expected}: something was written"
        );
        assert_eq!(store.stream_version("t"), None);
        assert_eq!(store.stream_version("fresh"), None);
    }
    // Consecutive in the stream, but not where the expected version says.
    for (ids, expected) in [
        (&[11u128, 12][..], ExpectedVersion::NoStream),
        (&[11, 12], ExpectedVersion::Exact(1)),
        (&[10, 11], ExpectedVersion::Exact(0)),
        (&[10, 11, 12], ExpectedVersion::Exact(5)),
    ] {
        let got = store.append("s", expected, &batch(ids));
        assert_duplicate(got, ids[0], "s", Some(1 + (ids[0] - 10) as u64));
    }
    // A tail of the batch at the right place is a retry of that tail only
    // with `Any`: it is the batch's events, consecutive, in order.
    let tail = store
        .append("s", ExpectedVersion::Any, &batch(&[11, 12]))
        .unwrap();
    assert!(tail.deduplicated);
    assert_eq!(place(&tail), (1..3, 2..4));
    let tail = store
        .append("s", ExpectedVersion::Exact(0), &batch(&[11, 12]))
        .unwrap();
    assert!(tail.deduplicated);
    assert_eq!(store.global_position(), end);
    assert_eq!(store.read_stream("s", 0, 10).unwrap().len(), 3);
    assert_ids_unique(&store);
}

#[test]
fn a_true_conflict_with_fresh_ids_is_still_wrong_expected_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("s", ExpectedVersion::NoStream, &batch(&[1, 2]))
        .unwrap();
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(0),
        ExpectedVersion::Exact(7),
    ] {
        match store.append("s", expected, &batch(&[3])) {
            Err(Error::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, Some(1)),
            other => panic!("{expected}: {other:?}"),
        }
    }
    match store.append("new", ExpectedVersion::StreamExists, &batch(&[3])) {
        Err(Error::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, None),
        other => panic!("{other:?}"),
    }
    // The refused ids were not stored: they append fine.
    let r = store
        .append("s", ExpectedVersion::Exact(1), &batch(&[3]))
        .unwrap();
    assert!(!r.deduplicated);
    assert_eq!(store.global_position(), 3);
    // An empty batch checks as always and is never a duplicate.
    let empty = store.append("s", ExpectedVersion::Exact(2), &[]).unwrap();
    assert!(empty.is_empty() && !empty.deduplicated);
    assert!(matches!(
        store.append("s", ExpectedVersion::NoStream, &[]),
        Err(Error::WrongExpectedVersion { .. })
    ));
}

#[test]
fn generated_ids_take_part_and_find_event_finds_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let plain = [
        EventData::new("A", b"1".to_vec()),
        EventData::new("B", b"2".to_vec()),
    ];
    store
        .append("g", ExpectedVersion::NoStream, &plain)
        .unwrap();
    let stored = store.read_stream("g", 0, 10).unwrap();
    for e in &stored {
        let found = store.find_event(e.id).unwrap().expect("found by id");
        assert_eq!(&found, e);
    }
    // Appending a read event again, by its generated id: a retry.
    let again: Vec<EventData> = stored
        .iter()
        .map(|e| EventData::new(&*e.event_type, e.data.to_vec()).with_id(e.id))
        .collect();
    let r = store
        .append("g", ExpectedVersion::NoStream, &again)
        .unwrap();
    assert!(r.deduplicated);
    assert_eq!(place(&r), (0..2, 0..2));
    // Elsewhere: a duplicate.
    let got = store.append("h", ExpectedVersion::Any, &again[1..]);
    assert_duplicate(got, stored[1].id.as_u128(), "g", Some(1));
    assert_eq!(store.find_event(Uuid::from_u128(7)).unwrap(), None);
    assert_eq!(store.global_position(), 2);
}

/// Appends `batches` batches of 1 to 4 events to 5 streams with ids
/// `1000 * b + i`; returns each batch's stream, ids and result.
fn fill(store: &Store, batches: u64) -> Vec<(String, Vec<u128>, AppendResult)> {
    let mut out = Vec::new();
    for b in 0..batches {
        let stream = format!("stream-{}", b % 5);
        let ids: Vec<u128> = (0..1 + b % 4).map(|i| u128::from(1000 * b + i)).collect();
        let expected = match store.stream_version(&stream) {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(v),
        };
        let r = store.append(&stream, expected, &batch(&ids)).unwrap();
        out.push((stream, ids, r));
    }
    out
}

/// Retries every batch of `written` under its original expected version and
/// checks each comes back deduplicated with its original result, that
/// `find_event` finds every id, and that nothing was written.
fn retry_all(store: &Store, written: &[(String, Vec<u128>, AppendResult)]) {
    let end = store.global_position();
    for (stream, ids, original) in written {
        let expected = match original.versions.start {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v - 1),
        };
        let r = store.append(stream, expected, &batch(ids)).unwrap();
        assert!(r.deduplicated, "{stream} {ids:?} written again");
        assert_eq!(place(&r), place(original));
        for (i, id) in ids.iter().enumerate() {
            let e = store
                .find_event(Uuid::from_u128(*id))
                .unwrap()
                .expect("stored id found");
            assert_eq!(e.position, original.positions.start + i as u64);
            assert_eq!(&*e.stream_id, stream.as_str());
        }
        // One stored id in a new batch: a duplicate, found in its segment.
        let got = store.append("elsewhere", ExpectedVersion::Any, &batch(&ids[..1]));
        assert_duplicate(got, ids[0], stream, Some(original.positions.start));
    }
    assert_eq!(store.global_position(), end);
    assert_eq!(store.find_event(Uuid::from_u128(999)).unwrap(), None);
}

fn index_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    v.sort();
    v
}

fn options() -> Options {
    small(4096).prepare_segments_ahead(false)
}

#[test]
fn retries_are_deduplicated_across_rotation_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options()).unwrap();
    let written = fill(&store, 120);
    assert!(segments(dir.path()).len() > 5, "no rotation");
    // Sealed segments' ids come from their tables (in memory, then the
    // written files), the active one's from memory.
    retry_all(&store, &written);
    store.close().unwrap();
    assert!(index_files(dir.path()).len() > 5);
    let store = Store::open_with(dir.path(), options()).unwrap();
    retry_all(&store, &written);
    // Appends go on after the retries; a crash-free drop, then again.
    store
        .append("after", ExpectedVersion::NoStream, &batch(&[1 << 64]))
        .unwrap();
    drop(store);
    let store = Store::open_with(dir.path(), options()).unwrap();
    retry_all(&store, &written);
    assert_ids_unique(&store);
}

#[test]
fn removed_damaged_or_old_index_files_are_rebuilt_with_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options()).unwrap();
    let written = fill(&store, 80);
    store.close().unwrap();
    let files = index_files(dir.path());
    assert!(files.len() > 3);

    // Removed: the open scans and writes them again.
    for f in &files {
        std::fs::remove_file(f).unwrap();
    }
    let store = Store::open_with(dir.path(), options()).unwrap();
    retry_all(&store, &written);
    store.close().unwrap();
    assert_eq!(index_files(dir.path()), files, "indexes written again");

    // Damaged in the id table (the file's last bytes) or the id filter:
    // the body fails its check on first use and is rebuilt from the
    // segment.
    for (k, f) in files.iter().enumerate() {
        let mut bytes = std::fs::read(f).unwrap();
        let at = if k % 2 == 0 {
            bytes.len() - 3
        } else {
            bytes.len() / 2
        };
        bytes[at] ^= 0x41;
        std::fs::write(f, &bytes).unwrap();
    }
    let store = Store::open_with(dir.path(), options()).unwrap();
    retry_all(&store, &written);
    store.close().unwrap();

    // An index of an earlier format version (1), with sound checksums:
    // refused and rebuilt, never read as this version. The open reports it
    // when it reads it; a sealed segment the catalog lets the open defer
    // has it read (refused, rebuilt, with a warning) at first use instead,
    // and the clean close writes it again in this version.
    let f = &files[0];
    let mut bytes = std::fs::read(f).unwrap();
    bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
    let crc = crc32(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(f, &bytes).unwrap();
    let store = Store::open_with(dir.path(), options()).unwrap();
    let reported = !store.recovery_report().unusable_indexes.is_empty();
    retry_all(&store, &written);
    assert_ids_unique(&store);
    store.close().unwrap();
    let version = u16::from_le_bytes(std::fs::read(f).unwrap()[8..10].try_into().unwrap());
    assert!(
        version == 3 && (reported || index_files(dir.path()) == files),
        "the old index was neither reported nor rewritten (version {version})"
    );
}

/// CRC-32 (IEEE), as the index header uses, without a dependency.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn eight_threads_retrying_the_same_batches_write_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_with(dir.path(), options()).unwrap());
    const THREADS: usize = 8;
    const BATCHES: u128 = 60;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let mut results = Vec::new();
                for b in 0..BATCHES {
                    let stream = format!("s{}", b % 3);
                    let ids: Vec<u128> = (0..1 + b % 3).map(|i| 100 * b + i).collect();
                    // Half the threads retry under `Any`, half under the
                    // batch's own place as the first writer saw it.
                    let expected = if t % 2 == 0 {
                        ExpectedVersion::Any
                    } else {
                        ExpectedVersion::StreamExists
                    };
                    let r = store.append(&stream, expected, &batch(&ids));
                    results.push((b, r));
                }
                results
            })
        })
        .collect();
    let mut writes = vec![0usize; BATCHES as usize];
    let mut places: Vec<Option<(std::ops::Range<u64>, std::ops::Range<u64>)>> =
        vec![None; BATCHES as usize];
    for h in handles {
        for (b, r) in h.join().unwrap() {
            match r {
                Ok(r) => {
                    if !r.deduplicated {
                        writes[b as usize] += 1;
                    }
                    let p = place(&r);
                    let known = places[b as usize].get_or_insert_with(|| p.clone());
                    assert_eq!(*known, p, "batch {b}: two answers");
                }
                // StreamExists before the stream's first batch landed.
                Err(Error::WrongExpectedVersion { actual: None, .. }) => {}
                Err(e) => panic!("batch {b}: {e}"),
            }
        }
    }
    let total: u64 = (0..BATCHES).map(|b| 1 + (b % 3) as u64).sum();
    assert!(
        writes.iter().all(|w| *w == 1),
        "writes per batch: {writes:?}"
    );
    assert_eq!(store.global_position(), total);
    assert_ids_unique(&store);
}

// A model of retries with random id reuse: ids come from a pool of 24, so
// batches repeat whole, in part, elsewhere and within themselves. The model
// applies the rules of `Store::append` to a plain list of events.

#[derive(Clone, Debug)]
enum Op {
    Append {
        stream: usize,
        expect: u8,
        ids: Vec<u8>,
    },
    /// Appends again a batch appended before (the `n`th, modulo), with the
    /// same stream and expected version: a client's retry.
    Retry(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..3, 0u8..4, prop::collection::vec(0u8..24, 0..4))
            .prop_map(|(stream, expect, ids)| Op::Append { stream, expect, ids }),
        4 => any::<usize>().prop_map(Op::Retry),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Written(AppendResult),
    Deduplicated(AppendResult),
    Duplicate(u128, String, Option<u64>),
    Conflict,
}

/// One event of the model's log: stream, version, id.
type MEvent = (String, u64, u128);

/// The model's log, by position.
#[derive(Default)]
struct Model {
    log: Vec<MEvent>,
}

impl Model {
    fn version(&self, stream: &str) -> Option<u64> {
        self.log
            .iter()
            .filter(|(s, _, _)| s == stream)
            .map(|(_, v, _)| *v)
            .max()
    }

    fn append(&mut self, stream: &str, expected: ExpectedVersion, ids: &[u128]) -> Outcome {
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Outcome::Duplicate(*id, stream.to_owned(), None);
            }
        }
        let found: Vec<Option<(usize, &MEvent)>> = ids
            .iter()
            .map(|id| self.log.iter().enumerate().find(|(_, e)| e.2 == *id))
            .collect();
        if let Some(Some((p0, first))) = found.first()
            && found.iter().all(Option::is_some)
        {
            let v0 = first.1;
            let consecutive = found
                .iter()
                .enumerate()
                .all(|(i, f)| f.is_some_and(|(_, e)| e.0 == stream && e.1 == v0 + i as u64));
            let right = match expected {
                ExpectedVersion::Exact(n) => v0 == n + 1,
                ExpectedVersion::NoStream => v0 == 0,
                _ => true,
            };
            if consecutive && right {
                let last = found.last().unwrap().unwrap().0;
                return Outcome::Deduplicated(AppendResult {
                    versions: v0..v0 + ids.len() as u64,
                    positions: *p0 as u64..last as u64 + 1,
                    deduplicated: true,
                });
            }
        }
        if let Some((i, Some((p, e)))) = found.iter().enumerate().find(|(_, f)| f.is_some()) {
            return Outcome::Duplicate(ids[i], e.0.clone(), Some(*p as u64));
        }
        let actual = self.version(stream);
        if !expected.admits(actual) {
            return Outcome::Conflict;
        }
        let v0 = actual.map_or(0, |v| v + 1);
        let p0 = self.log.len() as u64;
        for (i, id) in ids.iter().enumerate() {
            self.log.push((stream.to_owned(), v0 + i as u64, *id));
        }
        Outcome::Written(AppendResult {
            versions: v0..v0 + ids.len() as u64,
            positions: p0..p0 + ids.len() as u64,
            deduplicated: false,
        })
    }
}

fn outcome(r: Result<AppendResult, Error>) -> Outcome {
    match r {
        Ok(r) if r.deduplicated => Outcome::Deduplicated(r),
        Ok(r) => Outcome::Written(r),
        Err(Error::DuplicateEventId {
            id,
            stream,
            position,
        }) => Outcome::Duplicate(id.as_u128(), stream, position),
        Err(Error::WrongExpectedVersion { .. }) => Outcome::Conflict,
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_with(dir.path(), options()).unwrap();
    let mut model = Model::default();
    let mut appended: Vec<(String, ExpectedVersion, Vec<u128>)> = Vec::new();
    for op in ops {
        let (stream, expected, ids) = match op {
            Op::Reopen => {
                drop(store);
                store = Store::open_with(dir.path(), options()).unwrap();
                continue;
            }
            Op::Retry(n) if !appended.is_empty() => appended[n % appended.len()].clone(),
            Op::Retry(_) => continue,
            Op::Append {
                stream,
                expect,
                ids,
            } => {
                let stream = format!("m{stream}");
                let expected = match (expect, model.version(&stream)) {
                    (0, _) => ExpectedVersion::Any,
                    (1, _) => ExpectedVersion::NoStream,
                    (2, _) => ExpectedVersion::StreamExists,
                    (_, v) => ExpectedVersion::Exact(v.unwrap_or(0)),
                };
                // Ids in their thousands: events big enough to rotate.
                let ids: Vec<u128> = ids.iter().map(|i| u128::from(*i) + 5000).collect();
                (stream, expected, ids)
            }
        };
        let want = model.append(&stream, expected, &ids);
        let events: Vec<EventData> = ids
            .iter()
            .map(|id| EventData::new("M", vec![*id as u8; 300]).with_id(Uuid::from_u128(*id)))
            .collect();
        let got = outcome(store.append(&stream, expected, &events));
        assert_eq!(got, want, "{stream} {expected} {ids:?}");
        appended.push((stream, expected, ids));
    }
    assert_eq!(store.global_position(), model.log.len() as u64);
    for (p, e) in store.read_all(0, usize::MAX).unwrap().iter().enumerate() {
        let (stream, version, id) = &model.log[p];
        assert_eq!(
            (&*e.stream_id, e.version, e.id.as_u128()),
            (stream.as_str(), *version, *id)
        );
    }
}

#[test]
fn random_retries_with_random_id_reuse_agree_with_a_model() {
    let seed = common::seed("idempotency");
    let cases = common::env_count("ANNALS_IDEMPOTENCY_CASES", 48) as u32;
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..50))| {
        run(&ops);
    });
}
