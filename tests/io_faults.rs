//! Guards the poisoning promise and the typed handling of I/O errors: when
//! any single file operation fails — a write (perhaps half done), an fsync,
//! a create, a rename, a directory sync — the call gets a typed error and
//! never a panic; after a failed write or fsync the store answers every
//! later append with `Error::Poisoned` and never calls fsync again, reads
//! keep working, and a reopen finds a prefix of the appends that contains
//! every acknowledged one.

mod common;
mod fixture;

use std::path::Path;
use std::sync::{Arc, Barrier};

use annals::format::SEGMENT_HEADER_LEN;
use annals::{Error, Options, Store};
use common::sim_disk::{OpKind, SimDisk};
use common::{Rng, Workload, mix, seed};

const SEGMENT_SIZE: u64 = 4096;
const BATCHES: usize = 60;
/// Appends tried after the first failure, each of which must be refused.
const AFTER: usize = 4;
/// Appends before the crash that the repair test's open must clean up.
const REPAIR_BATCHES: usize = 8;

fn workload(seed: u64) -> Workload {
    Workload {
        seed,
        streams: 4,
        max_data: 1000,
        max_batch: 4,
    }
}

/// The sweep options ([`common::sweep_options`]) at this file's segment size.
fn options(disk: &Arc<SimDisk>) -> Options {
    common::sweep_options(disk, SEGMENT_SIZE)
}

/// The OS error an injected failure of `kind` carries.
fn injected_errno(kind: OpKind) -> i32 {
    match kind {
        OpKind::Write | OpKind::Create => libc::ENOSPC,
        _ => libc::EIO,
    }
}

/// Asserts that `e` is the typed I/O error the disk injected.
fn assert_injected(e: &Error, kind: OpKind) {
    match e {
        Error::Io { source, .. } => assert_eq!(
            source.raw_os_error(),
            Some(injected_errno(kind)),
            "the injected {kind:?} error must come through: {e}"
        ),
        other => panic!("a failed {kind:?} must give Error::Io, not {other:?}"),
    }
}

/// Opens `dir` with real I/O and checks that it holds a prefix of `plan`
/// of `lo..=hi` appends. Returns how many.
fn check_reopen(dir: &Path, w: &Workload, plan: &[(String, u64)], lo: usize, hi: usize) -> usize {
    let store = Store::open_with(dir, Options::default().segment_size(SEGMENT_SIZE))
        .unwrap_or_else(|e| panic!("reopen after an I/O error failed: {e}"));
    let found = w.verify(&store);
    let held = found.batches.len();
    let got: Vec<(String, u64)> = found
        .batches
        .iter()
        .map(|b| (b.stream.clone(), b.first_version))
        .collect();
    assert_eq!(got[..], plan[..held], "reopened appends are not a prefix");
    assert!(
        (lo..=hi).contains(&held),
        "reopen holds {held} appends, {lo}..={hi} expected"
    );
    held
}

/// What one faulty run saw.
struct Outcome {
    acked: usize,
    /// Whether an append failed (and so may or may not have reached disk).
    in_doubt: bool,
}

/// Runs the workload on a disk that fails one operation, checking what
/// the store does after the failure.
fn faulty_run(dir: &Path, disk: &Arc<SimDisk>, w: &Workload, plan: &[(String, u64)]) -> Outcome {
    let store = match Store::open_with(dir, options(disk)) {
        Ok(store) => store,
        Err(e) => {
            let (_, kind) = disk.failed().expect("open failed but nothing was injected");
            assert_injected(&e, kind);
            return Outcome {
                acked: 0,
                in_doubt: false,
            };
        }
    };
    let mut acked = 0;
    let mut failure: Option<(OpKind, u64)> = None;
    let mut in_doubt = false;
    let mut refused_after = 0;
    for i in 0..plan.len() {
        // Once an append has failed, the next call repeats the first batch
        // not acknowledged: what the store holds is the acknowledged ones.
        let (stream, v) = if failure.is_some() {
            &plan[acked.min(plan.len() - 1)]
        } else {
            &plan[i]
        };
        let result = store.append(stream, Workload::expected(*v), &w.batch(stream, *v));
        match (result, failure) {
            (Ok(_), None) => acked += 1,
            (Err(e), None) => {
                let (_, kind) = disk
                    .failed()
                    .unwrap_or_else(|| panic!("append failed with nothing injected: {e}"));
                assert_injected(&e, kind);
                in_doubt = true;
                failure = Some((kind, disk.sync_calls()));
                // Reads keep working and show exactly what was acknowledged.
                assert_eq!(
                    w.verify(&store).batches.len(),
                    acked,
                    "reads after a failure"
                );
            }
            (result, Some((kind, _))) => {
                let poisons = matches!(kind, OpKind::Write | OpKind::SyncData | OpKind::SyncDir);
                match result {
                    Err(Error::Poisoned) => {}
                    Ok(_) if !poisons => {
                        // A failed create or rename need not poison; what
                        // is acknowledged must then be there on reopen.
                        acked += 1;
                        in_doubt = false;
                    }
                    other => panic!("after a failed {kind:?}, an append gave {other:?}"),
                }
                refused_after += 1;
                if refused_after == AFTER {
                    break;
                }
            }
        }
    }
    if let Some((kind, syncs_at_failure)) = failure
        && matches!(kind, OpKind::Write | OpKind::SyncData | OpKind::SyncDir)
    {
        assert!(matches!(store.sync(), Err(Error::Poisoned)));
        assert!(matches!(store.close(), Err(Error::Poisoned)));
        assert_eq!(
            disk.sync_calls(),
            syncs_at_failure,
            "fsync was called again after a failed {kind:?}"
        );
    }
    Outcome { acked, in_doubt }
}

