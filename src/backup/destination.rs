//! Where a backup may go: a new or empty directory, or an earlier backup
//! of the same store; never a file, the store itself, a place inside it or
//! holding it, or a directory holding anything else. Checked before
//! anything is created or changed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::index::persist::{BASE_FILE, CATALOG_FILE, INDEX_SUFFIX};
use crate::log::recovery::LOCK_FILE;

use super::manifest::Manifest;
use super::{MANIFEST, MARKER};

/// What the destination held before the run.
pub(super) struct Found {
    pub(super) exists: bool,
    /// An earlier run was cut short.
    pub(super) marker: bool,
}

/// Refuses a destination that is no place for a backup, changing nothing:
/// a file, the store itself or a place inside it, a directory holding the
/// store, a directory holding anything but a backup, or a backup of
/// another store (whose segments would all be replaced).
pub(super) fn check_destination(origin: &Path, dest: &Path, store_id: u64) -> Result<Found, Error> {
    let refuse = |reason: &str| Error::BackupDestination {
        path: dest.to_path_buf(),
        reason: reason.to_owned(),
    };
    let origin =
        fs::canonicalize(origin).map_err(|e| Error::io("resolve store path", origin, e))?;
    let resolved = resolve(dest).map_err(|e| Error::io("resolve backup path", dest, e))?;
    if resolved == origin {
        return Err(refuse("is the store itself"));
    }
    if resolved.starts_with(&origin) {
        return Err(refuse("is inside the store, where it would be a stranger"));
    }
    if origin.starts_with(&resolved) {
        return Err(refuse("holds the store"));
    }
    let meta = match fs::metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Found {
                exists: false,
                marker: false,
            });
        }
        Err(e) => return Err(Error::io("inspect backup destination", dest, e)),
    };
    if !meta.is_dir() {
        return Err(refuse("is a file, not a directory"));
    }
    let mut ours = false;
    let mut marker = false;
    let mut stranger = None;
    let mut annals_files = false;
    let entries = fs::read_dir(dest).map_err(|e| Error::io("list backup destination", dest, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list backup destination", dest, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.as_str() {
            MANIFEST => ours = true,
            MARKER => {
                ours = true;
                marker = true;
            }
            LOCK_FILE | "lost+found" => {}
            n if n.starts_with('.') => {}
            n if is_store_file(n) => annals_files = true,
            _ => {
                stranger.get_or_insert(name);
            }
        }
    }
    if let Some(name) = stranger {
        return Err(refuse(&format!(
            "holds {name:?}, which is not part of a backup; back up into a new or empty \
             directory, or into an earlier backup"
        )));
    }
    if annals_files && !ours {
        return Err(refuse(
            "holds an annals store that is not a backup (it has no backup manifest); \
             back up into a new or empty directory, or into an earlier backup",
        ));
    }
    if let Some(other) = Manifest::read(dest).filter(|m| m.store_id != store_id) {
        return Err(refuse(&format!(
            "holds a backup of another store (id {:#018x}; this one is {store_id:#018x}); \
             back up into a new or empty directory, or into an earlier backup of this store",
            other.store_id
        )));
    }
    Ok(Found {
        exists: true,
        marker,
    })
}

/// Names a store or backup directory holds: segments, index files, the
/// catalog, the log's base, and their temporary names.
pub(super) fn is_store_file(name: &str) -> bool {
    let name = name.strip_suffix(".tmp").unwrap_or(name);
    let digits = name
        .strip_suffix(".seg")
        .or_else(|| name.strip_suffix(INDEX_SUFFIX));
    name == CATALOG_FILE
        || name == BASE_FILE
        || digits.is_some_and(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `path` made absolute with symlinks resolved, as far as it exists: the
/// nearest existing ancestor resolved, and the missing rest appended.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut missing = Vec::new();
    let mut at = absolute.as_path();
    loop {
        match fs::canonicalize(at) {
            Ok(mut resolved) => {
                resolved.extend(missing.iter().rev());
                return Ok(resolved);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (at.parent(), at.file_name()) else {
                    return Err(e);
                };
                missing.push(name.to_owned());
                at = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_files_are_told_from_strangers() {
        assert!(is_store_file("00000000000000000001.seg"));
        assert!(is_store_file("00000000000000000001.seg.tmp"));
        assert!(is_store_file("00000000000000000001.idx"));
        assert!(is_store_file("00000000000000000001.idx.tmp"));
        assert!(is_store_file("catalog"));
        assert!(!is_store_file("1.seg"));
        assert!(!is_store_file("notes.txt"));
    }
}
