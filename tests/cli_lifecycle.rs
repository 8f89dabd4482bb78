//! Guards the lifecycle commands as a user meets them: `annals delete`
//! (soft, `--hard`, `--expected`), `truncate` and `limits`, what each
//! prints, what `read` then shows, and the documented exit codes (3 for a
//! deleted or tombstoned stream, 6 for a failed --expected, 2 for bad
//! limits).

#![cfg(feature = "cli")]

mod cli_support;

use cli_support::{annals, assert_code, path};

fn append(dir: &str, stream: &str, n: usize) {
    for i in 0..n {
        let run = annals([
            "append",
            dir,
            stream,
            "--type",
            "T",
            "--data",
            &i.to_string(),
            "--create",
        ]);
        assert_code(&run, 0);
    }
}

fn read_versions(dir: &str, stream: &str) -> Vec<String> {
    let run = annals(["read", dir, stream, "--json"]);
    assert_code(&run, 0);
    run.stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["version"].to_string()
        })
        .collect()
}

#[test]
fn delete_truncate_and_limits_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    append(dir, "cart", 3);
    append(dir, "user", 2);
    append(dir, "log", 5);

    let run = annals(["delete", dir, "cart", "--expected", "1"]);
    assert_code(&run, 6);
    let run = annals(["delete", dir, "cart", "--expected", "2"]);
    assert_code(&run, 0);
    assert_eq!(run.stdout.trim(), "cart: deleted");
    assert_code(&annals(["read", dir, "cart"]), 3);
    // An append starts it again, at the next version.
    let run = annals([
        "append",
        dir,
        "cart",
        "--type",
        "T",
        "--expected",
        "no-stream",
    ]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("version 3"), "{}", run.stdout);

    let run = annals(["delete", dir, "user", "--hard"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("tombstoned"), "{}", run.stdout);
    let read = annals(["read", dir, "user"]);
    assert_code(&read, 3);
    assert!(read.stderr.contains("deleted for good"), "{}", read.stderr);
    assert_code(&annals(["append", dir, "user", "--type", "T"]), 3);

    let run = annals(["truncate", dir, "log", "--before", "3"]);
    assert_code(&run, 0);
    assert_eq!(read_versions(dir, "log"), ["3", "4"]);
    let run = annals(["limits", dir, "log", "--max-count", "1", "--max-age", "7d"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("the last 1 events"), "{}", run.stdout);
    assert_eq!(read_versions(dir, "log"), ["4"]);
    assert_code(&annals(["limits", dir, "log", "--max-count", "0"]), 2);
    assert_code(&annals(["limits", dir, "log", "--max-age", "7x"]), 2);
    let run = annals(["limits", dir, "log"]);
    assert_code(&run, 0);
    assert_eq!(run.stdout.trim(), "log: limits removed");
    assert_eq!(read_versions(dir, "log"), ["3", "4"]);

    // --all shows no removed event.
    let all = annals(["read", dir, "--all", "--json"]);
    assert_code(&all, 0);
    let streams: Vec<String> = all
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["stream"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(streams, ["log", "log", "cart"]);
    // stats shows what a scavenge would reclaim; scavenge reclaims it,
    // and verify finds the rewritten store sound.
    let stats = annals(["stats", dir, "--json"]);
    assert_code(&stats, 0);
    let v: serde_json::Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert_eq!(v["reclaimable_events"], 3 + 2 + 3);
    let run = annals(["scavenge", dir, "--json"]);
    assert_code(&run, 0);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["events_removed"], 3 + 2 + 3);
    let stats = annals(["stats", dir, "--json"]);
    let v: serde_json::Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert_eq!(v["reclaimable_events"], 0);
    assert_code(&annals(["verify", dir]), 0);
    assert_eq!(read_versions(dir, "log"), ["3", "4"]);
    for sub in ["delete", "truncate", "limits", "scavenge"] {
        let help = annals([sub, "--help"]);
        assert_code(&help, 0);
        assert!(help.stdout.contains("Examples:") && help.stdout.contains("Exit codes:"));
    }
}

/// A store whose oldest segments retention dropped: `verify` checks it
/// from where it starts, and `stats` says where that is.
#[test]
fn verify_and_stats_follow_a_log_that_retention_cut() {
    use annals::{EventData, ExpectedVersion, Options, Store};
    let tmp = tempfile::tempdir().unwrap();
    let options = Options::default().segment_size(8192).retain_bytes(3 * 8192);
    let store = Store::open_with(tmp.path(), options).unwrap();
    for i in 0..200u32 {
        let data = format!("{i}-").repeat(50).into_bytes();
        store
            .append("s", ExpectedVersion::Any, &[EventData::new("T", data)])
            .unwrap();
    }
    let first = store.stats().first_position;
    assert!(first > 0, "nothing was dropped");
    drop(store);
    let dir = path(tmp.path());
    let run = annals(["verify", dir]);
    assert_code(&run, 0);
    assert!(
        run.stdout.contains(&format!("ok: {} events", 200 - first)),
        "{}",
        run.stdout
    );
    let run = annals(["stats", dir, "--json"]);
    assert_code(&run, 0);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["first_position"], first);
    assert_eq!(v["events"], 200);
    // A segment file after the first one damaged is still found.
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    names.sort();
    let victim = &names[1];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[200] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();
    assert_code(&annals(["verify", dir]), 5);
}
