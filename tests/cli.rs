//! Guards the `annals` command line as a user meets it: every command on a
//! small store, what each prints, and the documented exit codes for a
//! missing directory, a directory with no store, bad arguments, a failed
//! expected-version check and an unknown stream or segment.

#![cfg(feature = "cli")]

mod cli_support;

use base64::Engine as _;
use cli_support::{annals, annals_with_stdin, assert_code, path, snapshot};
use serde_json::Value;

const SUBCOMMANDS: [&str; 8] = [
    "demo", "append", "read", "tail", "stats", "streams", "verify", "dump",
];

#[test]
fn help_shows_examples_and_every_exit_code() {
    let top = annals(["--help"]);
    assert_code(&top, 0);
    assert!(top.stdout.contains("Examples:"), "{}", top.stdout);
    for line in [
        "0  success",
        "2  bad arguments",
        "3  not found",
        "4  locked",
        "5  corrupt",
        "6  conflict",
        "7  not a store",
        "8  bad index",
    ] {
        assert!(top.stdout.contains(line), "no '{line}' in {}", top.stdout);
    }
    for sub in SUBCOMMANDS {
        let help = annals([sub, "--help"]);
        assert_code(&help, 0);
        assert!(
            help.stdout.contains("Examples:") && help.stdout.contains("Exit codes:"),
            "{sub} --help lacks examples or exit codes:\n{}",
            help.stdout
        );
    }
}

/// Every command of the tool, pointed at `dir`.
fn every_command(dir: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["append", dir, "s", "--type", "T"],
        vec!["read", dir, "s"],
        vec!["read", dir, "--all"],
        vec!["tail", dir],
        vec!["stats", dir],
        vec!["verify", dir],
        vec!["dump", dir, "--segment", "0"],
    ]
}

#[test]
fn a_missing_directory_is_exit_3_for_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let dir = path(&missing);
    let runs = every_command(dir);
    for args in runs {
        let run = annals(&args);
        assert_code(&run, 3);
        assert!(
            run.stderr.contains("no such directory") && run.stderr.contains(dir),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(!missing.exists(), "a command created the missing directory");
}

#[test]
fn an_empty_directory_is_no_store_and_stays_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    for args in [
        vec!["append", dir, "s", "--type", "T"],
        vec!["read", dir, "--all"],
        vec!["stats", dir],
        vec!["verify", dir],
    ] {
        let run = annals(&args);
        assert_code(&run, 3);
        assert!(
            run.stderr.contains("no annals store"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(snapshot(tmp.path()).is_empty());
}

#[test]
fn a_file_or_a_directory_holding_strangers_is_exit_7_for_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    // A store with a stranger beside its files.
    let stray_dir = tmp.path().join("store");
    let stray_path = path(&stray_dir).to_owned();
    let run = annals(["append", &stray_path, "s", "--type", "T", "--create"]);
    assert_code(&run, 0);
    std::fs::write(stray_dir.join("foo"), b"not annals'").unwrap();
    // A fresh directory holding nothing but a stranger.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::write(fresh.join("foo"), b"not annals'").unwrap();
    // A file where a directory belongs.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"a file").unwrap();
    let before = [snapshot(&stray_dir), snapshot(&fresh)];

    for (dir, what) in [
        (stray_path.as_str(), "holds \"foo\""),
        (path(&fresh), "holds \"foo\""),
        (path(&file), "is a file"),
    ] {
        let mut runs = every_command(dir);
        runs.insert(1, vec!["append", dir, "s", "--type", "T", "--create"]);
        for args in runs {
            let run = annals(&args);
            assert_code(&run, 7);
            assert!(
                run.stderr
                    .starts_with(&format!("annals: not an annals data directory: {dir} "))
                    && run.stderr.contains(what),
                "{args:?}: {}",
                run.stderr
            );
        }
    }
    assert_eq!([snapshot(&stray_dir), snapshot(&fresh)], before);
    assert_eq!(std::fs::read(&file).unwrap(), b"a file");
}

#[test]
fn lost_and_found_and_dot_files_do_not_stop_any_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    std::fs::create_dir(tmp.path().join("lost+found")).unwrap();
    std::fs::write(tmp.path().join(".gitkeep"), b"").unwrap();
    let run = annals(["append", dir, "s", "--type", "T", "--create"]);
    assert_code(&run, 0);
    for args in [
        vec!["append", dir, "s", "--type", "T"],
        vec!["read", dir, "s"],
        vec!["read", dir, "--all"],
        vec!["stats", dir],
        vec!["verify", dir],
        vec!["dump", dir, "--segment", "0"],
    ] {
        let run = annals(&args);
        assert_code(&run, 0);
    }
    let read = annals(["read", dir, "--all", "--json"]);
    assert_eq!(read.stdout.lines().count(), 2, "{}", read.stdout);
}

#[test]
fn bad_arguments_are_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    assert_code(&annals(["append", dir, "s", "--type", "T", "--create"]), 0);
    for args in [
        vec!["frobnicate"],
        vec!["append", dir, "s"],
        vec!["append", dir, "s", "--type", "T", "--expected", "maybe"],
        vec!["read", dir],
        vec!["read", dir, "s", "--all"],
        vec!["read", dir, "s", "--max", "-1"],
        vec!["dump", dir],
        vec!["demo", "--events", "5", "--streams", "10"],
        vec!["demo", "--events", "0"],
        // Refused by the library as invalid input, not by clap.
        vec!["append", dir, "", "--type", "T"],
        vec!["append", dir, "s", "--type", ""],
        vec![
            "append",
            dir,
            "s",
            "--type",
            "T",
            "--data",
            "@/no/such/file",
        ],
    ] {
        let run = annals(&args);
        assert_code(&run, 2);
        assert!(!run.stderr.is_empty(), "{args:?} printed no reason");
    }
    let all = annals(["read", dir, "--all", "--json"]);
    assert_eq!(
        all.stdout.lines().count(),
        1,
        "a refused append wrote something"
    );
}

