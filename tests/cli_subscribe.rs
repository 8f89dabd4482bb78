//! Guards the CLI's reads around subscriptions: `annals read --backward`
//! (stream and `--all`) prints newest first and says where to go on;
//! `read --all --prefix/--type` prints exactly the matching events; `tail
//! --filter-prefix/--type` follows only matching events, live; `tail
//! --wait` waits for a store that does not exist yet; and a `tail --from`
//! past the end is refused.

#![cfg(feature = "cli")]

mod cli_support;

use cli_support::{Follower, annals, assert_code, deadline, path};
use serde_json::Value;

/// Appends one event per (stream, type) pair, in order.
fn fill(dir: &str, events: &[(&str, &str)]) {
    for (i, (stream, ty)) in events.iter().enumerate() {
        let data = format!("d{i}");
        let run = annals([
            "append", dir, stream, "--type", ty, "--data", &data, "--create",
        ]);
        assert_code(&run, 0);
    }
}

/// (position, stream, version, type) of each JSON line.
fn parsed(stdout: &str) -> Vec<(u64, String, u64, String)> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            (
                v["position"].as_u64().unwrap(),
                v["stream"].as_str().unwrap().to_owned(),
                v["version"].as_u64().unwrap(),
                v["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const EVENTS: [(&str, &str); 6] = [
    ("order-1", "Placed"),
    ("user-1", "Joined"),
    ("order-1", "Paid"),
    ("order-2", "Placed"),
    ("user-1", "Left"),
    ("order-2", "Paid"),
];

#[test]
fn read_backward_and_filtered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    fill(dir, &EVENTS);

    let run = annals(["read", dir, "--all", "--backward", "--max", "3", "--json"]);
    assert_code(&run, 0);
    let got: Vec<u64> = parsed(&run.stdout).iter().map(|e| e.0).collect();
    assert_eq!(got, [5, 4, 3]);
    assert!(run.stderr.contains("--from 2"), "{}", run.stderr);

    let run = annals(["read", dir, "order-1", "--backward", "--json"]);
    assert_code(&run, 0);
    let got: Vec<u64> = parsed(&run.stdout).iter().map(|e| e.2).collect();
    assert_eq!(got, [1, 0]);

    let run = annals([
        "read",
        dir,
        "order-1",
        "--backward",
        "--from",
        "0",
        "--json",
    ]);
    let got: Vec<u64> = parsed(&run.stdout).iter().map(|e| e.2).collect();
    assert_eq!(got, [0]);

    let run = annals([
        "read", dir, "--all", "--prefix", "order-", "--type", "Paid", "--json",
    ]);
    assert_code(&run, 0);
    let got: Vec<u64> = parsed(&run.stdout).iter().map(|e| e.0).collect();
    assert_eq!(got, [2, 5]);

    let run = annals([
        "read", dir, "--all", "--prefix", "user-", "--prefix", "order-2", "--json",
    ]);
    let got: Vec<u64> = parsed(&run.stdout).iter().map(|e| e.0).collect();
    assert_eq!(got, [1, 3, 4, 5]);

    let run = annals([
        "read", dir, "--all", "--type", "Placed", "--max", "1", "--json",
    ]);
    let got: Vec<u64> = parsed(&run.stdout).iter().map(|e| e.0).collect();
    assert_eq!(got, [0]);
    assert!(run.stderr.contains("--from 1"), "{}", run.stderr);

    let run = annals([
        "read",
        dir,
        "--all",
        "--backward",
        "--type",
        "Placed",
        "--json",
    ]);
    let got: Vec<u64> = parsed(&run.stdout).iter().map(|e| e.0).collect();
    assert_eq!(got, [3, 0]);

    // A filter needs --all.
    let run = annals(["read", dir, "order-1", "--type", "Paid"]);
    assert_code(&run, 2);
}

#[test]
fn tail_filters_and_follows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    fill(dir, &EVENTS);
    let mut tail = Follower::start([
        "tail",
        dir,
        "--from",
        "0",
        "--filter-prefix",
        "order-",
        "--type",
        "Paid",
        "--interval-ms",
        "5",
    ]);
    let first = tail.expect_lines(2, deadline(30));
    assert_eq!(first, ["#2 order-1@1 Paid d2", "#5 order-2@1 Paid d5"]);
    let run = annals(["append", dir, "user-1", "--type", "Paid"]);
    assert_code(&run, 0);
    let run = annals(["append", dir, "order-3", "--type", "Paid", "--data", "x"]);
    assert_code(&run, 0);
    assert_eq!(tail.expect_lines(1, deadline(30)), ["#7 order-3@0 Paid x"]);
    assert!(tail.pending().is_empty());

    let refused = annals(["tail", dir, "--from", "99"]);
    assert_code(&refused, 2);
    assert!(
        refused.stderr.contains("--from 99") && refused.stderr.contains("8 events"),
        "{}",
        refused.stderr
    );
    let refused = annals(["tail", dir, "--stream", "s", "--type", "T"]);
    assert_code(&refused, 2);
}

#[test]
fn tail_waits_for_a_store_that_does_not_exist_yet() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("later");
    let dir = path(&store);
    let missing = annals(["tail", dir]);
    assert_code(&missing, 3);
    let mut tail = Follower::start(["tail", dir, "--wait", "--from", "0", "--interval-ms", "5"]);
    assert!(tail.running());
    let run = annals([
        "append", dir, "s", "--type", "First", "--data", "1", "--create",
    ]);
    assert_code(&run, 0);
    assert_eq!(tail.expect_lines(1, deadline(30)), ["#0 s@0 First 1"]);
    let run = annals(["append", dir, "s", "--type", "Second", "--data", "2"]);
    assert_code(&run, 0);
    assert_eq!(tail.expect_lines(1, deadline(30)), ["#1 s@1 Second 2"]);
}
