//! Guards the durability and atomicity promises against power loss: for a
//! power cut after every single file operation of a workload that rotates
//! through several segments — keeping only what was synced, or also
//! unsynced writes (whole, torn, or garbage) and unsynced directory
//! operations — `open` succeeds and holds a prefix of the appends that
//! contains every acknowledged one, and the store goes on working from
//! there. A second sweep cuts the power again while recovery repairs the
//! first cut's damage.

mod common;

use std::path::Path;
use std::sync::Arc;

use annals::{Error, Options, Store};
use common::sim_disk::{CrashImage, Fate, SimDisk};
use common::{Rng, Workload, mix, seed};

/// Small segments, so that the workload rotates several times.
const SEGMENT_SIZE: u64 = 4096;
/// Appends in the workload.
const BATCHES: usize = 80;
/// The workload closes and reopens the store before this append.
const REOPEN_AT: usize = 40;
/// Appends made after recovery, to show the store goes on from there.
const CONTINUE: usize = 3;

fn workload(seed: u64) -> Workload {
    Workload {
        seed,
        streams: 5,
        max_data: 1000,
        max_batch: 4,
    }
}

/// The sweep options ([`common::sweep_options`]) at this file's segment size.
/// [`power_cut_while_segments_are_prepared_ahead`] covers the background
/// preparation.
fn options(disk: &Arc<SimDisk>) -> Options {
    common::sweep_options(disk, SEGMENT_SIZE)
}

/// As [`options`], but with segments prepared ahead on a background thread
/// (the default), whose operations interleave with the appends'.
fn options_ahead(disk: &Arc<SimDisk>) -> Options {
    options(disk).prepare_segments_ahead(true)
}

/// Runs the workload in `dir` until it ends or an operation fails, and
/// returns how many appends were acknowledged. After a failure, every later
/// append must fail too, and reads must still show exactly the acknowledged
/// appends.
fn run(dir: &Path, disk: &Arc<SimDisk>, w: &Workload, plan: &[(String, u64)]) -> usize {
    run_with(dir, disk, w, plan, options)
}

fn run_with(
    dir: &Path,
    disk: &Arc<SimDisk>,
    w: &Workload,
    plan: &[(String, u64)],
    options: fn(&Arc<SimDisk>) -> Options,
) -> usize {
    let Ok(mut store) = Store::open_with(dir, options(disk)) else {
        return 0;
    };
    for (i, (stream, v)) in plan.iter().enumerate() {
        if i == REOPEN_AT {
            drop(store);
            store = match Store::open_with(dir, options(disk)) {
                Ok(store) => store,
                Err(_) => return i,
            };
        }
        let batch = w.batch(stream, *v);
        match store.append(stream, Workload::expected(*v), &batch) {
            Ok(r) => assert_eq!(r.versions, *v..*v + batch.len() as u64),
            Err(e) => {
                assert!(
                    matches!(e, Error::Io { .. } | Error::Poisoned),
                    "a failed disk must give an I/O error, not {e:?}"
                );
                // Reads keep working and show what was acknowledged.
                let seen = w.verify(&store);
                assert_eq!(seen.batches.len(), i, "reads after the failure");
                if let Some((stream, v)) = plan.get(i + 1) {
                    let next = store.append(stream, Workload::expected(*v), &w.batch(stream, *v));
                    assert!(
                        next.is_err(),
                        "an append after a failed one succeeded on a dead disk"
                    );
                }
                return i;
            }
        }
    }
    // The clean close's operations (the active segment's index) follow.
    APPENDS_DONE_AT.with(|at| at.set(disk.ops()));
    plan.len()
}

