//! Opening a store the way every command needs it, with the errors a user
//! can act on: a missing directory or an empty one is "not found" (exit 3),
//! not a corruption report.

use std::path::Path;

use annals::Store;

use crate::exit::{Code, Failure};
use crate::segments;

/// Fails with [`Code::NotFound`] unless `dir` is an existing directory.
pub fn require_dir(dir: &Path) -> Result<(), Failure> {
    require_dir_hint(dir, "")
}

/// [`require_dir`], with `hint` after the message.
fn require_dir_hint(dir: &Path, hint: &str) -> Result<(), Failure> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Failure::new(
            Code::NotFound,
            format!("{} is not a directory{hint}", dir.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::new(
            Code::NotFound,
            format!("no such directory: {}{hint}", dir.display()),
        )),
        Err(e) => Err(Failure::new(
            Code::Failure,
            format!("cannot inspect {}: {e}", dir.display()),
        )),
    }
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
pub fn reader(dir: &Path) -> Result<Store, Failure> {
    require_store(dir, "")?;
    Ok(Store::open_read_only(dir)?)
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