#[test]
fn a_failure_of_any_single_operation_is_typed_and_loses_nothing_acknowledged() {
    let seed = seed("io_faults");
    let w = workload(seed);
    let plan = w.plan(BATCHES);
    let dry = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dry.path());
    let outcome = faulty_run(dry.path(), &disk, &w, &plan);
    assert_eq!(outcome.acked, BATCHES);
    let total = disk.ops();
    let segments = common::file_names(dry.path())
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .count();
    assert!(
        segments >= 3,
        "the workload must rotate: {segments} segments"
    );

    let mut rng = Rng::new(mix(seed, 1));
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    let mut kinds_at = std::collections::HashMap::<u64, OpKind>::new();
    // Each operation fails once cleanly, and, if it is a write, once more
    // after landing a random part of its buffer (as a full disk does).
    let runs = (1..=total).flat_map(|n| [(n, 0), (n, rng.between(1, 5000) as usize)]);
    for (n, partial) in runs {
        if partial > 0 && kinds_at.get(&n) != Some(&OpKind::Write) {
            continue;
        }
        let live = tempfile::tempdir().unwrap();
        let disk = SimDisk::attach(live.path());
        disk.fail_at(n, partial);
        let result = std::panic::catch_unwind(|| {
            let outcome = faulty_run(live.path(), &disk, &w, &plan);
            let (_, kind) = disk.failed().expect("the failure was injected");
            let hi = outcome.acked + usize::from(outcome.in_doubt);
            check_reopen(live.path(), &w, &plan, outcome.acked, hi);
            kind
        });
        match result {
            Ok(kind) => {
                kinds_at.insert(n, kind);
                *kinds.entry(format!("{kind:?}")).or_default() += 1;
            }
            Err(panic) => {
                eprintln!("failing op {n} of {total}; operations:\n{}", disk.trace());
                std::panic::resume_unwind(panic);
            }
        }
    }
    eprintln!(
        "{total} operations swept, failures injected by kind (torn writes counted twice): {kinds:?}"
    );
    for kind in ["Create", "Write", "SyncData", "Rename", "SyncDir"] {
        assert!(kinds.contains_key(kind), "the sweep never failed a {kind}");
    }
}

/// A store on a simulated disk holding three acknowledged appends of a
/// ten-append plan, whose fourth append failed at its operation `op` (1: the
/// frame's write, 2: its sync), with `partial` bytes of a failed write
/// landing first. Returns everything the caller checks, and the error.
#[allow(clippy::type_complexity)]
fn fail_fourth_append(
    test: &str,
    op: u64,
    partial: usize,
) -> (
    tempfile::TempDir,
    Arc<SimDisk>,
    Store,
    Workload,
    Vec<(String, u64)>,
    Error,
) {
    let w = workload(seed(test));
    let plan = w.plan(10);
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dir.path());
    let store = Store::open_with(dir.path(), options(&disk)).unwrap();
    for (stream, v) in &plan[..3] {
        store
            .append(stream, Workload::expected(*v), &w.batch(stream, *v))
            .unwrap();
    }
    disk.fail_at(disk.ops() + op, partial);
    let (stream, v) = &plan[3];
    let err = store
        .append(stream, Workload::expected(*v), &w.batch(stream, *v))
        .unwrap_err();
    (dir, disk, store, w, plan, err)
}

