//! Guards the one-writer rule at the command line: while another process
//! (here, this test process) has the store open for writing, `append`
//! fails at once with exit code 4 and writes nothing, while `read`,
//! `stats`, `verify` and `dump`, which take no lock, keep working and see
//! what the writer committed.

#![cfg(feature = "cli")]

mod cli_support;

use annals::{EventData, ExpectedVersion, Store};
use cli_support::{annals, assert_code, path};

#[test]
fn a_held_store_refuses_append_with_exit_4_and_still_serves_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    store
        .append(
            "held",
            ExpectedVersion::NoStream,
            &[EventData::new("Held", b"by the test".to_vec())],
        )
        .unwrap();

    let append = annals(["append", dir, "other", "--type", "T", "--data", "x"]);
    assert_code(&append, 4);
    assert!(append.stderr.contains("locked"), "{}", append.stderr);
    assert!(
        append.stderr.contains("LOCK"),
        "names the lock file: {}",
        append.stderr
    );
    let created = annals(["append", dir, "other", "--type", "T", "--create"]);
    assert_code(&created, 4);

    let read = annals(["read", dir, "held", "--json"]);
    assert_code(&read, 0);
    assert!(
        read.stdout.contains(r#""data":"by the test""#),
        "{}",
        read.stdout
    );
    let stats = annals(["stats", dir, "--json"]);
    assert_code(&stats, 0);
    assert!(stats.stdout.contains(r#""events":1"#), "{}", stats.stdout);
    assert_code(&annals(["verify", dir]), 0);
    assert_code(&annals(["dump", dir, "--segment", "0"]), 0);

    // The refused appends wrote nothing.
    assert_eq!(store.global_position(), 1);
    assert_eq!(store.stream_version("other"), None);

    // Once the writer lets go, append works.
    store.close().unwrap();
    let append = annals(["append", dir, "other", "--type", "T", "--data", "x"]);
    assert_code(&append, 0);
    assert_eq!(
        append.stdout.trim(),
        "appended to other: version 0, position 1"
    );
}
