//! Exit codes and the one failure type every command returns.
//!
//! The codes are part of the tool's interface (scripts branch on them), so
//! they are listed once here, in `--help` and in the README, and never
//! reused for something else.

use std::fmt;
use std::io;

/// The text `--help` shows under "Exit codes"; it must match [`Code`].
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  any other failure (an I/O error, a poisoned store)
  2  bad arguments (also an invalid stream id, event type or event size, or a
     backup destination that is a file, the store, or holds something else)
  3  not found: no such directory, no annals store in it, no such stream (or one
     deleted for good) or segment
  4  locked: another process has the store open for writing
  5  corrupt: a file fails a check (the message names the file and byte offset),
     or the demo read back something other than what it wrote
  6  conflict: the stream's version did not pass --expected
  7  not a store: the path is a file, or a directory holding something annals
     did not make (it ignores only lost+found and names starting with '.')
  8  bad index (verify): every event checks out, but a segment index file does
     not; it is derived data: remove the file and the next writable open
     rebuilds it
  9  bad input (import): a line is not an event in the shape of export, or
     is longer than 8 MiB; the message gives its number, and nothing of its
     batch was written";

/// Why a command failed, as a process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Standard output was closed by its reader (`annals read ... | head`):
    /// not a failure, so the process exits 0 without a message.
    OutputClosed = 0,
    /// Anything not listed below: I/O errors, a poisoned store, a bug.
    Failure = 1,
    /// Bad arguments. Clap exits with 2 for the ones it catches itself.
    Usage = 2,
    /// No such directory, store, stream or segment.
    NotFound = 3,
    /// Another process holds the store's writer lock.
    Locked = 4,
    /// A file fails a check, or the demo read back the wrong thing.
    Corrupt = 5,
    /// An append's expected-version check failed.
    Conflict = 6,
    /// The path is a file, or a directory with an entry annals did not
    /// make: not a store, and not a corrupt one either.
    NotAStore = 7,
    /// `verify`: the segments check out, but a segment index file does
    /// not. Index files are derived data that reads rebuild from
    /// their segment, so this is not "corrupt": nothing stored is lost.
    BadIndex = 8,
    /// `import`: a line of the input is not an event (or is too long).
    /// The message names the line; nothing of its batch was written.
    BadInput = 9,
}

/// `examples` followed by the exit codes, for a command's `--help`.
pub fn with_codes(examples: &str) -> String {
    format!("{examples}\n\n{EXIT_CODES_HELP}")
}

/// A failed command: its exit code and the message for standard error.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: Code,
    /// What went wrong, for people; printed after `annals: `.
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A failure to write to standard output; a closed pipe is not an error.
    pub fn output(e: &io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::new(Code::OutputClosed, "")
        } else {
            Failure::new(
                Code::Failure,
                format!("cannot write to standard output: {e}"),
            )
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<annals::Error> for Failure {
    fn from(e: annals::Error) -> Failure {
        use annals::Error as E;
        let code = match &e {
            E::WrongExpectedVersion { .. } | E::DuplicateEventId { .. } => Code::Conflict,
            E::StreamNotFound { .. } | E::StreamDeleted { .. } => Code::NotFound,
            E::InvalidStreamId { .. }
            | E::InvalidEventType { .. }
            | E::LimitExceeded { .. }
            | E::InvalidOptions { .. }
            | E::InvalidLimits { .. }
            | E::CheckpointAhead { .. }
            | E::BackupDestination { .. } => Code::Usage,
            E::Corruption { .. } => Code::Corrupt,
            E::Locked { .. } => Code::Locked,
            E::NotAStore { .. } => Code::NotAStore,
            _ => Code::Failure,
        };
        let message = match &e {
            E::Corruption {
                file,
                offset,
                reason,
            } => corrupt_message(&file.display().to_string(), *offset, reason),
            E::Locked { path } => format!(
                "the store is locked: another process has it open for writing (lock file {}); \
                 read, tail, stats, verify and dump work while it does",
                path.display()
            ),
            other => other.to_string(),
        };
        Failure::new(code, message)
    }
}

/// The one wording of a corruption report, whoever found it.
pub fn corrupt_message(file: &str, offset: u64, reason: &str) -> String {
    format!("corrupt store: {file} at byte offset {offset}: {reason}")
}

/// `Ok` with the result of writing to standard output, or the failure that
/// a write error means.
pub fn out(result: io::Result<()>) -> Result<(), Failure> {
    result.map_err(|e| Failure::output(&e))
}
