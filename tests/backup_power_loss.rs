//! Guards the crash safety of `Store::backup` down to the order of its
//! syncs: a backup that brings an earlier one up to date (new segments
//! copied whole, the earlier last segment extended in place, index files,
//! catalog and manifest replaced) runs on a simulated disk that loses
//! power after operation N, for every N, and what the power cut leaves
//! (only what was synced; or every write and directory operation too) must
//! be the earlier backup, the new one, or a directory that does not open as
//! a store. Never a mix, and never a store with some other log.

mod common;

use std::path::Path;
use std::sync::Arc;

use annals::{Error, EventData, ExpectedVersion, Options, Store};
use common::sim_disk::{CrashImage, Fate, SimDisk};

const SEGMENT_SIZE: u64 = 64 << 10;

fn append(store: &Store, from: u32, to: u32) {
    for i in from..to {
        let data = vec![(i % 251) as u8; 900];
        store
            .append(
                &format!("s-{}", i % 3),
                ExpectedVersion::Any,
                &[EventData::new("T", data)],
            )
            .unwrap();
    }
}

/// Copies the regular files of `from` into the new directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_power_cut_leaves_the_old_backup_the_new_one_or_no_store() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin");
    let pristine = tmp.path().join("pristine");
    let options = Options::default().segment_size(SEGMENT_SIZE);
    let (old, new, all) = {
        let store = Store::open_with(&origin, options.clone()).unwrap();
        append(&store, 0, 100);
        let old = store.backup(&pristine).unwrap();
        // Past the earlier last segment's end, into two more segments.
        append(&store, 100, 230);
        let all = store.read_all(0, 1_000).unwrap();
        (old.events, store.global_position(), all)
    };
    assert!(new > old);

    let run = |n: Option<u64>, dest: &Path| -> Arc<SimDisk> {
        copy_dir(&pristine, dest);
        let disk = SimDisk::attach(dest);
        if let Some(n) = n {
            disk.crash_after(n);
        }
        // A read-only origin writes nothing: every operation on the disk
        // is the backup's.
        let io: Arc<dyn annals::io::FileIo> = disk.clone();
        let store = Store::open_read_only_with(&origin, Options::default().file_io(io)).unwrap();
        let result = store.backup(dest);
        if n.is_none() {
            assert_eq!(result.unwrap().events, new);
        }
        disk
    };
    let dry = tmp.path().join("dry");
    let ops = run(None, &dry).ops();
    assert!(ops > 10, "{ops}");

    let (mut olds, mut news, mut marked) = (0, 0, 0);
    for n in 0..=ops {
        let dest = tmp.path().join(format!("run-{n}"));
        let disk = run(Some(n), &dest);
        assert!(disk.surprises().is_empty(), "{:?}", disk.surprises());
        let images = [
            CrashImage::DURABLE,
            CrashImage {
                writes: Fate::AllWrites,
                dir_ops: usize::MAX,
            },
        ];
        for (k, image) in images.iter().enumerate() {
            let left = tmp.path().join(format!("left-{n}-{k}"));
            std::fs::create_dir(&left).unwrap();
            disk.materialize(&dest, &left, image);
            match Store::open_read_only(&left) {
                Err(Error::NotAStore { reason, .. }) => {
                    assert!(
                        reason.contains("BACKUP-INCOMPLETE"),
                        "op {n}, {image:?}: {reason}"
                    );
                    marked += 1;
                }
                Err(e) => panic!("op {n}, {image:?}: {e}\n{}", disk.trace()),
                Ok(copy) => {
                    let got = copy.read_all(0, 1_000).unwrap();
                    let len = got.len() as u64;
                    assert!(len == old || len == new, "op {n}, {image:?}: {len} events");
                    assert_eq!(got[..], all[..got.len()], "op {n}, {image:?}");
                    drop(copy);
                    // A writable open checks whatever a read-only one may
                    // have passed over (it refuses damage).
                    let reopened = Store::open_with(&left, options.clone()).unwrap();
                    assert_eq!(reopened.global_position(), len);
                    if len == old { olds += 1 } else { news += 1 }
                }
            }
        }
    }
    eprintln!("backup_power_loss: {ops} operations: {olds} old, {news} new, {marked} marked");
    assert!(olds > 0 && news > 0 && marked > 0);
}
