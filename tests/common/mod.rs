//! Helpers shared by the durability tests: a seeded random source that
//! prints its seed, a deterministic workload whose every byte can be
//! regenerated from (seed, stream, version), and a checker that reads a
//! whole store back and proves it is a well-formed prefix of that workload.
//! The workload's [`Workload::event`] is the one event generator of the
//! tests; [`Workload::FIXED`] serves those that need no seed.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

pub mod child;
pub mod sim_disk;

use std::sync::Arc;

use annals::Options;
use sim_disk::{CrashImage, Fate, SimDisk};

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use annals::{AppendResult, Error, EventData, ExpectedVersion, RecordedEvent, Store, Uuid};

/// The seed of a randomised test: `ANNALS_SEED` when set (to replay a
/// failure), otherwise fresh. Printed either way, so that a failure's output
/// says how to replay it.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("ANNALS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("ANNALS_SEED={s:?} is not a u64")),
        Err(_) => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            mix(nanos, u64::from(std::process::id()))
        }
    };
    eprintln!("{test}: seed {seed} (replay with ANNALS_SEED={seed})");
    seed
}

/// A count from the environment variable `name`, or `default`.
pub fn env_count(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a number")),
        Err(_) => default,
    }
}

/// Mixes two words into one well-spread word (SplitMix64's finaliser).
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a string, to fold a stream name into a seed.
pub fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A small deterministic random source (SplitMix64). Tests own their
/// randomness so that a seed replays exactly, whatever crate versions say.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0, 0)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// A deterministic workload: which events a stream holds at each version
/// and how its appends are cut into batches, all derived from the seed. A
/// checker can therefore regenerate every byte that was (or may have been)
/// appended without being told, and knows where every batch starts and ends.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub seed: u64,
    /// How many streams appends spread over.
    pub streams: usize,
    /// The largest data payload of one event.
    pub max_data: usize,
    /// The most events of one batch.
    pub max_batch: u64,
}

/// One batch as found in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchAt {
    pub stream: String,
    pub first_version: u64,
    pub len: u64,
    pub first_position: u64,
}

/// What [`Workload::verify`] found.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    /// Events in the store.
    pub events: u64,
    /// Events per stream.
    pub stream_lens: BTreeMap<String, u64>,
    /// Every batch, in log order.
    pub batches: Vec<BatchAt>,
}

impl Workload {
    /// The workload of the deterministic tests: one fixed seed, events of
    /// up to 256 bytes of data (most far smaller), some with metadata, so
    /// that a 4 KiB segment holds a few dozen and rotations come often.
    pub const FIXED: Workload = Workload {
        seed: 0x616e_6e61_6c73,
        streams: 4,
        max_data: 256,
        max_batch: 3,
    };

    /// The workload's appends in order: stream and first version of each
    /// batch, for `batches` appends.
    pub fn plan(&self, batches: usize) -> Vec<(String, u64)> {
        let mut rng = Rng::new(mix(self.seed, 0x504c_414e));
        let mut next = vec![0u64; self.streams];
        (0..batches)
            .map(|_| {
                let s = rng.below(self.streams as u64) as usize;
                let stream = self.stream_name(s);
                let v = next[s];
                next[s] += self.batch_len(&stream, v);
                (stream, v)
            })
            .collect()
    }

    pub fn stream_name(&self, i: usize) -> String {
        format!("stream-{i}")
    }

    fn rng_for(&self, stream: &str, version: u64, salt: u64) -> Rng {
        Rng::new(mix(mix(self.seed, hash_str(stream)), version ^ salt << 56))
    }

    /// Event `version` of `stream`: its type, data, metadata and id.
    pub fn event(&self, stream: &str, version: u64) -> EventData {
        let mut rng = self.rng_for(stream, version, 1);
        let max = self.max_data as u64;
        // Mostly small events, some medium, a few large enough to force a
        // segment rotation on their own.
        let len = match rng.below(100) {
            0..70 => rng.below(max / 16 + 1),
            70..95 => rng.below(max / 4 + 1),
            _ => rng.below(max + 1),
        } as usize;
        let data = rng.bytes(len);
        let event_type = format!("Type{}", rng.below(5));
        let metadata = if rng.percent(50) {
            Vec::new()
        } else {
            let n = rng.below(48) as usize;
            rng.bytes(n)
        };
        let id = Uuid::from_u64_pair(rng.next_u64(), rng.next_u64());
        EventData::new(event_type, data)
            .with_metadata(metadata)
            .with_id(id)
    }

    /// How many events the batch starting at `first_version` of `stream`
    /// holds.
    pub fn batch_len(&self, stream: &str, first_version: u64) -> u64 {
        let mut rng = self.rng_for(stream, first_version, 2);
        if rng.percent(60) {
            1
        } else {
            rng.between(1, self.max_batch)
        }
    }

    /// The batch starting at `first_version` of `stream`.
    pub fn batch(&self, stream: &str, first_version: u64) -> Vec<EventData> {
        let n = self.batch_len(stream, first_version);
        (first_version..first_version + n)
            .map(|v| self.event(stream, v))
            .collect()
    }

