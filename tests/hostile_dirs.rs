//! Guards `open` against data directories it did not make: a symlinked
//! segment, a segment of the wrong size, foreign or non-canonical file
//! names, missing segment numbers, a directory where a file belongs, a data
//! path that is a file. Each is refused with a clear typed error naming the
//! culprit (`NotAStore` for a stranger or a file, `Corruption` for damage
//! to the store's own files), nothing in the directory is modified, and
//! nothing outside it is touched (symlink targets stay byte for byte as
//! they were). The two kinds of entry annals ignores, `lost+found` and
//! dot-files, are left alone and do not stop a store from working. Also
//! checks the modes annals gives what it creates: 0700 for the data
//! directory, 0600 for its files.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use annals::io::{DIR_MODE, FILE_MODE};
use annals::{Error, Options, Store};
use common::{Workload, seed};

const SEGMENT_SIZE: u64 = 4096;

fn options() -> Options {
    Options::default().segment_size(SEGMENT_SIZE)
}

fn segment_name(n: u64) -> String {
    format!("{n:020}.seg")
}

/// A store of at least `segments` segments in a fresh directory, closed,
/// from a seeded workload (so the segments' fill varies from run to run).
fn store_with_segments(segments: u64) -> (tempfile::TempDir, Workload) {
    let w = Workload {
        seed: seed("hostile_dirs"),
        streams: 3,
        max_data: 600,
        max_batch: 3,
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options().prepare_segments_ahead(false)).unwrap();
    let mut i = 0;
    while store.stats().segments < segments {
        let stream = w.stream_name(i % w.streams);
        let v = store.stream_version(&stream).map_or(0, |v| v + 1);
        store
            .append(&stream, Workload::expected(v), &w.batch(&stream, v))
            .unwrap();
        i += 1;
    }
    // One more append, so that the last segment holds data too.
    let stream = w.stream_name(0);
    let v = store.stream_version(&stream).map_or(0, |v| v + 1);
    store
        .append(&stream, Workload::expected(v), &w.batch(&stream, v))
        .unwrap();
    store.close().unwrap();
    (dir, w)
}

/// Everything observable about the entries of a directory: kind, mode,
/// bytes or link target.
fn snapshot(dir: &Path) -> BTreeMap<String, (String, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode();
        let (kind, bytes) = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            ("symlink", target.into_os_string().into_encoded_bytes())
        } else if meta.is_dir() {
            ("dir", Vec::new())
        } else {
            ("file", std::fs::read(&path).unwrap())
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        out.insert(name, (kind.to_owned(), mode, bytes));
    }
    out
}

/// Asserts that opening `dir`, writable and read-only, fails with
/// `Corruption` naming `culprit`, and that nothing in `dir` or in `outside`
/// changed.
fn assert_refused(dir: &Path, culprit: &Path, outside: Option<&Path>) {
    let before = snapshot(dir);
    let outside_before = outside.map(snapshot);
    for read_only in [false, true] {
        let result = if read_only {
            Store::open_read_only(dir)
        } else {
            Store::open_with(dir, options())
        };
        match result {
            Err(Error::Corruption { file, reason, .. }) => {
                assert_eq!(file, culprit, "the error must name the culprit ({reason})");
                let message = Error::Corruption {
                    file: file.clone(),
                    offset: 0,
                    reason: reason.clone(),
                }
                .to_string();
                assert!(message.contains(&*culprit.to_string_lossy()), "{message}");
            }
            Err(other) => panic!("expected Corruption naming {culprit:?}, got {other:?}"),
            Ok(_) => panic!("a hostile directory was opened (read_only: {read_only})"),
        }
        assert_eq!(snapshot(dir), before, "the data directory was modified");
        if let (Some(outside), Some(b)) = (outside, &outside_before) {
            assert_eq!(
                &snapshot(outside),
                b,
                "a file outside the data directory changed"
            );
        }
    }
}

/// Asserts that opening `dir`, writable and read-only, fails with
/// `NotAStore` for `dir` naming the entry `name`, and that nothing in `dir`
/// changed.
fn assert_not_a_store(dir: &Path, name: &str) {
    let before = snapshot(dir);
    for read_only in [false, true] {
        let result = if read_only {
            Store::open_read_only(dir)
        } else {
            Store::open_with(dir, options())
        };
        match result {
            Err(e @ Error::NotAStore { .. }) => {
                let message = e.to_string();
                assert!(
                    message.starts_with("not an annals data directory: ")
                        && message.contains(&*dir.to_string_lossy())
                        && message.contains(name),
                    "the message must name the directory and {name}: {message}"
                );
                if let Error::NotAStore { path, .. } = e {
                    assert_eq!(path, dir);
                }
            }
            Err(other) => panic!("expected NotAStore naming {name}, got {other:?}"),
            Ok(_) => panic!("a directory holding {name} was opened (read_only: {read_only})"),
        }
        assert_eq!(snapshot(dir), before, "the data directory was modified");
    }
}

