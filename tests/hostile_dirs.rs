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
mod fixture;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use annals::io::{DIR_MODE, FILE_MODE};
use annals::{Error, Options, Store};
use common::{Workload, seed};
use fixture::snapshot;

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
        w.append_next(&store, i).unwrap();
        i += 1;
    }
    // One more append, so that the last segment holds data too.
    w.append_next(&store, 0).unwrap();
    store.close().unwrap();
    (dir, w)
}

/// How both opens must refuse a hostile directory.
#[derive(Debug)]
enum Refusal {
    /// `Corruption` naming this file: damage to the store's own files.
    Corruption(PathBuf),
    /// `NotAStore` for the directory, naming this entry: a stranger.
    NotAStore(String),
}

/// Opens `dir` for writing, or read-only.
fn open(dir: &Path, read_only: bool) -> Result<Store, Error> {
    if read_only {
        Store::open_read_only(dir)
    } else {
        Store::open_with(dir, options())
    }
}

/// Asserts that opening `dir`, writable and read-only, is refused as `want`
/// says, with a message naming the culprit, and that nothing in `dir` or in
/// `outside` changed.
fn assert_refused(dir: &Path, want: &Refusal, outside: &Path) {
    let before = (snapshot(dir), snapshot(outside));
    for read_only in [false, true] {
        let e = match open(dir, read_only) {
            Ok(_) => panic!("a hostile directory was opened ({want:?}, read_only: {read_only})"),
            Err(e) => e,
        };
        let message = e.to_string();
        match (want, &e) {
            (Refusal::Corruption(culprit), Error::Corruption { file, reason, .. }) => {
                assert_eq!(file, culprit, "the error must name the culprit ({reason})");
                assert!(message.contains(&*culprit.to_string_lossy()), "{message}");
            }
            (Refusal::NotAStore(name), Error::NotAStore { path, .. }) => {
                assert_eq!(path, dir);
                assert!(
                    message.starts_with("not an annals data directory: ")
                        && message.contains(&*dir.to_string_lossy())
                        && message.contains(name.as_str()),
                    "the message must name the directory and {name}: {message}"
                );
            }
            _ => panic!("expected {want:?}, got {e:?}"),
        }
        assert_eq!(
            (snapshot(dir), snapshot(outside)),
            before,
            "the data directory, or a file outside it, was modified"
        );
    }
}

/// For each case, a fresh closed store of `segments` segments made hostile
/// by `make` (given the data directory, a directory outside it and the
/// case), which says how it must be refused; then [`assert_refused`].
fn refuse_each<C>(
    segments: u64,
    cases: impl IntoIterator<Item = C>,
    make: impl Fn(&Path, &Path, C) -> Refusal,
) {
    for case in cases {
        let (dir, _) = store_with_segments(segments);
        let elsewhere = outside();
        let want = make(dir.path(), elsewhere.path(), case);
        assert_refused(dir.path(), &want, elsewhere.path());
    }
}

/// Where the tests put files that the data directory points at.
fn outside() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_symlinked_segment_is_refused_and_its_target_untouched() {
    refuse_each(3, [0u64, 1, 2], |dir, elsewhere, victim| {
        let segment = dir.join(segment_name(victim));
        let target = elsewhere.join("real.seg");
        std::fs::rename(&segment, &target).unwrap();
        symlink(&target, &segment).unwrap();
        Refusal::Corruption(segment)
    });
}

#[test]
fn a_symlinked_temp_segment_is_refused_and_its_target_not_removed() {
    // The target's bytes are in the snapshot of `elsewhere`.
    refuse_each(2, [()], |dir, elsewhere, ()| {
        let target = elsewhere.join("precious");
        std::fs::write(&target, b"not yours").unwrap();
        let temp = dir.join(format!("{}.tmp", segment_name(2)));
        symlink(&target, &temp).unwrap();
        Refusal::Corruption(temp)
    });
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
    let cases = [(0u64, SEGMENT_SIZE + 4096), (1, SEGMENT_SIZE - 8), (2, 100)];
    refuse_each(3, cases, |dir, _, (victim, new_len)| {
        let segment = dir.join(segment_name(victim));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        file.set_len(new_len).unwrap();
        Refusal::Corruption(segment)
    });
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
    refuse_each(2, names, |dir, _, name| {
        // A copy of a real segment, so that only the name is wrong.
        std::fs::copy(dir.join(segment_name(1)), dir.join(name)).unwrap();
        Refusal::NotAStore(name.to_owned())
    });
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
        let elsewhere = outside();
        let want = Refusal::NotAStore("foo".to_owned());
        assert_refused(dir.path(), &want, elsewhere.path());
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
        w.append_next(store, i).unwrap();
    };
    // Only the entries annals ignores (and what is inside them), with their
    // kinds and bytes.
    let ignored = |d: &Path| {
        let mut s = snapshot(d);
        s.retain(|path, _| {
            let name = path.strip_prefix(d).unwrap().to_string_lossy();
            name.starts_with("lost+found") || name.starts_with('.')
        });
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
        assert_eq!(before.len(), 5);

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
    refuse_each(4, [0u64, 1, 2], |dir, _, missing| {
        let segment = dir.join(segment_name(missing));
        std::fs::remove_file(&segment).unwrap();
        Refusal::Corruption(segment)
    });
}

#[test]
fn a_directory_where_a_segment_belongs_is_refused() {
    let names = [
        segment_name(1),
        segment_name(3),
        format!("{}.tmp", segment_name(3)),
    ];
    // What is inside the directory is in the snapshots compared.
    refuse_each(3, names, |dir, _, name| {
        let path = dir.join(&name);
        if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        Refusal::Corruption(path)
    });
}

#[test]
fn a_data_path_that_is_a_file_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let path = parent.path().join("data");
    std::fs::write(&path, b"a file, not a store").unwrap();
    for read_only in [false, true] {
        match open(&path, read_only) {
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
            w.append_next(&store, i).unwrap();
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