    /// The expected version under which the batch at `first_version` is
    /// appended: the strictest check that passes.
    pub fn expected(first_version: u64) -> ExpectedVersion {
        match first_version {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v - 1),
        }
    }

    /// Appends to `store` the batch that comes next in stream `i % streams`
    /// (after the versions it holds), under the strictest expected version.
    pub fn append_next(&self, store: &Store, i: usize) -> Result<AppendResult, Error> {
        let stream = self.stream_name(i % self.streams);
        let v = store.stream_version(&stream).map_or(0, |v| v + 1);
        store.append(&stream, Workload::expected(v), &self.batch(&stream, v))
    }

    /// Asserts that `got` holds the bytes of the event its stream id and
    /// version name.
    pub fn check_event(&self, got: &RecordedEvent) {
        let want = self.event(&got.stream_id, got.version);
        let at = format!(
            "{}@{} (position {}, seed {})",
            &*got.stream_id, got.version, got.position, self.seed
        );
        assert_eq!(&*got.event_type, want.event_type(), "type of {at}");
        assert_eq!(&got.data[..], want.data(), "data of {at}");
        assert_eq!(&got.metadata[..], want.metadata(), "metadata of {at}");
        assert_eq!(Some(got.id), want.id(), "id of {at}");
    }

    /// Asserts that `got` is event `version` of `stream`, byte for byte.
    pub fn assert_event(&self, got: &RecordedEvent, stream: &str, version: u64) {
        assert_eq!(
            (&*got.stream_id, got.version),
            (stream, version),
            "stream and version at position {} (seed {})",
            got.position,
            self.seed
        );
        self.check_event(got);
    }

    /// Reads the whole store and asserts that it is well formed: positions
    /// dense from 0, each stream's versions dense from 0, every event's
    /// bytes those of the workload, every batch whole and contiguous in the
    /// log, no partial batch anywhere; and that `read_stream`,
    /// `stream_version` and `global_position` agree with `read_all`.
    pub fn verify(&self, store: &Store) -> Verified {
        let seed = self.seed;
        let mut all = Vec::new();
        loop {
            let page = store.read_all(all.len() as u64, 500).unwrap();
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        assert_eq!(
            store.global_position(),
            all.len() as u64,
            "global_position disagrees with read_all (seed {seed})"
        );
        let mut found = Verified {
            events: all.len() as u64,
            ..Verified::default()
        };
        // The batch being walked: its stream and the versions still owed.
        let mut open: Option<(String, u64)> = None;
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.position, i as u64, "positions not dense (seed {seed})");
            self.check_event(e);
            let stream = &*e.stream_id;
            let next = found.stream_lens.entry(stream.to_owned()).or_insert(0);
            assert_eq!(
                e.version, *next,
                "versions of {stream} not dense at position {i} (seed {seed})"
            );
            *next += 1;
            match &mut open {
                Some((s, owed)) => {
                    assert_eq!(
                        s.as_str(),
                        stream,
                        "position {i}: a batch of {s} is interleaved with {stream} (seed {seed})"
                    );
                    *owed -= 1;
                    if *owed == 0 {
                        open = None;
                    }
                }
                None => {
                    let len = self.batch_len(stream, e.version);
                    found.batches.push(BatchAt {
                        stream: stream.to_owned(),
                        first_version: e.version,
                        len,
                        first_position: e.position,
                    });
                    if len > 1 {
                        open = Some((stream.to_owned(), len - 1));
                    }
                }
            }
        }
        if let Some((s, owed)) = open {
            panic!("a partial batch of {s} is visible: {owed} events missing (seed {seed})");
        }
        for (stream, len) in &found.stream_lens {
            assert_eq!(
                store.stream_version(stream),
                Some(len - 1),
                "stream_version({stream}) (seed {seed})"
            );
            let events = store.read_stream(stream, 0, usize::MAX).unwrap();
            assert_eq!(events.len() as u64, *len, "read_stream({stream}) length");
            for (v, e) in events.iter().enumerate() {
                assert_eq!(e.version, v as u64);
                assert_eq!(e, &all[e.position as usize], "read_stream vs read_all");
            }
        }
        found
    }
}

/// The names of the entries of `dir`, sorted.
pub fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Options for a sweep over the operations of a workload: small segments, on
/// `disk`, and segments created on the appending thread, so that every run
/// of the workload makes the same operations in the same order and a sweep
/// can number them.
pub fn sweep_options(disk: &Arc<SimDisk>, segment_size: u64) -> Options {
    Options::default()
        .segment_size(segment_size)
        .prepare_segments_ahead(false)
        .file_io(disk.clone())
}

/// The images a power cut after one operation can leave, for a sweep:
/// only what was synced; every write and directory operation; and, when a
/// write is pending, that write torn or replaced by garbage with a random
/// number of the directory operations (else only some of those).
pub fn crash_images(disk: &SimDisk, dir: &std::path::Path, rng: &mut Rng) -> Vec<CrashImage> {
    let dir_ops = disk.pending_dir_ops(dir);
    let mut images = vec![
        CrashImage::DURABLE,
        CrashImage {
            writes: Fate::AllWrites,
            dir_ops,
        },
    ];
    if let Some(len) = disk.last_pending_write_len() {
        images.push(CrashImage {
            writes: Fate::TornLast {
                keep: rng.below(len as u64) as usize,
            },
            dir_ops: rng.below(dir_ops as u64 + 1) as usize,
        });
        images.push(CrashImage {
            writes: Fate::GarbageLast {
                len: rng.between(1, len as u64) as usize,
                seed: rng.next_u64(),
            },
            dir_ops: rng.below(dir_ops as u64 + 1) as usize,
        });
    } else if dir_ops > 1 {
        images.push(CrashImage {
            writes: Fate::DurableOnly,
            dir_ops: rng.between(1, dir_ops as u64 - 1) as usize,
        });
    }
    images
}
