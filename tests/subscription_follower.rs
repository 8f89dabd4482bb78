//! Guards subscriptions on a read-only store that follows a live writer in
//! another process: a child process (this test binary, re-run in child
//! mode) appends the workload to 4 KiB segments, so the log rotates every
//! few frames, while the parent's `$all` and stream subscriptions, fed by
//! the store's refresher thread, must deliver every event once, in order,
//! byte for byte, across every rotation; and end when the follower is
//! dropped.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use annals::{Options, Store, SubscribeFrom, SubscriptionItem};
use common::{Workload, seed};

const CHILD_DIR: &str = "ANNALS_FOLLOW_CHILD_DIR";
const CHILD_SEED: &str = "ANNALS_FOLLOW_CHILD_SEED";
const TEST_NAME: &str = "subscriptions_follow_a_writer_in_another_process";
const BATCHES: usize = 400;
/// How long the parent waits for the next item before calling it lost.
const MUST_COME: Duration = Duration::from_secs(60);

fn workload(seed: u64) -> Workload {
    Workload {
        seed,
        ..Workload::FIXED
    }
}

fn options() -> Options {
    Options::default().segment_size(4 << 10)
}

/// The child: appends the workload and exits.
fn child(dir: &Path, seed: u64) {
    let store = Store::open_with(dir, options()).unwrap();
    let w = workload(seed);
    for i in 0..BATCHES {
        w.append_next(&store, i).unwrap();
    }
    store.close().unwrap();
}

#[test]
fn subscriptions_follow_a_writer_in_another_process() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let seed = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
        child(Path::new(&dir), seed);
        return;
    }
    let seed = seed("subscription_follower");
    let w = workload(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The store exists (empty) before the follower opens it.
    Store::open_with(dir, options()).unwrap().close().unwrap();
    let follower = Store::open_read_only_with(
        dir,
        Options::default().follow_interval(Duration::from_millis(2)),
    )
    .unwrap();
    let mut all = follower.subscribe_all(SubscribeFrom::Start, None).unwrap();
    let watched = w.stream_name(1);
    let mut stream = follower
        .subscribe_stream(&watched, SubscribeFrom::Start)
        .unwrap();
    assert_eq!(
        all.next_timeout(MUST_COME).unwrap(),
        Some(SubscriptionItem::CaughtUp { position: 0 })
    );
    assert_eq!(
        stream.next_timeout(MUST_COME).unwrap(),
        Some(SubscriptionItem::CaughtUp { position: 0 })
    );

    let exe = std::env::current_exe().unwrap();
    let mut writer = Command::new(exe)
        .args([
            TEST_NAME,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_SEED, seed.to_string())
        .spawn()
        .unwrap();

    // What the child appends, in order: batch i goes to stream i % streams,
    // after the versions it holds.
    let mut expected = Vec::new();
    let mut next = vec![0u64; w.streams];
    for i in 0..BATCHES {
        let s = i % w.streams;
        let stream = w.stream_name(s);
        let len = w.batch_len(&stream, next[s]);
        for v in next[s]..next[s] + len {
            expected.push((stream.clone(), v));
        }
        next[s] += len;
    }
    for (position, (stream, version)) in expected.iter().enumerate() {
        let item = all.next_timeout(MUST_COME).unwrap();
        let Some(SubscriptionItem::Event(e)) = item else {
            panic!("position {position}: expected an event, got {item:?} (seed {seed})");
        };
        assert_eq!(e.position, position as u64, "seed {seed}");
        w.assert_event(&e, stream, *version);
    }
    let watched_versions = expected.iter().filter(|(s, _)| *s == watched).count() as u64;
    for version in 0..watched_versions {
        let item = stream.next_timeout(MUST_COME).unwrap();
        let Some(SubscriptionItem::Event(e)) = item else {
            panic!("version {version}: expected an event, got {item:?} (seed {seed})");
        };
        w.assert_event(&e, &watched, version);
    }
    assert!(
        writer.wait().unwrap().success(),
        "the writer failed (seed {seed})"
    );
    assert!(
        follower.stats().segments > 10,
        "the log must rotate often (seed {seed})"
    );
    // Nothing more was written, and nothing more comes.
    follower.refresh().unwrap();
    assert_eq!(all.next_timeout(Duration::ZERO).unwrap(), None);
    drop(follower);
    assert!(matches!(
        all.next_timeout(MUST_COME),
        Err(annals::Error::StoreClosed)
    ));
    assert!(stream.next().is_none());
}
