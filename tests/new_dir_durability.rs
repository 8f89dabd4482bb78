//! Guards the durability of a data directory that `open` creates, with
//! the directories above it that were missing too.
//!
//! A new directory survives a crash only once the directory holding its
//! entry is synced. `Store::open("a/b/data")` on a machine where only the
//! parent of `a` existed used to sync `a/b` alone (the parent of `data`),
//! so a power cut could take `a` with the store in it, after appends had
//! been acknowledged as durable. Every directory created must be synced,
//! and so must the parent of the topmost one.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use annals::io::{FileIo, RealIo};
use annals::{EventData, ExpectedVersion, Options, Store};

/// The real file system, recording every directory sync.
#[derive(Debug, Default)]
struct RecordingIo {
    synced_dirs: Mutex<Vec<PathBuf>>,
}

impl RecordingIo {
    fn synced_dirs(&self) -> Vec<PathBuf> {
        self.synced_dirs.lock().unwrap().clone()
    }
}

impl FileIo for RecordingIo {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        RealIo.create_new(path)
    }

    fn write_at(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        RealIo.write_at(file, path, buf, offset)
    }

    fn sync_data(&self, file: &File, path: &Path) -> io::Result<()> {
        RealIo.sync_data(file, path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealIo.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealIo.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.synced_dirs.lock().unwrap().push(dir.to_path_buf());
        RealIo.sync_dir(dir)
    }
}

/// Opens a store in `dir` through a recording I/O, appends one event and
/// closes it; returns the directories synced, in order.
fn open_and_append(dir: &Path) -> Vec<PathBuf> {
    let io = Arc::new(RecordingIo::default());
    let options = Options::default()
        .segment_size(64 << 10)
        .prepare_segments_ahead(false)
        .file_io(io.clone());
    let store = Store::open_with(dir, options).unwrap();
    store
        .append(
            "s",
            ExpectedVersion::Any,
            &[EventData::new("T", b"x".to_vec())],
        )
        .unwrap();
    store.close().unwrap();
    io.synced_dirs()
}

#[test]
fn every_created_directory_and_the_parent_of_the_topmost_are_synced() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    let b = a.join("b");
    let data = b.join("data");
    let synced = open_and_append(&data);
    for dir in [&data, &b, &a, &root.path().to_path_buf()] {
        assert!(
            synced.contains(dir),
            "{} was not synced; synced: {synced:#?}",
            dir.display()
        );
    }
    // Each directory is synced before the one holding its entry, so that
    // no synced entry names a directory whose own entries may be lost.
    let at = |dir: &Path| synced.iter().position(|d| d == dir).unwrap();
    assert!(at(&data) < at(&b) && at(&b) < at(&a) && at(&a) < at(root.path()));
}

#[test]
fn only_what_was_created_is_synced_beyond_the_store_itself() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    std::fs::create_dir(&a).unwrap();
    let data = a.join("b").join("data");
    let synced = open_and_append(&data);
    for dir in [&data, &a.join("b"), &a] {
        assert!(
            synced.contains(dir),
            "{} was not synced; synced: {synced:#?}",
            dir.display()
        );
    }
    // `a` existed, so the directory holding it has nothing new to sync.
    assert!(
        !synced.iter().any(|d| d == root.path()),
        "the parent of an existing directory was synced: {synced:#?}"
    );

    // A store that exists creates no directory, and syncs none above it.
    let again = open_and_append(&data);
    assert!(
        again.iter().all(|d| d == &data),
        "reopening synced directories above the store: {again:#?}"
    );
}