thread_local! {
    /// How many operations the last [`run_with`] had made when its last
    /// append was acknowledged, before the clean close.
    static APPENDS_DONE_AT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Opens the store in `dir` with real I/O and checks that it holds a prefix
/// of `plan` of `lo..=hi` appends; then appends a few more, reopens and
/// checks again. Returns how many appends it held at first.
fn check_recovered(
    dir: &Path,
    w: &Workload,
    plan: &[(String, u64)],
    lo: usize,
    hi: usize,
) -> usize {
    let real = Options::default().segment_size(SEGMENT_SIZE);
    let store = Store::open_with(dir, real.clone())
        .unwrap_or_else(|e| panic!("open after a power cut failed: {e}"));
    let found = w.verify(&store);
    let held = found.batches.len();
    let got: Vec<(String, u64)> = found
        .batches
        .iter()
        .map(|b| (b.stream.clone(), b.first_version))
        .collect();
    assert_eq!(
        got[..],
        plan[..held.min(plan.len())],
        "recovered appends are not a prefix of the workload"
    );
    assert!(
        (lo..=hi).contains(&held),
        "recovered {held} appends; between {lo} and {hi} expected"
    );
    drop(store);
    // The appends that go on from there use the simulated disk only to
    // skip real fsyncs, which would make the sweep slow; the files are real.
    let disk = SimDisk::attach(dir);
    let store = Store::open_with(dir, options(&disk)).expect("reopen to append");
    let more = &plan[held..(held + CONTINUE).min(plan.len())];
    for (stream, v) in more {
        store
            .append(stream, Workload::expected(*v), &w.batch(stream, *v))
            .unwrap_or_else(|e| panic!("append after recovery failed: {e}"));
    }
    drop(store);
    let store = Store::open_with(dir, real).expect("reopen after appending");
    assert_eq!(w.verify(&store).batches.len(), held + more.len());
    held
}

#[test]
fn power_cut_after_every_operation_keeps_a_prefix_with_every_acknowledged_append() {
    let seed = seed("power_loss");
    let w = workload(seed);
    let plan = w.plan(BATCHES);

    // A dry run counts the operations and shows the workload rotates.
    let dry = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dry.path());
    assert_eq!(run(dry.path(), &disk, &w, &plan), BATCHES);
    let total = disk.ops();
    let appended = APPENDS_DONE_AT.with(|at| at.get());
    assert!(
        appended < total,
        "a clean close writes the active segment's index"
    );
    let segments = common::file_names(dry.path())
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .count();
    assert!(
        segments >= 4,
        "the workload must rotate: {segments} segments"
    );
    assert!(disk.surprises().is_empty(), "{:?}", disk.surprises());
    eprintln!("sweeping {total} operations over {segments} segments");

    let mut rng = Rng::new(mix(seed, 1));
    let mut images_checked = 0;
    for n in 0..=total {
        let live = tempfile::tempdir().unwrap();
        let disk = SimDisk::attach(live.path());
        disk.crash_after(n);
        let acked = run(live.path(), &disk, &w, &plan);
        assert!(disk.surprises().is_empty(), "{:?}", disk.surprises());
        assert_eq!(
            acked == BATCHES,
            n >= appended,
            "crash after op {n} of {total} (appends done at {appended}): {acked} acknowledged"
        );
        for image in common::crash_images(&disk, live.path(), &mut rng) {
            let target = tempfile::tempdir().unwrap();
            disk.materialize(live.path(), target.path(), &image);
            // Without unsynced writes exactly the acknowledged appends come
            // back; with them, perhaps the one in flight too.
            let hi = if image.writes == Fate::DurableOnly {
                acked
            } else {
                acked + 1
            };
            let result = std::panic::catch_unwind(|| {
                check_recovered(target.path(), &w, &plan, acked, hi.min(BATCHES))
            });
            if let Err(panic) = result {
                eprintln!(
                    "crash after op {n} of {total}, image {image:?}, {acked} acknowledged; \
                     operations:\n{}",
                    disk.trace()
                );
                std::panic::resume_unwind(panic);
            }
            images_checked += 1;
        }
    }
    eprintln!(
        "{} crash points, {images_checked} images checked",
        total + 1
    );
}