#[test]
fn a_failed_fsync_poisons_the_store_and_fsync_is_never_retried() {
    // The fourth append writes its frame (one operation) and then syncs it:
    // fail the sync.
    let (dir, disk, store, w, plan, err) = fail_fourth_append("io_faults_fsync", 2, 0);
    assert_eq!(disk.failed().map(|f| f.1), Some(OpKind::SyncData));
    assert_injected(&err, OpKind::SyncData);
    let syncs = disk.sync_calls();

    // Every later append, valid or not for its expected version, is refused
    // as Poisoned, and nothing more reaches the disk.
    let ops = disk.ops();
    for (stream, v) in &plan[3..] {
        let r = store.append(stream, Workload::expected(*v), &w.batch(stream, *v));
        assert!(matches!(r, Err(Error::Poisoned)), "{r:?}");
    }
    let r = store.append("other", annals::ExpectedVersion::Any, &w.batch("other", 0));
    assert!(matches!(r, Err(Error::Poisoned)), "{r:?}");
    assert!(matches!(store.sync(), Err(Error::Poisoned)));
    assert_eq!(disk.ops(), ops, "a poisoned store touched the disk");
    // Reads keep working and do not show the failed append.
    assert_eq!(w.verify(&store).batches.len(), 3);
    assert!(matches!(store.close(), Err(Error::Poisoned)));
    assert_eq!(
        disk.sync_calls(),
        syncs,
        "fsync was retried after it failed"
    );

    // The frame did reach the file (only its sync failed), so a reopen may
    // find it; it must find the three acknowledged appends.
    check_reopen(dir.path(), &w, &plan, 3, 4);
}

#[test]
fn a_failed_write_poisons_the_store_and_its_partial_frame_never_shows() {
    // Half of the fourth append's frame lands, then the disk is full.
    let (dir, disk, store, w, plan, err) = fail_fourth_append("io_faults_write", 1, 40);
    assert_eq!(disk.failed().map(|f| f.1), Some(OpKind::Write));
    assert_injected(&err, OpKind::Write);
    let syncs = disk.sync_calls();
    for (stream, v) in &plan[3..] {
        let r = store.append(stream, Workload::expected(*v), &w.batch(stream, *v));
        assert!(matches!(r, Err(Error::Poisoned)), "{r:?}");
    }
    assert_eq!(w.verify(&store).batches.len(), 3);
    assert!(matches!(store.close(), Err(Error::Poisoned)));
    assert_eq!(
        disk.sync_calls(),
        syncs,
        "fsync was called after a failed write"
    );
    // The torn frame is dropped at reopen, exactly.
    check_reopen(dir.path(), &w, &plan, 3, 3);
}

#[test]
fn concurrent_appenders_sharing_a_failed_commit_all_see_the_failure() {
    let seed = seed("io_faults_concurrent");
    let w = Workload {
        seed,
        streams: 8,
        max_data: 600,
        max_batch: 3,
    };
    const THREADS: usize = 4;
    const PER_THREAD: u64 = 25;
    let mut rng = Rng::new(mix(seed, 7));
    for trial in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let disk = SimDisk::attach(dir.path());
        // Segments prepared ahead (the default) join the mix of operations.
        let options = Options::default()
            .segment_size(SEGMENT_SIZE)
            .file_io(disk.clone());
        let store = Arc::new(Store::open_with(dir.path(), options).unwrap());
        let n = disk.ops() + rng.between(1, 120);
        disk.fail_at(n, rng.below(300) as usize);
        let start = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, start) = (Arc::clone(&store), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    // Each thread owns its streams, so it knows their versions.
                    let mut acked = Vec::new();
                    let mut next = [0u64; 2];
                    let mut failed = false;
                    for i in 0..PER_THREAD {
                        let k = (i % 2) as usize;
                        let stream = w.stream_name(t + THREADS * k);
                        let v = next[k];
                        let r = store.append(&stream, Workload::expected(v), &w.batch(&stream, v));
                        match r {
                            Ok(r) => {
                                assert!(
                                    !failed,
                                    "thread {t}: an append succeeded after one failed"
                                );
                                next[k] += r.len() as u64;
                                acked.push((stream, v));
                            }
                            Err(Error::Io { .. } | Error::Poisoned) => failed = true,
                            Err(e) => panic!("thread {t}: unexpected error {e:?}"),
                        }
                    }
                    acked
                })
            })
            .collect();
        let acked: Vec<(String, u64)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("an appender panicked"))
            .collect();
        let failed = disk.failed();
        drop(store);
        let store = Store::open_with(dir.path(), Options::default().segment_size(SEGMENT_SIZE))
            .unwrap_or_else(|e| panic!("trial {trial}: reopen failed: {e}"));
        let found = w.verify(&store);
        for (stream, v) in &acked {
            assert!(
                found
                    .batches
                    .iter()
                    .any(|b| &b.stream == stream && b.first_version == *v),
                "trial {trial}: acknowledged {stream}@{v} lost after failure {failed:?}"
            );
        }
        assert!(found.batches.len() <= acked.len() + THREADS);
    }
}

