//! Helpers shared by the `cli*.rs` tests: run the built `annals` binary as
//! a user would, follow a long-running one, and snapshot a directory's
//! bytes.

#![allow(dead_code, reason = "each test file uses a different part of this")]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// One snapshot helper for every test: the fixture's.
#[path = "../fixture/mod.rs"]
mod fixture;
#[allow(unused_imports, reason = "not every CLI test takes snapshots")]
pub use fixture::snapshot;

/// The binary under test.
pub const ANNALS: &str = env!("CARGO_BIN_EXE_annals");

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code; `None` if a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `annals` with `args` and no standard input.
pub fn annals<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    annals_with_stdin(args, b"")
}

/// Runs `annals` with `args`, feeding `stdin` to it.
pub fn annals_with_stdin<I, S>(args: I, stdin: &[u8]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(ANNALS)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn annals");
    let mut input = child.stdin.take().expect("stdin");
    // A command that does not read its input may exit first: ignore EPIPE.
    let _ = input.write_all(stdin);
    drop(input);
    let output = child.wait_with_output().expect("wait for annals");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Asserts that `run` exited with `code`, showing its output otherwise.
#[track_caller]
pub fn assert_code(run: &Run, code: i32) {
    assert_eq!(
        run.code,
        Some(code),
        "expected exit code {code}\n--- stdout:\n{}\n--- stderr:\n{}",
        run.stdout,
        run.stderr
    );
}

/// `dir` as text; test directories are UTF-8.
pub fn path(dir: &Path) -> &str {
    dir.to_str().expect("a UTF-8 test path")
}

/// Appends `count` one-event batches to stream `s` of `dir` (creating the
/// store) through the CLI, each a frame of its own, checking that none of
/// them warned; returns the frames of segment 0.
pub fn one_event_frames(dir: &Path, count: usize) -> Vec<(u64, u64)> {
    for i in 0..count {
        let data = format!("payload number {i}");
        let run = annals([
            "append",
            path(dir),
            "s",
            "--type",
            "T",
            "--data",
            &data,
            "--create",
        ]);
        assert_code(&run, 0);
        assert!(
            run.stderr.is_empty(),
            "a clean append warned: {}",
            run.stderr
        );
    }
    let frames = frames(dir, 0);
    assert_eq!(frames.len(), count);
    frames
}

/// The frames of a segment as `annals dump` lists them: (offset, length).
pub fn frames(dir: &Path, segment: u64) -> Vec<(u64, u64)> {
    let run = annals(["dump", path(dir), "--segment", &segment.to_string()]);
    assert_code(&run, 0);
    run.stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("offset ")?;
            let (offset, rest) = rest.split_once(": frame of ")?;
            let (len, _) = rest.split_once(' ')?;
            Some((offset.parse().ok()?, len.parse().ok()?))
        })
        .collect()
}

/// The first `byte offset N` in `text`.
pub fn reported_offset(text: &str) -> Option<u64> {
    let (_, rest) = text.split_once("byte offset ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A long-running `annals` (such as `tail`) whose standard output is read
/// line by line on a thread, so the test can wait for lines with a
/// deadline instead of sleeping. Killed when dropped.
pub struct Follower {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Follower {
    /// Starts `annals` with `args`.
    pub fn start<I, S>(args: I) -> Follower
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(ANNALS)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn annals");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = String::new();
            let _ = err.read_to_string(&mut buf);
            sink.lock().expect("stderr sink").push_str(&buf);
        });
        Follower {
            child,
            lines,
            stderr,
        }
    }

    /// Waits for `n` more lines, failing the test at `deadline`.
    #[track_caller]
    pub fn expect_lines(&mut self, n: usize, deadline: Instant) -> Vec<String> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => got.push(line),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out with {} of {n} lines: {got:#?}\nstderr: {}",
                    got.len(),
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the process closed its output after {} of {n} lines ({:?}): {got:#?}\nstderr: {}",
                    got.len(),
                    self.child.try_wait(),
                    self.stderr()
                ),
            }
        }
        got
    }

    /// Lines already printed beyond those taken, without waiting.
    pub fn pending(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A deadline `secs` seconds from now.
pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Removes the segment index files of `dir`, leaving the store as a crash
/// leaves it (no clean close's index of the active segment), so that the
/// next open scans the segments.
pub fn remove_indexes(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "idx") {
            std::fs::remove_file(path).unwrap();
        }
    }
}