/// Where the tests put files that the data directory points at.
fn outside() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_symlinked_segment_is_refused_and_its_target_untouched() {
    for victim in [0u64, 1, 2] {
        let (dir, _) = store_with_segments(3);
        let elsewhere = outside();
        let segment = dir.path().join(segment_name(victim));
        let target = elsewhere.path().join("real.seg");
        std::fs::rename(&segment, &target).unwrap();
        symlink(&target, &segment).unwrap();
        assert_refused(dir.path(), &segment, Some(elsewhere.path()));
    }
}

#[test]
fn a_symlinked_temp_segment_is_refused_and_its_target_not_removed() {
    let (dir, _) = store_with_segments(2);
    let elsewhere = outside();
    let target = elsewhere.path().join("precious");
    std::fs::write(&target, b"not yours").unwrap();
    let temp = dir.path().join(format!("{}.tmp", segment_name(2)));
    symlink(&target, &temp).unwrap();
    assert_refused(dir.path(), &temp, Some(elsewhere.path()));
    assert_eq!(std::fs::read(&target).unwrap(), b"not yours");
}

#[test]
fn a_symlinked_lock_file_creates_nothing_outside() {
    let (dir, _) = store_with_segments(1);
    let elsewhere = outside();
    let lock = dir.path().join("LOCK");
    std::fs::remove_file(&lock).unwrap();
    let target = elsewhere.path().join("created-by-annals");
    symlink(&target, &lock).unwrap();
    let result = Store::open_with(dir.path(), options());
    assert!(
        !target.exists(),
        "open followed the LOCK symlink and created {} outside the data directory ({:?})",
        target.display(),
        result.as_ref().map(|_| ())
    );
}

#[test]
fn a_segment_of_the_wrong_size_is_refused() {
    for (victim, new_len) in [(0u64, SEGMENT_SIZE + 4096), (1, SEGMENT_SIZE - 8), (2, 100)] {
        let (dir, _) = store_with_segments(3);
        let segment = dir.path().join(segment_name(victim));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        file.set_len(new_len).unwrap();
        assert_refused(dir.path(), &segment, None);
    }
}

#[test]
fn foreign_and_non_canonical_file_names_are_refused() {
    let names = [
        "notes.txt",
        "1.seg",
        "0000000000000000001.seg",
        "000000000000000000001.seg",
        "00000000000000000001.SEG",
        "0000000000000000000a.seg",
        "00000000000000000001.seg.bak",
        "00000000000000000001.tmp",
        "99999999999999999999.seg",
        "LOCK.old",
        "lost+found.seg",
    ];
    for name in names {
        let (dir, _) = store_with_segments(2);
        let path = dir.path().join(name);
        // A copy of a real segment, so that only the name is wrong.
        std::fs::copy(dir.path().join(segment_name(1)), &path).unwrap();
        assert_not_a_store(dir.path(), name);
    }
}

#[test]
fn a_stranger_in_a_fresh_directory_is_refused_before_anything_is_created() {
    for stranger_is_dir in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let foo = dir.path().join("foo");
        if stranger_is_dir {
            std::fs::create_dir(&foo).unwrap();
        } else {
            std::fs::write(&foo, b"someone else's").unwrap();
        }
        assert_not_a_store(dir.path(), "foo");
        assert_eq!(common::file_names(dir.path()), vec!["foo".to_owned()]);
    }
}