#[test]
fn a_failed_background_preparation_costs_only_time() {
    // prepare.rs: "A failed or unfinished preparation costs only time: the
    // writer then creates the segment itself."
    let seed = seed("io_faults_preparation");
    let w = workload(seed);
    let plan = w.plan(BATCHES);
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dir.path());
    let options = Options::default()
        .segment_size(SEGMENT_SIZE)
        .file_io(disk.clone());
    let store = Store::open_with(dir.path(), options).unwrap();
    // Once segment 0 is half full, the writer starts preparing segment 1
    // in the background; its first write (the zero-fill) fails.
    disk.fail_first_write_to("00000000000000000001.seg.tmp", 100);
    // Append well past the first rotation: every append must succeed.
    for (i, (stream, v)) in plan.iter().enumerate() {
        if let Err(e) = store.append(stream, Workload::expected(*v), &w.batch(stream, *v)) {
            panic!(
                "append {i} failed after a failed background preparation: {e}\noperations:\n{}",
                disk.trace()
            );
        }
    }
    assert!(
        store.stats().segments > 2,
        "the appends must pass the first rotation"
    );
    assert_eq!(
        disk.failed().map(|f| f.1),
        Some(OpKind::Write),
        "the preparation's write never failed:\n{}",
        disk.trace()
    );
    drop(store);
    check_reopen(dir.path(), &w, &plan, BATCHES, BATCHES);
}

#[test]
fn a_failure_while_open_repairs_a_crash_is_typed_and_changes_nothing_acknowledged() {
    let seed = seed("io_faults_repair");
    let w = workload(seed);
    let mut plan = w.plan(2 * REPAIR_BATCHES);
    // A store with a torn tail and a half-prepared segment, as a crash
    // leaves them. The garbage goes where the next frame would: after the
    // last frame of the last segment, and no further than that segment's
    // end, since the engine rightly refuses a segment file longer than its
    // header says (some seeds fill a segment to within 100 bytes of its end,
    // or rotate into a second one). A segment filled to its last byte has no
    // room for a tail, so then the workload goes on until one has.
    let template = tempfile::tempdir().unwrap();
    {
        let store = Store::open_with(
            template.path(),
            Options::default()
                .segment_size(SEGMENT_SIZE)
                .prepare_segments_ahead(false),
        )
        .unwrap();
        let mut appended = 0;
        let (last, end) = loop {
            let (stream, v) = &plan[appended];
            store
                .append(stream, Workload::expected(*v), &w.batch(stream, *v))
                .unwrap();
            appended += 1;
            let last = fixture::segments(template.path()).pop().unwrap();
            let end = fixture::frames(&std::fs::read(&last).unwrap())
                .last()
                .map_or(SEGMENT_HEADER_LEN, |f| f.end) as u64;
            if appended >= REPAIR_BATCHES && end < SEGMENT_SIZE {
                break (last, end);
            }
        };
        plan.truncate(appended);
        store.close().unwrap();
        // A crash leaves no clean close's index of the active segment.
        std::fs::remove_file(last.with_extension("idx")).unwrap();
        let garbage = (SEGMENT_SIZE - end).min(100) as usize;
        let file = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &vec![0xA5; garbage], end).unwrap();
        drop(file);
        assert_eq!(
            std::fs::metadata(&last).unwrap().len(),
            SEGMENT_SIZE,
            "the garbage must stay inside the segment"
        );
        let number: u64 = last
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .unwrap();
        std::fs::write(
            template.path().join(format!("{:020}.seg.tmp", number + 1)),
            [7u8; 1000],
        )
        .unwrap();
    }
    let copy = |to: &Path| {
        for name in common::file_names(template.path()) {
            std::fs::copy(template.path().join(&name), to.join(&name)).unwrap();
        }
    };
    let dry = tempfile::tempdir().unwrap();
    copy(dry.path());
    let disk = SimDisk::attach(dry.path());
    let opened = Store::open_with(dry.path(), options(&disk)).unwrap();
    // The open's operations only, not those of the clean close after it.
    let total = disk.ops();
    drop(opened);
    assert!(
        total >= 4,
        "the repair must remove, sync, zero and sync: {}",
        disk.trace()
    );
    for n in 1..=total {
        let dir = tempfile::tempdir().unwrap();
        copy(dir.path());
        let disk = SimDisk::attach(dir.path());
        disk.fail_at(n, 10);
        match Store::open_with(dir.path(), options(&disk)) {
            Err(e) => assert_injected(&e, disk.failed().unwrap().1),
            Ok(_) => panic!("open succeeded though repair operation {n} failed"),
        }
        check_reopen(dir.path(), &w, &plan, plan.len(), plan.len());
    }
}
