//! One writer per data directory: a second `open`, from this process or
//! another, gets `Error::Locked` at once, and the lock goes with the store.

use std::process::Command;

use annals::{Error, EventData, ExpectedVersion, Store};

const CHILD_ENV: &str = "ANNALS_LOCK_TEST_DIR";

/// Held by every test here. A child process forked by one test holds a copy
/// of every descriptor of this process, the lock file's included, until it
/// execs: a store another test closes in that window stays locked until
/// then, and its reopen sees `Locked`. That is how `flock` works (a lock
/// belongs to the open file, which a fork shares), not a bug of the lock, so
/// the tests of this file, which spawn children and reopen at once, take
/// turns. The crate docs say the same to users who spawn processes.
static TURNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// Exit codes of the child: opened, found locked, anything else.
const OPENED: i32 = 0;
const LOCKED: i32 = 3;
const OTHER: i32 = 4;

/// In the child process: try to open the directory and say what happened.
fn child_main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let code = match Store::open(&dir) {
            Ok(_) => OPENED,
            Err(Error::Locked { .. }) => LOCKED,
            Err(e) => {
                eprintln!("child: {e}");
                OTHER
            }
        };
        std::process::exit(code);
    }
}

fn open_in_child(dir: &std::path::Path) -> i32 {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(exe)
        .args([
            "--exact",
            "lock_is_exclusive_across_processes",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir)
        .status()
        .unwrap();
    status.code().unwrap_or(-1)
}

#[test]
fn lock_is_exclusive_within_a_process() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("s", ExpectedVersion::NoStream, &[EventData::new("E", "x")])
        .unwrap();
    let second = Store::open(dir.path());
    assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
    // The failed open changed nothing for the first.
    assert_eq!(store.global_position(), 1);
    store.close().unwrap();
    let reopened = Store::open(dir.path()).unwrap();
    assert_eq!(reopened.global_position(), 1);
}

#[test]
fn lock_is_exclusive_across_processes() {
    let _turn = turn();
    child_main();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(open_in_child(dir.path()), LOCKED);
    drop(store);
    assert_eq!(open_in_child(dir.path()), OPENED);
}

#[test]
fn read_only_open_takes_no_lock() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("s", ExpectedVersion::NoStream, &[EventData::new("E", "x")])
        .unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.global_position(), 1);
    let refused = reader.append("s", ExpectedVersion::Any, &[EventData::new("E", "y")]);
    assert!(matches!(refused, Err(Error::ReadOnly)), "{refused:?}");
    store
        .append("s", ExpectedVersion::Exact(0), &[EventData::new("E", "z")])
        .unwrap();
    assert_eq!(reader.refresh().unwrap(), 1);
    let events = reader.read_stream("s", 0, 10).unwrap();
    assert_eq!(&events[1].data[..], b"z");
}

#[test]
fn a_refused_open_of_a_foreign_directory_leaves_no_lock_file() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.tex"), b"\\documentclass{article}").unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::NotAStore { .. }), "{err:?}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("thesis.tex")]);
}

#[test]
fn the_data_directory_may_be_a_symlink() {
    let _turn = turn();
    let real = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let link = parent.path().join("data");
    std::os::unix::fs::symlink(real.path(), &link).unwrap();
    let store = Store::open(&link).unwrap();
    store
        .append("s", ExpectedVersion::NoStream, &[EventData::new("E", "x")])
        .unwrap();
    drop(store);
    assert_eq!(Store::open(real.path()).unwrap().global_position(), 1);
}
