//! The crash tests' harness: a child process running one test of this test
//! binary again (the test tells child from parent by its environment), its
//! standard output arriving on a channel one whole line at a time, and its
//! standard error kept for the end.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;

/// A running child; see the module docs.
pub struct TestChild {
    process: Child,
    /// The child's lines of standard output, as they come. A line is sent
    /// only once its newline is read: a kill can never hand the parent a
    /// line cut short (`ack 1` of `ack 12`).
    pub lines: Receiver<String>,
    reader: JoinHandle<()>,
    errors: JoinHandle<String>,
}

/// What a [`TestChild`] left when it was killed.
pub struct Ended {
    /// The lines it wrote that were not taken from [`TestChild::lines`].
    pub lines: Vec<String>,
    /// How it ended: killed, or on its own before the kill.
    pub status: ExitStatus,
    /// All it wrote to standard error.
    pub stderr: String,
}

impl TestChild {
    /// Runs the test named `test` of this binary alone in a child process,
    /// with `envs` set.
    pub fn spawn(test: &str, envs: &[(&str, String)]) -> TestChild {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel::<String>();
        let mut stdout = BufReader::new(process.stdout.take().unwrap());
        let reader = std::thread::spawn(move || {
            let mut line = Vec::new();
            while stdout.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if let Some(whole) = line.strip_suffix(b"\n")
                    && tx
                        .send(String::from_utf8_lossy(whole).into_owned())
                        .is_err()
                {
                    break;
                }
                line.clear();
            }
        });
        let mut stderr = process.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        TestChild {
            process,
            lines,
            reader,
            errors,
        }
    }

    /// Kills the child with SIGKILL (no chance to clean up; an error only
    /// means it had ended already), waits for it, and returns what it left.
    pub fn kill(mut self) -> Ended {
        let _ = self.process.kill();
        self.reader.join().unwrap();
        let lines = self.lines.try_iter().collect();
        let status = self.process.wait().unwrap();
        let stderr = self.errors.join().unwrap();
        Ended {
            lines,
            status,
            stderr,
        }
    }
}
