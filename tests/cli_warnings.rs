//! Guards that the command line shows what the library only logs. A
//! writable open drops a torn tail with a `tracing` warning; the tool used
//! to set up no subscriber, so `annals append` dropped the end of a log
//! without a word, and the next append reused the dropped positions. The
//! warning must reach standard error by default, follow `RUST_LOG`, and
//! be silenced by `-q`/`--quiet` alone.

#![cfg(feature = "cli")]

mod cli_support;

use std::path::Path;
use std::process::Command;

use cli_support::{ANNALS, Run, assert_code, one_event_frames, path, remove_indexes};

const SEGMENT_0: &str = "00000000000000000000.seg";

/// Runs `annals` with `args`, with `RUST_LOG` set to `rust_log` or unset,
/// whatever the environment of the test says.
fn annals_log(args: &[&str], rust_log: Option<&str>) -> Run {
    let mut command = Command::new(ANNALS);
    command.args(args).env_remove("RUST_LOG");
    if let Some(level) = rust_log {
        command.env("RUST_LOG", level);
    }
    let output = command.output().expect("run annals");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A store of three one-event frames whose last frame is damaged after a
/// crash (no clean close's index), which a writable open takes for a torn
/// write and drops.
fn torn_store(dir: &Path) {
    let (start, len) = *one_event_frames(dir, 3).last().expect("three frames");
    remove_indexes(dir);
    let segment = dir.join(SEGMENT_0);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[(start + len - 12) as usize] ^= 0x20;
    std::fs::write(&segment, bytes).unwrap();
}

/// Appends one event to `dir` with `args` before the subcommand and
/// `rust_log`, checks that the torn event was dropped, and returns what
/// the append printed on standard error.
fn append_to_torn(args: &[&str], rust_log: Option<&str>) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    torn_store(tmp.path());
    let mut all = args.to_vec();
    all.extend(["append", dir, "s", "--type", "T", "--data", "after"]);
    let run = annals_log(&all, rust_log);
    assert_code(&run, 0);
    // The torn event's position went to the new one: the drop happened,
    // whether or not it was shown.
    assert_eq!(
        run.stdout.trim(),
        "appended to s: version 2, position 2",
        "{}",
        run.stderr
    );
    run.stderr
}

#[test]
fn a_dropped_torn_tail_is_shown_on_standard_error() {
    let stderr = append_to_torn(&[], None);
    assert!(
        stderr.contains("WARN") && stderr.contains(SEGMENT_0),
        "no warning naming the segment: {stderr:?}"
    );
}

#[test]
fn quiet_silences_the_warning() {
    for flags in [&["-q"][..], &["--quiet"]] {
        let stderr = append_to_torn(flags, None);
        assert!(stderr.is_empty(), "{flags:?} printed {stderr:?}");
    }
    // Quiet wins over RUST_LOG.
    let stderr = append_to_torn(&["-q"], Some("info"));
    assert!(
        stderr.is_empty(),
        "-q with RUST_LOG=info printed {stderr:?}"
    );
}

#[test]
fn rust_log_sets_the_level() {
    let stderr = append_to_torn(&[], Some("error"));
    assert!(stderr.is_empty(), "RUST_LOG=error printed {stderr:?}");
    let stderr = append_to_torn(&[], Some("warn"));
    assert!(stderr.contains(SEGMENT_0), "RUST_LOG=warn: {stderr:?}");
}

/// The read-only commands say when the end of the log is torn, and leave
/// it as it is; `-q` silences them too.
#[test]
fn read_only_commands_say_the_log_ends_torn() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    torn_store(tmp.path());
    let before = std::fs::read(tmp.path().join(SEGMENT_0)).unwrap();
    for command in [
        &["read", dir, "--all"][..],
        &["stats", dir],
        &["verify", dir],
    ] {
        let run = annals_log(command, None);
        assert!(
            run.stderr.contains("the end of the log is torn") && run.stderr.contains(SEGMENT_0),
            "{command:?} did not say the log is torn: {}",
            run.stderr
        );
        let mut quiet = vec!["-q"];
        quiet.extend_from_slice(command);
        let run = annals_log(&quiet, None);
        assert!(
            !run.stderr.contains("the end of the log is torn"),
            "{quiet:?} was not quiet: {}",
            run.stderr
        );
    }
    assert_eq!(std::fs::read(tmp.path().join(SEGMENT_0)).unwrap(), before);
}
