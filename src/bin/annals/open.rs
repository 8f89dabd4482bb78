//! Opening a store the way every command needs it, with the errors a user
//! can act on: a missing directory or an empty one is "not found" (exit 3),
//! and a file or a directory holding strangers is "not a store" (exit 7),
//! neither of them a corruption report.

use std::path::{Path, PathBuf};

use annals::Store;

use crate::exit::{Code, Failure};
use crate::segments;

/// Fails with [`Code::NotFound`] unless `dir` is an existing directory,
/// and with [`Code::NotAStore`] when it is a file or holds an entry annals
/// does not make.
pub fn require_dir(dir: &Path) -> Result<(), Failure> {
    require_dir_hint(dir, "")
}

/// [`require_dir`], with `hint` after the "not found" message.
fn require_dir_hint(dir: &Path, hint: &str) -> Result<(), Failure> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => require_only_annals_entries(dir),
        Ok(_) => Err(not_a_store(dir, "is a file, not a directory".to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::new(
            Code::NotFound,
            format!("no such directory: {}{hint}", dir.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(not_a_store(
            dir,
            "cannot be a directory: a part of the path is a file".to_owned(),
        )),
        Err(e) => Err(Failure::new(
            Code::Failure,
            format!("cannot inspect {}: {e}", dir.display()),
        )),
    }
}

/// Fails with [`Code::NotAStore`] when `dir` holds an entry that is not
/// one of annals' files (FORMAT.md, "The data directory").
///
/// Opening the store checks this too; the check is repeated here because
/// `dump` reads one segment file without opening the store, and because a
/// directory of strangers and no segments is "not a store" rather than
/// "no store here" for every command alike.
fn require_only_annals_entries(dir: &Path) -> Result<(), Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::new(Code::Failure, format!("cannot list {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            Failure::new(Code::Failure, format!("cannot list {}: {e}", dir.display()))
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !annals_name(&name) {
            return Err(not_a_store(
                dir,
                format!(
                    "holds {name:?}, which annals did not make (only LOCK, segment files, \
                     lost+found and names starting with '.' belong there)"
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a data directory may hold an entry called `name`: the lock, a
/// segment (`NNNNNNNNNNNNNNNNNNNN.seg`, also with `.tmp` while it is being
/// prepared), or one of the entries annals ignores, `lost+found` and
/// names starting with `.`.
fn annals_name(name: &str) -> bool {
    let segment = name.strip_suffix(".tmp").unwrap_or(name);
    let numbered = (segment
        .strip_suffix(".seg")
        .or_else(|| segment.strip_suffix(".idx")))
    .is_some_and(|digits| {
        digits.len() == 20
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u64>().is_ok()
    });
    name == "LOCK" || numbered || name == "lost+found" || name.starts_with('.')
}

/// The failure of a path that is not a data directory, worded as the
/// library words [`annals::Error::NotAStore`].
fn not_a_store(dir: &Path, reason: String) -> Failure {
    Failure::from(annals::Error::NotAStore {
        path: PathBuf::from(dir),
        reason,
    })
}

/// Fails with [`Code::NotFound`] unless `dir` is a directory holding at
/// least one segment file.
pub fn require_store(dir: &Path, hint: &str) -> Result<(), Failure> {
    require_dir_hint(dir, hint)?;
    if segments::list(dir)?.is_empty() {
        return Err(Failure::new(
            Code::NotFound,
            format!("no annals store in {}{hint}", dir.display()),
        ));
    }
    Ok(())
}

/// Opens the store in `dir` read-only: no lock is taken, so this works
/// while another process writes, and nothing on disk is modified.
///
/// A torn tail is announced on standard error (through `tracing`, so `-q`
/// silences it): the read-only view ends before it, and the next writable
/// open drops it, so the positions it claimed will be reused.
pub fn reader(dir: &Path) -> Result<Store, Failure> {
    require_store(dir, "")?;
    let store = Store::open_read_only(dir)?;
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
        require_store(dir, " (pass --create to start one)")?;
    }
    Ok(Store::open(dir)?)
}
