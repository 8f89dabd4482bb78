//! Opening a store the way every command needs it, with the errors a user
//! can act on: a missing directory or one holding no store is "not found"
//! (exit 3), and a file or a directory holding strangers is "not a store"
//! (exit 7), neither of them a corruption report.
//!
//! Which entries belong in a data directory is the library's rule alone
//! (FORMAT.md, "The data directory"): every open, writable or read-only,
//! refuses a stranger with [`annals::Error::NotAStore`] before it creates or
//! changes anything, and the commands pass that error on. Where a command
//! must not open for writing (no store yet, and no `--create`) or reads a
//! file without opening the store (`dump`), it asks a read-only open, which
//! modifies nothing.

use std::path::Path;

use annals::{Options, Store};

use crate::exit::{Code, Failure};
use crate::segments;

/// Fails with [`Code::NotFound`] when nothing is at `dir`; what is there
/// is for an open to judge.
fn require_exists(dir: &Path, hint: &str) -> Result<(), Failure> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::new(
            Code::NotFound,
            format!("no such directory: {}{hint}", dir.display()),
        )),
        _ => Ok(()),
    }
}

/// Whether `dir` is a directory holding no segment file.
fn holds_no_segment(dir: &Path) -> bool {
    segments::list(dir).is_ok_and(|s| s.is_empty())
}

/// The failure of an open of `dir` that returned `e`: a stranger's
/// directory is "not a store" as the library says; any other refusal of a
/// directory without segments is "no annals store", with `hint` after it.
fn refusal(dir: &Path, e: annals::Error, hint: &str) -> Failure {
    if !matches!(e, annals::Error::NotAStore { .. }) && holds_no_segment(dir) {
        return Failure::new(
            Code::NotFound,
            format!("no annals store in {}{hint}", dir.display()),
        );
    }
    Failure::from(e)
}

/// Fails with [`Code::NotFound`] when `dir` does not exist, and with
/// [`Code::NotAStore`] when the library refuses it as no data directory
/// (a file, or a directory holding an entry annals did not make). For
/// `dump`, which reads one segment file without opening the store: any
/// other refusal (damage, say) is left for it to show.
///
/// The library's read-only open is the judge, so this scans the store as
/// `stats` does.
pub fn require_dir(dir: &Path) -> Result<(), Failure> {
    require_exists(dir, "")?;
    match Store::open_read_only(dir) {
        Err(e @ annals::Error::NotAStore { .. }) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Opens the store in `dir` read-only: no lock is taken, so this works
/// while another process writes, and nothing on disk is modified.
///
/// A torn tail is announced on standard error (through `tracing`, so `-q`
/// silences it): the read-only view ends before it, and the next writable
/// open drops it, so the positions it claimed will be reused.
pub fn reader(dir: &Path) -> Result<Store, Failure> {
    reader_with(dir, Options::default())
}

/// Opens the store in `dir` read-only, as [`reader`], with `options` (for
/// `tail`, its follow interval).
pub fn reader_with(dir: &Path, options: Options) -> Result<Store, Failure> {
    require_exists(dir, "")?;
    let store = Store::open_read_only_with(dir, options).map_err(|e| refusal(dir, e, ""))?;
    if let Some(torn) = &store.recovery_report().torn_tail {
        let claimed = match &torn.claimed_positions {
            Some(p) => format!("; its frame claimed positions {} to {}", p.start, p.end - 1),
            None => String::new(),
        };
        tracing::warn!(
            "the end of the log is torn: {} bytes at byte {} of {}{claimed}. Reads end \
             before it; the next writable open drops it and reuses its positions (or a \
             live writer is writing it right now)",
            torn.bytes,
            torn.offset,
            torn.file.display()
        );
    }
    Ok(store)
}

/// Opens the store in `dir` for writing, taking its lock. Without
/// `create`, the store must already exist, so that a mistyped path is an
/// error rather than a new store.
pub fn writer(dir: &Path, create: bool) -> Result<Store, Failure> {
    if !create {
        let hint = " (pass --create to start one)";
        require_exists(dir, hint)?;
        if holds_no_segment(dir) {
            // A writable open would start a store here. The read-only one
            // modifies nothing and refuses a stranger's directory as the
            // writable one would; refusing an empty one, it means no store.
            Store::open_read_only(dir).map_err(|e| refusal(dir, e, hint))?;
        }
    }
    Ok(Store::open(dir)?)
}
