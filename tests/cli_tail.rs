//! Guards `annals tail` against a live writer in another process: it takes
//! no lock, prints every event the writer appends, in position order, once
//! each, follows the writer across segment files, and with --stream prints
//! only that stream, even one created after tail started.

#![cfg(feature = "cli")]

mod cli_support;

use std::collections::HashMap;

use cli_support::{Follower, annals, assert_code, deadline, path};
use serde_json::Value;

#[test]
fn tail_prints_events_appended_by_other_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    for i in 0..2 {
        let data = format!("before {i}");
        let run = annals([
            "append", dir, "early", "--type", "Early", "--data", &data, "--create",
        ]);
        assert_code(&run, 0);
    }

    // --from 0 makes the output independent of when tail opens the store.
    let mut all = Follower::start(["tail", dir, "--from", "0", "--interval-ms", "10"]);
    let mut watched = Follower::start([
        "tail",
        dir,
        "--stream",
        "watched",
        "--from",
        "0",
        "--json",
        "--interval-ms",
        "10",
    ]);
    let first = all.expect_lines(2, deadline(30));
    assert_eq!(
        first,
        ["#0 early@0 Early before 0", "#1 early@1 Early before 1"]
    );

    // Each append is its own process, taking and releasing the writer lock
    // while both tails hold the store open.
    let mut expected = Vec::new();
    for i in 0..6u64 {
        let stream = if i % 2 == 0 { "watched" } else { "other" };
        let data = format!("live {i}");
        let run = annals(["append", dir, stream, "--type", "Live", "--data", &data]);
        assert_code(&run, 0);
        let position = 2 + i;
        assert!(
            run.stdout.contains(&format!("position {position}")),
            "{}",
            run.stdout
        );
        expected.push(format!("#{position} {stream}@{} Live {data}", i / 2));
    }
    let live = all.expect_lines(6, deadline(30));
    assert_eq!(live, expected);

    let json: Vec<Value> = watched
        .expect_lines(3, deadline(30))
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let seen: Vec<(u64, u64, &str)> = json
        .iter()
        .map(|v| {
            assert_eq!(v["stream"], "watched");
            (
                v["position"].as_u64().unwrap(),
                v["version"].as_u64().unwrap(),
                v["data"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(2, 0, "live 0"), (4, 1, "live 2"), (6, 2, "live 4")]);

    assert!(
        all.running() && watched.running(),
        "tail must run until interrupted"
    );
    // Nothing beyond what was appended: one more append shows up alone.
    let run = annals(["append", dir, "other", "--type", "Last"]);
    assert_code(&run, 0);
    assert_eq!(all.expect_lines(1, deadline(30)), ["#8 other@3 Last "]);
    assert!(all.pending().is_empty());
}

#[test]
fn tail_follows_appends_into_new_segment_files() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = path(&store);
    // A store of 4 KiB segments (the demo is the one command that sets the
    // segment size; later opens keep it), so that every 2 KB event below
    // goes to a segment file that did not exist when tail opened the store.
    let demo = annals([
        "demo",
        "--dir",
        dir,
        "--keep",
        "--events",
        "1",
        "--streams",
        "1",
        "--segment-size",
        "4096",
    ]);
    assert_code(&demo, 0);
    let mut tail = Follower::start(["tail", dir, "--from", "0", "--interval-ms", "5"]);
    // Once the demo's event is printed, tail has opened the store: every
    // event after this one reaches it only through refresh.
    let first = tail.expect_lines(1, deadline(30));
    assert!(
        first[0].starts_with("#0 account-000000@0 Opened "),
        "{first:?}"
    );

    let big = "x".repeat(2000);
    for i in 1..=8u64 {
        let run = annals(["append", dir, "big", "--type", "Big", "--data", &big]);
        assert_code(&run, 0);
        let line = tail.expect_lines(1, deadline(30));
        let excerpt = "x".repeat(60);
        assert_eq!(line, [format!("#{i} big@{} Big {excerpt}…", i - 1)]);
    }
    let stats = annals(["stats", dir, "--json"]);
    let stats: Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert!(stats["segments"].as_u64().unwrap() >= 8, "{stats}");
    assert!(tail.pending().is_empty());
}

#[test]
fn tail_follows_a_multithreaded_writer_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = path(&store);
    const EVENTS: usize = 3_000;

    // The demo is a live writer that holds the lock throughout, appends from
    // four threads, and with 64 KiB segments rolls over many times.
    let mut writer = Follower::start([
        "demo",
        "--dir",
        dir,
        "--keep",
        "--events",
        "3000",
        "--streams",
        "30",
        "--batch",
        "10",
        "--threads",
        "4",
        "--segment-size",
        "65536",
    ]);
    // tail needs the store to exist; the demo prints its path first, and
    // creates the first segment right after.
    let announced = writer.expect_lines(1, deadline(30));
    assert_eq!(announced, [format!("store: {dir}")]);
    let first_segment = store.join("00000000000000000000.seg");
    let until = deadline(30);
    while !first_segment.exists() {
        assert!(std::time::Instant::now() < until, "the demo made no store");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }

    let mut tail = Follower::start(["tail", dir, "--from", "0", "--json", "--interval-ms", "5"]);
    let lines = tail.expect_lines(EVENTS, deadline(120));
    let mut next_version: HashMap<String, u64> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        let v: Value = serde_json::from_str(line).expect("JSON line");
        assert_eq!(
            v["position"].as_u64(),
            Some(i as u64),
            "positions are dense and in order"
        );
        let stream = v["stream"].as_str().unwrap().to_owned();
        let version = v["version"].as_u64().unwrap();
        let next = next_version.entry(stream.clone()).or_default();
        assert_eq!(version, *next, "{stream}: versions follow on");
        *next += 1;
        assert_eq!(v["data"].as_str().unwrap().len(), 256);
    }
    assert_eq!(next_version.len(), 30);
    assert!(next_version.values().all(|n| *n == 100));

    let report = writer.expect_lines(10, deadline(120));
    assert!(
        report.iter().any(|l| l.starts_with("segments")),
        "{report:#?}"
    );
    let stats = annals(["stats", dir, "--json"]);
    let stats: Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert!(
        stats["segments"].as_u64().unwrap() > 10,
        "the writer rolled over: {stats}"
    );
    assert!(
        tail.pending().is_empty(),
        "tail printed more than was written"
    );
}