#[test]
fn lost_and_found_and_dot_files_are_ignored() {
    let w = Workload {
        seed: 11,
        streams: 2,
        max_data: 600,
        max_batch: 3,
    };
    let append = |store: &Store, i: usize| {
        let stream = w.stream_name(i % w.streams);
        let v = store.stream_version(&stream).map_or(0, |v| v + 1);
        store
            .append(&stream, Workload::expected(v), &w.batch(&stream, v))
            .unwrap();
    };
    // Only the entries annals ignores, with their kinds and bytes.
    let ignored = |d: &Path| {
        let mut s = snapshot(d);
        s.retain(|name, _| name == "lost+found" || name.starts_with('.'));
        s
    };
    for fresh in [true, false] {
        let dir = if fresh {
            tempfile::tempdir().unwrap()
        } else {
            store_with_segments(2).0
        };
        let d = dir.path();
        // What a fresh ext4 file system has at its root, and dot-files of
        // every kind: a file, a directory with something in it, a dangling
        // symlink.
        std::fs::create_dir(d.join("lost+found")).unwrap();
        std::fs::write(d.join(".gitkeep"), b"").unwrap();
        std::fs::create_dir(d.join(".snapshots")).unwrap();
        std::fs::write(d.join(".snapshots").join("inside"), b"x").unwrap();
        symlink("/nonexistent", d.join(".DS_Store")).unwrap();
        let before = ignored(d);
        assert_eq!(before.len(), 4);

        let store = Store::open_with(d, options()).unwrap();
        let had = store.global_position();
        for i in 0..10 {
            append(&store, i);
        }
        let written = store.read_all(0, usize::MAX).unwrap();
        assert!(written.len() as u64 > had);
        store.close().unwrap();

        let reopened = Store::open_with(d, options()).unwrap();
        assert_eq!(reopened.read_all(0, usize::MAX).unwrap(), written);
        append(&reopened, 10);
        let all = reopened.read_all(0, usize::MAX).unwrap();
        assert!(all.len() > written.len());
        let reader = Store::open_read_only(d).unwrap();
        assert_eq!(reader.read_all(0, usize::MAX).unwrap(), all);
        drop(reader);
        reopened.close().unwrap();

        assert_eq!(ignored(d), before, "annals touched an entry it ignores");
        assert_eq!(
            std::fs::read(d.join(".snapshots").join("inside")).unwrap(),
            b"x"
        );
    }
}

#[test]
fn missing_segment_numbers_are_refused() {
    for missing in [0u64, 1, 2] {
        let (dir, _) = store_with_segments(4);
        std::fs::remove_file(dir.path().join(segment_name(missing))).unwrap();
        assert_refused(dir.path(), &dir.path().join(segment_name(missing)), None);
    }
}

#[test]
fn a_directory_where_a_segment_belongs_is_refused() {
    for name in [
        segment_name(1),
        segment_name(3),
        format!("{}.tmp", segment_name(3)),
    ] {
        let (dir, _) = store_with_segments(3);
        let path = dir.path().join(&name);
        if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        assert_refused(dir.path(), &path, None);
        assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"x");
    }
}

#[test]
fn a_data_path_that_is_a_file_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let path = parent.path().join("data");
    std::fs::write(&path, b"a file, not a store").unwrap();
    for read_only in [false, true] {
        let result = if read_only {
            Store::open_read_only(&path)
        } else {
            Store::open_with(&path, options())
        };
        match result {
            Err(Error::NotAStore { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains("is a file"), "{reason}");
            }
            other => panic!("a file as the data path: {:?}", other.map(|_| ())),
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"a file, not a store");
    }
    // A path through the file cannot be a directory either.
    let below = path.join("data");
    match Store::open_with(&below, options()) {
        Err(Error::NotAStore { path: p, .. }) => assert_eq!(p, below),
        other => panic!("a path through a file: {:?}", other.map(|_| ())),
    }
    assert_eq!(common::file_names(parent.path()), vec!["data".to_owned()]);
}

#[test]
fn files_are_created_0600_and_the_data_directory_0700() {
    assert_eq!((FILE_MODE, DIR_MODE), (0o600, 0o700));
    let parent = tempfile::tempdir().unwrap();
    // A permissive umask must not widen the modes.
    // SAFETY: umask only swaps the process's file mode mask; tests that run
    // in parallel create files with explicit modes or do not care.
    let old = unsafe { libc::umask(0) };
    let dir: PathBuf = parent.path().join("data");
    let result = std::panic::catch_unwind(|| {
        let w = Workload {
            seed: seed("hostile_dirs_modes"),
            streams: 2,
            max_data: 600,
            max_batch: 2,
        };
        // Segments made on the appending thread and in the background.
        let store = Store::open_with(&dir, options()).unwrap();
        let mut i = 0;
        while store.stats().segments < 4 {
            let stream = w.stream_name(i % w.streams);
            let v = store.stream_version(&stream).map_or(0, |v| v + 1);
            store
                .append(&stream, Workload::expected(v), &w.batch(&stream, v))
                .unwrap();
            i += 1;
        }
        store.close().unwrap();
    });
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "data directory mode");
    let names = common::file_names(&dir);
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        assert_eq!(mode(&dir.join(&name)), 0o600, "mode of {name}");
    }
}
