//! The file I/O seam. Every call that changes what is on disk goes through a
//! [`FileIo`], so that tests can fail an operation, or stop the world after
//! one and look at what a power cut would have left. Reads go through the
//! memory maps and are not part of the seam.
//!
//! The real implementation, [`RealIo`], is a direct call into `std`; the
//! only cost of the seam is one dynamic call per operation, nothing beside
//! the `fdatasync` each append pays anyway.
//!
//! This module is public for annals' own fault and crash tests. It is not a
//! stable API.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The mode of files annals creates: the owner reads and writes, nobody
/// else. Event data is often personal data.
pub const FILE_MODE: u32 = 0o600;
/// The mode of a data directory annals creates.
pub const DIR_MODE: u32 = 0o700;

/// The operations that change files, one method each.
///
/// Implementations must behave like the `std` call they stand for, or fail
/// it with an error; they must not panic.
pub trait FileIo: Send + Sync + fmt::Debug {
    /// Creates `path`, which must not exist, for reading and writing with
    /// mode [`FILE_MODE`].
    fn create_new(&self, path: &Path) -> io::Result<File>;

    /// Writes all of `buf` at `offset` of `file` (a positioned write).
    fn write_at(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Sets the length of `file` to `len` bytes (`ftruncate`); annals only
    /// ever grows a new file with it, which leaves a hole that reads as
    /// zeros. The default calls `std` directly.
    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        let _ = path;
        file.set_len(len)
    }

    /// Makes the data of `file` durable (`fdatasync`).
    fn sync_data(&self, file: &File, path: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, replacing nothing (`to` must not exist).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Renames `from` over `to`, replacing `to` atomically if it exists
    /// (`rename(2)`): a scavenge's rewritten segment takes the old file's
    /// place, so that a crash leaves the one or the other, never neither.
    /// The default calls `std` directly.
    fn rename_over(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Makes the entries of directory `dir` durable (`fsync` of the
    /// directory), after a file in it was created, renamed or removed.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The file system as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealIo;

impl FileIo for RealIo {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(path)
    }

    fn write_at(&self, file: &File, _path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    fn sync_data(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_data()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if to.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "rename target already exists",
            ));
        }
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