#[test]
fn power_cut_during_recovery_loses_nothing_acknowledged() {
    let seed = seed("power_loss_during_recovery");
    let w = workload(seed);
    let plan = w.plan(BATCHES);
    let dry = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dry.path());
    run(dry.path(), &disk, &w, &plan);
    let total = disk.ops();

    let mut rng = Rng::new(mix(seed, 2));
    let mut swept = 0;
    // A sample of first cuts, each leaving a torn write for recovery to
    // repair (or a prepared segment to remove), then a second cut after
    // every operation of that recovery and of the appends that follow it.
    for _ in 0..24 {
        let n = rng.between(1, total);
        let live = tempfile::tempdir().unwrap();
        let disk = SimDisk::attach(live.path());
        disk.crash_after(n);
        let acked = run(live.path(), &disk, &w, &plan);
        let image = CrashImage {
            writes: match disk.last_pending_write_len() {
                Some(len) => Fate::TornLast {
                    keep: rng.between(1, len as u64) as usize,
                },
                None => Fate::DurableOnly,
            },
            dir_ops: disk.pending_dir_ops(live.path()),
        };
        let first = tempfile::tempdir().unwrap();
        disk.materialize(live.path(), first.path(), &image);

        // Dry run of the second life, to count its operations.
        let count = {
            let scratch = tempfile::tempdir().unwrap();
            disk.materialize(live.path(), scratch.path(), &image);
            let disk2 = SimDisk::attach(scratch.path());
            second_life(scratch.path(), &disk2, &w, &plan);
            disk2.ops()
        };
        for m in 0..=count {
            let second = tempfile::tempdir().unwrap();
            disk.materialize(live.path(), second.path(), &image);
            let disk2 = SimDisk::attach(second.path());
            disk2.crash_after(m);
            let acked2 = second_life(second.path(), &disk2, &w, &plan);
            let last = tempfile::tempdir().unwrap();
            disk2.materialize(second.path(), last.path(), &CrashImage::DURABLE);
            let held = check_recovered(last.path(), &w, &plan, acked, BATCHES);
            if let Some(acked2) = acked2 {
                assert!(held >= acked2, "second cut lost acknowledged appends");
            }
            swept += 1;
        }
    }
    eprintln!("{swept} second cuts checked");
}

#[test]
fn power_cut_while_segments_are_prepared_ahead() {
    let seed = seed("power_loss_prepared_ahead");
    let w = workload(seed);
    let plan = w.plan(BATCHES);
    let dry = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dry.path());
    assert_eq!(
        run_with(dry.path(), &disk, &w, &plan, options_ahead),
        BATCHES
    );
    let total = disk.ops();

    // The background thread makes the order of operations vary from run to
    // run, so the crash points are a random sample rather than a sweep.
    let mut rng = Rng::new(mix(seed, 3));
    let trials = common::env_count("ANNALS_POWER_LOSS_TRIALS", 150);
    for _ in 0..trials {
        let n = rng.below(total + 1);
        let live = tempfile::tempdir().unwrap();
        let disk = SimDisk::attach(live.path());
        disk.crash_after(n);
        let acked = run_with(live.path(), &disk, &w, &plan, options_ahead);
        assert!(disk.surprises().is_empty(), "{:?}", disk.surprises());
        for image in common::crash_images(&disk, live.path(), &mut rng) {
            let target = tempfile::tempdir().unwrap();
            disk.materialize(live.path(), target.path(), &image);
            let hi = if image.writes == Fate::DurableOnly {
                acked
            } else {
                acked + 1
            };
            let result = std::panic::catch_unwind(|| {
                check_recovered(target.path(), &w, &plan, acked, hi.min(BATCHES))
            });
            if let Err(panic) = result {
                eprintln!(
                    "crash after op {n}, image {image:?}, {acked} acknowledged; operations:\n{}",
                    disk.trace()
                );
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// Opens the store in `dir` (repairing what the first cut left) and appends
/// until the disk dies; returns how many appends the store held when the
/// last append was acknowledged, or `None` if open failed.
fn second_life(
    dir: &Path,
    disk: &Arc<SimDisk>,
    w: &Workload,
    plan: &[(String, u64)],
) -> Option<usize> {
    let store = Store::open_with(dir, options(disk)).ok()?;
    let mut held = w.verify(&store).batches.len();
    for (stream, v) in plan.iter().skip(held).take(CONTINUE) {
        if store
            .append(stream, Workload::expected(*v), &w.batch(stream, *v))
            .is_err()
        {
            break;
        }
        held += 1;
    }
    Some(held)
}
