//! Guards the main job, `annals demo`: a small run appends from several
//! threads, reopens, verifies every event, prints each figure of its
//! summary, exits 0, and removes its store unless --keep; a kept store then
//! passes `verify` and holds what the summary says; a directory that is not
//! empty is refused untouched; and a demo interrupted by Ctrl-C has said
//! where it leaves its store.

#![cfg(feature = "cli")]

mod cli_support;

use cli_support::{annals, assert_code, path, snapshot};
use serde_json::Value;

const ROWS: [&str; 10] = [
    "store",
    "events",
    "bytes",
    "segments",
    "append",
    "append latency",
    "reopen",
    "read_stream",
    "read_all",
    "total",
];

/// The value of summary row `name` in the demo's output.
fn row<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(name)?;
            rest.starts_with("  ").then(|| rest.trim())
        })
        .unwrap_or_else(|| panic!("no '{name}' row in:\n{stdout}"))
}

#[test]
fn a_small_demo_verifies_reports_and_cleans_up() {
    let run = annals(["demo", "--events", "2000", "--streams", "50"]);
    assert_code(&run, 0);
    for name in ROWS {
        row(&run.stdout, name);
    }
    assert!(
        row(&run.stdout, "events").starts_with("2,000 in 50 streams, every one verified"),
        "{}",
        run.stdout
    );
    assert!(row(&run.stdout, "append").contains("events/s"));
    assert!(row(&run.stdout, "append latency").starts_with("p50 "));
    assert!(row(&run.stdout, "append").contains("50 appends of up to 100 events"));

    let dir = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("store: "))
        .expect("the demo says where its store is");
    assert!(row(&run.stdout, "store").ends_with("(removed)"));
    assert!(!std::path::Path::new(dir).exists(), "{dir} was not removed");
}

#[test]
fn a_kept_demo_store_holds_what_the_summary_says() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("demo");
    let dir = path(&store);
    let run = annals([
        "demo",
        "--dir",
        dir,
        "--keep",
        "--events",
        "2000",
        "--streams",
        "50",
        "--segment-size",
        "65536",
    ]);
    assert_code(&run, 0);
    assert_eq!(row(&run.stdout, "store"), format!("{dir} (kept)"));

    let stats = annals(["stats", dir, "--json"]);
    assert_code(&stats, 0);
    let v: Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert_eq!(v["events"], 2000);
    assert_eq!(v["streams"], 50);
    assert_eq!(v["largest_streams"][0]["events"], 40);
    // The summary counts what the writer saw before it closed, `stats` what
    // a later read-only open finds; neither counts a segment prepared ahead
    // of need, so they agree.
    let segments = v["segments"].as_u64().unwrap();
    assert!(segments > 5, "64 KiB segments roll over: {segments}");
    let summary_segments: u64 = row(&run.stdout, "segments")
        .split_once(" of 64.0 KiB")
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no segment count in {}", run.stdout));
    assert_eq!(summary_segments, segments, "summary and stats disagree");
    let bytes_used = v["bytes_used"].as_u64().unwrap();
    let summary_bytes: u64 = row(&run.stdout, "bytes")
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(" bytes)"))
        .and_then(|(n, _)| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {}", run.stdout));
    assert_eq!(summary_bytes, bytes_used, "summary and stats disagree");

    let verify = annals(["verify", dir]);
    assert_code(&verify, 0);
    // verify counts segments as stats does, and says how many files it
    // checked besides (a segment prepared ahead is one more).
    let holding = format!("ok: 2,000 events in {segments} segments holding events; ");
    assert!(verify.stdout.starts_with(&holding), "{}", verify.stdout);
    let files = std::fs::read_dir(&store)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".seg")
        })
        .count();
    assert!(
        verify
            .stdout
            .contains(&format!("; {files} segment files checked in ")),
        "{files} files: {}",
        verify.stdout
    );
}

#[test]
fn a_directory_that_is_not_empty_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("precious.txt"), b"keep me").unwrap();
    let before = snapshot(tmp.path());
    let run = annals([
        "demo",
        "--dir",
        path(tmp.path()),
        "--events",
        "10",
        "--streams",
        "1",
    ]);
    assert_code(&run, 2);
    assert!(run.stderr.contains("not empty"), "{}", run.stderr);
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn a_bad_segment_size_is_refused_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("demo");
    let run = annals([
        "demo",
        "--dir",
        path(&store),
        "--events",
        "10",
        "--streams",
        "1",
        "--segment-size",
        "1000",
    ]);
    assert_code(&run, 2);
    assert!(run.stderr.contains("segment_size"), "{}", run.stderr);
    assert!(!store.exists(), "the demo left its directory behind");
}

#[test]
fn an_interrupted_demo_has_said_where_its_store_stays() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("demo");
    let dir = path(&store);
    // A demo far too long to end on its own while the test runs.
    let mut child = Command::new(cli_support::ANNALS)
        .args([
            "demo",
            "--dir",
            dir,
            "--events",
            "100000000",
            "--streams",
            "10",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The notice goes to standard error before the path goes to standard
    // output, so once the path is read the notice has been written.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim_end(), format!("store: {dir}"));
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill only sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();

    assert_eq!(status.code(), None, "SIGINT did not end the demo: {stderr}");
    assert!(
        stderr.contains("if it is interrupted") && stderr.contains(&format!("stays in {dir} ")),
        "the demo did not say where its store stays: {stderr:?}"
    );
    assert!(store.is_dir(), "the store the notice names is not there");
}
