//! Fuzzes the derived files of a sound store: its segment indexes
//! (`*.idx`) and its stream catalog. The store is written through the
//! public API (several small segments, sealed ones indexed, a clean close
//! that writes the open index and the catalog), then the input damages
//! only the derived files — flipped bytes, runs of garbage, zeroed ranges,
//! truncation, growth, removal, one segment's index copied over another's,
//! an index left under its temporary name. The segments stay sound, so the
//! promise under test is the strongest one: every open succeeds and reads
//! back exactly what the store held, by `$all`, by stream and by version.

#![no_main]

use std::path::{Path, PathBuf};

use annals::{EventData, ExpectedVersion, Options, RecordedEvent, Store};
use annals_fuzz::{NoSyncIo, scratch_dir};
use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const STREAMS: [&str; 4] = ["a", "b", "order-42", "order-43"];

fuzz_target!(|input: &[u8]| {
    let dir = scratch_dir();
    let u = &mut Unstructured::new(input);
    let Ok(before) = fill(u, dir.path()) else {
        return;
    };
    if damage(u, dir.path()).is_err() {
        return;
    }
    check(dir.path(), &before);
});

fn options() -> Options {
    Options::default()
        .segment_size(4096)
        .prepare_segments_ahead(false)
        .file_io(std::sync::Arc::new(NoSyncIo))
}

/// Appends what the input says and closes the store cleanly; returns
/// everything it holds.
fn fill(u: &mut Unstructured<'_>, dir: &Path) -> Result<Vec<RecordedEvent>> {
    let store = Store::open_with(dir, options()).expect("a new store opens");
    for _ in 0..u.int_in_range(1..=40u8)? {
        let stream = STREAMS[u.choose_index(STREAMS.len())?];
        let events: Vec<EventData> = (0..u.int_in_range(1..=4u8)?)
            .map(|i| {
                let len = usize::from(u.int_in_range(0..=300u16)?);
                Ok(EventData::new("Type", vec![i; len]))
            })
            .collect::<Result<_>>()?;
        store
            .append(stream, ExpectedVersion::Any, &events)
            .expect("an append to a sound store succeeds");
    }
    let all = read_everything(&store);
    drop(store);
    Ok(all)
}

/// The derived files in `dir`: segment indexes and the catalog.
fn derived_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the store")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".idx") || name == "catalog"
        })
        .collect();
    files.sort();
    files
}

/// Damages the derived files as the input says.
fn damage(u: &mut Unstructured<'_>, dir: &Path) -> Result<()> {
    for _ in 0..u.int_in_range(1..=4u8)? {
        let files = derived_files(dir);
        if files.is_empty() {
            return Ok(());
        }
        let path = &files[u.choose_index(files.len())?];
        let mut bytes = std::fs::read(path).expect("read a derived file");
        match u.int_in_range(0..=7u8)? {
            0 if !bytes.is_empty() => {
                let i = u.choose_index(bytes.len())?;
                bytes[i] ^= u.int_in_range(1..=255u8)?;
            }
            1 if !bytes.is_empty() => {
                let i = u.choose_index(bytes.len())?;
                let n = u.int_in_range(1..=64usize)?;
                let run = u.bytes(n)?;
                let end = (i + run.len()).min(bytes.len());
                bytes[i..end].copy_from_slice(&run[..end - i]);
            }
            2 if !bytes.is_empty() => {
                let i = u.choose_index(bytes.len())?;
                let end = (i + u.int_in_range(1..=256usize)?).min(bytes.len());
                bytes[i..end].fill(0);
            }
            3 => {
                let len = u.int_in_range(0..=bytes.len() + 512)?;
                bytes.resize(len, 0);
            }
            4 => {
                std::fs::remove_file(path).expect("remove a derived file");
                continue;
            }
            5 => {
                // Another segment's index (or the catalog) in this one's place.
                let other = &files[u.choose_index(files.len())?];
                bytes = std::fs::read(other).expect("read a derived file");
            }
            6 => {
                // An index left half-renamed: the temporary name beside it.
                let mut temp = path.clone().into_os_string();
                temp.push(".tmp");
                std::fs::write(temp, &bytes).expect("write a temporary file");
                continue;
            }
            _ => {}
        }
        std::fs::write(path, &bytes).expect("write a derived file");
    }
    Ok(())
}

fn read_everything(store: &Store) -> Vec<RecordedEvent> {
    let mut all: Vec<RecordedEvent> = Vec::new();
    loop {
        let page = store
            .read_all(all.len() as u64, 64)
            .expect("read_all of a sound store succeeds");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Every open of the damaged store reads back exactly `before`.
fn check(dir: &Path, before: &[RecordedEvent]) {
    let read_only = Store::open_read_only(dir).expect("a sound store opens read-only");
    assert_eq!(read_everything(&read_only), before, "read-only open differs");
    drop(read_only);
    let store = Store::open_with(dir, options()).expect("a sound store opens");
    assert_eq!(read_everything(&store), before, "open differs");
    for stream in STREAMS {
        let expected: Vec<&RecordedEvent> =
            before.iter().filter(|e| &*e.stream_id == stream).collect();
        assert_eq!(
            store.stream_version(stream),
            expected.last().map(|e| e.version),
            "version of {stream}"
        );
        if let Some(first) = expected.first() {
            let read = store
                .read_stream(stream, first.version, usize::MAX)
                .expect("read a stream that exists");
            assert_eq!(read.iter().collect::<Vec<_>>(), expected, "stream {stream}");
            if let Some(middle) = expected.get(expected.len() / 2) {
                let tail = store
                    .read_stream(stream, middle.version, 2)
                    .expect("read part of a stream");
                assert_eq!(tail.first().map(|e| e.position), Some(middle.position));
            }
        }
    }
}