#[test]
fn append_then_read_round_trips_text_and_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = path(&store);
    let blob = tmp.path().join("blob.bin");
    std::fs::write(&blob, [0xff, 0x00, 0x80, b'x']).unwrap();
    let blob_arg = format!("@{}", path(&blob));

    let first = annals([
        "append",
        dir,
        "order-1",
        "--type",
        "OrderPlaced",
        "--data",
        r#"{"total":10}"#,
        "--expected",
        "no-stream",
        "--create",
    ]);
    assert_code(&first, 0);
    assert_eq!(
        first.stdout.trim(),
        "appended to order-1: version 0, position 0"
    );

    let second = annals([
        "append",
        dir,
        "order-2",
        "--type",
        "Blob",
        "--data",
        &blob_arg,
        "--metadata",
        "m1",
    ]);
    assert_code(&second, 0);
    assert_eq!(
        second.stdout.trim(),
        "appended to order-2: version 0, position 1"
    );

    let third = annals_with_stdin(
        [
            "append",
            dir,
            "order-1",
            "--type",
            "OrderPaid",
            "--expected",
            "0",
            "--data",
            "-",
        ],
        b"paid\nin full",
    );
    assert_code(&third, 0);
    assert_eq!(
        third.stdout.trim(),
        "appended to order-1: version 1, position 2"
    );

    // A stale expected version is a conflict, and writes nothing.
    let stale = annals([
        "append",
        dir,
        "order-1",
        "--type",
        "Late",
        "--expected",
        "0",
    ]);
    assert_code(&stale, 6);
    assert!(stale.stderr.contains("order-1"), "{}", stale.stderr);
    let exists = annals([
        "append",
        dir,
        "order-9",
        "--type",
        "X",
        "--expected",
        "exists",
    ]);
    assert_code(&exists, 6);

    let table = annals(["read", dir, "order-1"]);
    assert_code(&table, 0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(lines[0].starts_with("POSITION  STREAM"), "{}", lines[0]);
    assert!(lines[1].contains("OrderPlaced") && lines[1].contains(r#"{"total":10}"#));
    assert!(lines[2].contains("OrderPaid") && lines[2].contains(r"paid\nin full"));

    let json = annals(["read", dir, "--all", "--json"]);
    assert_code(&json, 0);
    let events: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 3);
    let positions: Vec<u64> = events
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, vec![0, 1, 2]);
    assert_eq!(events[0]["data_encoding"], "utf8");
    assert_eq!(events[0]["data"], r#"{"total":10}"#);
    assert_eq!(events[1]["stream"], "order-2");
    assert_eq!(events[1]["type"], "Blob");
    assert_eq!(events[1]["data_encoding"], "base64");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(events[1]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, [0xff, 0x00, 0x80, b'x']);
    assert_eq!(events[1]["metadata"], "m1");
    assert_eq!(events[2]["data"], "paid\nin full");
    assert_eq!(events[2]["version"], 1);

    let page = annals(["read", dir, "--all", "--from", "1", "--max", "1", "--json"]);
    assert_code(&page, 0);
    assert_eq!(page.stdout.lines().count(), 1);
    assert!(page.stdout.contains(r#""position":1"#), "{}", page.stdout);
    assert!(page.stderr.contains("--from 2"), "no hint: {}", page.stderr);
    let from_version = annals(["read", dir, "order-1", "--from", "1", "--json"]);
    assert_code(&from_version, 0);
    assert_eq!(from_version.stdout.lines().count(), 1);
    assert!(from_version.stdout.contains(r#""version":1"#));

    let unknown = annals(["read", dir, "order-404"]);
    assert_code(&unknown, 3);
    assert!(unknown.stderr.contains("order-404"), "{}", unknown.stderr);
}

#[test]
fn stats_and_dump_describe_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    for (stream, n) in [("big", 3), ("small", 1)] {
        for _ in 0..n {
            let run = annals([
                "append", dir, stream, "--type", "T", "--data", "x", "--create",
            ]);
            assert_code(&run, 0);
        }
    }

    let stats = annals(["stats", dir, "--json"]);
    assert_code(&stats, 0);
    let v: Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert_eq!(v["events"], 4);
    assert_eq!(v["streams"], 2);
    assert_eq!(v["format_version"], 2);
    assert!(v["segments"].as_u64().unwrap() >= 1);
    assert!(v["bytes_used"].as_u64().unwrap() > 4);
    // A small store's segment 0 is sparse: far less than its 128 MiB, and
    // at least the bytes it holds.
    let on_disk = v["bytes_on_disk"].as_u64().unwrap();
    assert!(on_disk >= v["bytes_used"].as_u64().unwrap(), "{v}");
    assert!(on_disk < 64 << 20, "{v}");
    assert_eq!(v["largest_streams"][0]["stream"], "big");
    assert_eq!(v["largest_streams"][0]["events"], 3);
    assert_eq!(v["largest_streams"][1]["stream"], "small");

    let table = annals(["stats", dir, "--top", "1"]);
    assert_code(&table, 0);
    assert!(
        table.stdout.contains("events          4"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("big") && !table.stdout.contains("small"));

    let dump = annals(["dump", dir, "--segment", "0", "--data"]);
    assert_code(&dump, 0);
    assert!(
        dump.stdout.contains("offset 0: segment header, checked"),
        "{}",
        dump.stdout
    );
    let frames = dump
        .stdout
        .lines()
        .filter(|l| l.contains(": frame of "))
        .count();
    assert_eq!(frames, 4, "one frame per append:\n{}", dump.stdout);
    assert!(
        dump.stdout.contains("position 3, small@0, type T"),
        "{}",
        dump.stdout
    );
    assert!(
        dump.stdout.contains("end of data at offset"),
        "{}",
        dump.stdout
    );

    let none = annals(["dump", dir, "--segment", "99"]);
    assert_code(&none, 3);
    assert!(
        none.stderr.contains("00000000000000000099.seg"),
        "{}",
        none.stderr
    );
}
