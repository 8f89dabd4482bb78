//! Fuzzes `open` on whole data directories: one to three segment files,
//! built valid (headers and frames from annals' own encoders) and then
//! damaged as the input says — flipped bytes, runs of garbage, zeroed
//! ranges, wrong lengths, copied frames, odd names. `open_read_only` and
//! `open_with` must return Ok or Err, never panic, hang or run out of
//! memory; when both open, they agree; and a store that opened takes an
//! append and opens again with everything it showed plus that append.

#![no_main]

use annals::format::{SEGMENT_HEADER_LEN, Salt, SegmentHeader};
use annals::{EventData, ExpectedVersion, Options, RecordedEvent, Store};
use annals_fuzz::{NoSyncIo, Rec, build_frame, build_segment, scratch_dir};
use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const STREAMS: [&str; 3] = ["a", "b", "order-42"];

fuzz_target!(|input: &[u8]| {
    let dir = scratch_dir();
    if build(&mut Unstructured::new(input), dir.path()).is_ok() {
        check(dir.path());
    }
});

/// Lays out the store the input describes in `dir`.
fn build(u: &mut Unstructured<'_>, dir: &std::path::Path) -> Result<()> {
    let size: usize = if u.arbitrary::<bool>()? { 8192 } else { 4096 };
    let segments = u.int_in_range(1..=3u64)?;
    let store_id = 0x616e_6e61_6c73 ^ u64::from(u.int_in_range(0..=1u8)?);
    let mut position = 0u64;
    let mut versions = [0u64; STREAMS.len()];
    for number in 0..segments {
        let header = SegmentHeader {
            store_id,
            segment_number: number,
            segment_size: size as u64,
        };
        let mut file = build_segment(&header, &[]).expect("an empty segment fits");
        let salt = Salt::new(store_id, number);
        let mut at = SEGMENT_HEADER_LEN;
        let mut frames = Vec::new();
        for _ in 0..u.int_in_range(0..=5u8)? {
            let mut records = Vec::new();
            for _ in 0..u.int_in_range(1..=3u8)? {
                let s = u.choose_index(STREAMS.len())?;
                let len = usize::from(u.int_in_range(0..=400u16)?);
                let fill: u8 = u.arbitrary()?;
                records.push(Rec {
                    stream: STREAMS[s].to_owned(),
                    event_type: "Type".to_owned(),
                    metadata: Vec::new(),
                    data: vec![fill; len],
                    id: [fill; 16],
                    recorded_at_us: 1_700_000_000_000_000,
                    version: versions[s],
                });
                versions[s] += 1;
            }
            let Some(frame) = build_frame(salt, position, &records) else {
                break;
            };
            if at + frame.len() > size {
                break;
            }
            file[at..at + frame.len()].copy_from_slice(&frame);
            frames.push(at..at + frame.len());
            at += frame.len();
            position += records.len() as u64;
        }
        // Damage, none at all for an input of zeros.
        for _ in 0..u.int_in_range(0..=3u8)? {
            match u.int_in_range(0..=5u8)? {
                _ if file.is_empty() => {}
                0 => {
                    let i = u.choose_index(file.len())?;
                    file[i] ^= u.int_in_range(1..=255u8)?;
                }
                1 => {
                    let i = u.choose_index(file.len())?;
                    let n = u.int_in_range(1..=64usize)?;
                    let run = u.bytes(n)?;
                    let end = (i + run.len()).min(file.len());
                    file[i..end].copy_from_slice(&run[..end - i]);
                }
                2 => {
                    let i = u.choose_index(file.len())?;
                    let end = (i + u.int_in_range(1..=512usize)?).min(file.len());
                    file[i..end].fill(0);
                }
                3 => {
                    let len = u.int_in_range(0..=size + 4096)?;
                    file.resize(len, 0);
                }
                4 if !frames.is_empty() && file.len() == size => {
                    // A valid frame copied where another belongs.
                    let from = frames[u.choose_index(frames.len())?].clone();
                    let to =
                        SEGMENT_HEADER_LEN + u.choose_index(size - SEGMENT_HEADER_LEN)? / 8 * 8;
                    let end = (to + from.len()).min(file.len());
                    let bytes = file[from.start..from.start + (end - to)].to_vec();
                    file[to..end].copy_from_slice(&bytes);
                }
                _ => {
                    // Tear the last frame: keep a prefix of it.
                    if let Some(last) = frames.last().filter(|f| f.end <= file.len()) {
                        let keep = u.int_in_range(0..=last.len())?;
                        file[last.start + keep..last.end].fill(0);
                    }
                }
            }
        }
        let name = match u.int_in_range(0..=15u8)? {
            0 => format!("{number:020}.seg.tmp"),
            1 => format!("{:020}.seg", number + 1),
            _ => format!("{number:020}.seg"),
        };
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(path, &file).expect("write a segment");
        }
    }
    Ok(())
}

fn read_everything(store: &Store) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    loop {
        match store.read_all(all.len() as u64, 256) {
            Ok(page) if !page.is_empty() => all.extend(page),
            _ => return all,
        }
    }
}

fn check(dir: &std::path::Path) {
    let read_only = Store::open_read_only(dir).map(|s| read_everything(&s));
    let options = Options::default()
        .segment_size(4096)
        .prepare_segments_ahead(false)
        .file_io(std::sync::Arc::new(NoSyncIo));
    let Ok(store) = Store::open_with(dir, options.clone()) else {
        return;
    };
    let events = read_everything(&store);
    for stream in STREAMS {
        if let Some(v) = store.stream_version(stream) {
            let read = store
                .read_stream(stream, 0, usize::MAX)
                .expect("read a stream that exists");
            // A stream's first event in the log may be past version 0
            // (FORMAT.md: a scavenge removed the versions before it), so
            // the read is dense and ends at the stream's version, without
            // necessarily starting at 0.
            assert_eq!(read.last().map(|e| e.version), Some(v), "{stream}");
            assert!(
                read.windows(2).all(|w| w[1].version == w[0].version + 1),
                "{stream}: versions not dense"
            );
        }
    }
    if let Ok(seen) = &read_only {
        assert_eq!(seen, &events, "read-only and writable opens disagree");
    }
    let appended = store.append(
        "fuzz",
        ExpectedVersion::Any,
        &[EventData::new("T", b"x".to_vec())],
    );
    drop(store);
    let again = Store::open_with(dir, options).expect("a store that opened must open again");
    let mut after = read_everything(&again);
    if appended.is_ok() {
        assert_eq!(
            after.pop().map(|e| e.stream_id.to_string()),
            Some("fuzz".to_owned())
        );
    }
    assert_eq!(after, events, "reopening changed the events");
}
