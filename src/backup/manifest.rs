//! The backup manifest: what each segment file of a backup holds and how
//! it was left, written last by a complete run and read by the next one to
//! decide what it may leave alone. Its grammar is in FORMAT.md, "Backup
//! directory". Nothing in it is trusted without a check: a manifest that
//! does not parse is no manifest, and a recorded segment counts only while
//! its file is as the manifest says (see [`Identity`]).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::MANIFEST;

/// The first line of a manifest, with its format version.
const MANIFEST_MAGIC: &str = "annals-backup 1";

/// The most bytes a manifest may have: a line per segment, and segments
/// are numbered with 32 bits. A longer file is not ours, and is not
/// trusted.
const MANIFEST_MAX_BYTES: u64 = 64 << 20;

/// One segment as the manifest recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Recorded {
    pub(super) data_len: u64,
    pub(super) crc: u32,
    pub(super) identity: Identity,
}

/// How a file was left: anything that writes to it changes at least its
/// modification and change times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Identity {
    pub(super) ino: u64,
    pub(super) size: u64,
    pub(super) mtime_ns: i128,
    pub(super) ctime_ns: i128,
}

impl Identity {
    pub(super) fn of(path: &Path) -> Option<Identity> {
        let m = fs::symlink_metadata(path).ok()?;
        if !m.is_file() {
            return None;
        }
        Some(Identity {
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        })
    }
}

/// The manifest: the store and its segments as the last complete run left
/// them. Its text form, one item a line:
///
/// ```text
/// annals-backup 1
/// store <store id> <segment size>
/// segment <number> <data len> <crc32> <ino> <size> <mtime ns> <ctime ns>
/// ```
#[derive(Debug, Default)]
pub(super) struct Manifest {
    pub(super) store_id: u64,
    pub(super) segment_size: u64,
    pub(super) segments: BTreeMap<u64, Recorded>,
}

impl Manifest {
    pub(super) fn encode(&self) -> String {
        let mut s = format!(
            "{MANIFEST_MAGIC}\nstore {} {}\n",
            self.store_id, self.segment_size
        );
        for (n, r) in &self.segments {
            let i = r.identity;
            s.push_str(&format!(
                "segment {n} {} {} {} {} {} {}\n",
                r.data_len, r.crc, i.ino, i.size, i.mtime_ns, i.ctime_ns
            ));
        }
        s
    }

    /// Parses a manifest; `None` for anything that is not one whole (it is
    /// then not trusted, and everything is copied again).
    pub(super) fn decode(untrusted: &str) -> Option<Manifest> {
        let mut lines = untrusted.lines();
        if lines.next()? != MANIFEST_MAGIC {
            return None;
        }
        let store: Vec<u64> = numbers(lines.next()?.strip_prefix("store ")?)?;
        let [store_id, segment_size] = store[..] else {
            return None;
        };
        let mut segments = BTreeMap::new();
        for line in lines {
            let f: Vec<i128> = numbers(line.strip_prefix("segment ")?)?;
            let [n, data_len, crc, ino, size, mtime_ns, ctime_ns] = f[..] else {
                return None;
            };
            let identity = Identity {
                ino: u64::try_from(ino).ok()?,
                size: u64::try_from(size).ok()?,
                mtime_ns,
                ctime_ns,
            };
            let recorded = Recorded {
                data_len: u64::try_from(data_len).ok()?,
                crc: u32::try_from(crc).ok()?,
                identity,
            };
            segments.insert(u64::try_from(n).ok()?, recorded);
        }
        Some(Manifest {
            store_id,
            segment_size,
            segments,
        })
    }

    /// The manifest in `dest`, if there is one whole.
    pub(super) fn read(dest: &Path) -> Option<Manifest> {
        let path = dest.join(MANIFEST);
        if fs::symlink_metadata(&path).ok()?.len() > MANIFEST_MAX_BYTES {
            return None;
        }
        Manifest::decode(&fs::read_to_string(path).ok()?)
    }
}

/// Space-separated numbers, all of them, or `None`.
fn numbers<T: std::str::FromStr>(s: &str) -> Option<Vec<T>> {
    s.split(' ').map(|n| n.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_refuse_damage() {
        let mut m = Manifest {
            store_id: 7,
            segment_size: 1 << 20,
            ..Manifest::default()
        };
        let identity = Identity {
            ino: 12,
            size: 1 << 20,
            mtime_ns: 1_700_000_000_123_456_789,
            ctime_ns: -5,
        };
        m.segments.insert(
            0,
            Recorded {
                data_len: 4096,
                crc: 0xdead_beef,
                identity,
            },
        );
        let text = m.encode();
        let back = Manifest::decode(&text).expect("decodes");
        assert_eq!(back.segments, m.segments);
        assert_eq!((back.store_id, back.segment_size), (7, 1 << 20));
        assert!(Manifest::decode(&text.replace("segment 0 4096", "segment 0 x")).is_none());
        assert!(Manifest::decode("annals-backup 2\nstore 1 2\n").is_none());
        assert!(Manifest::decode("").is_none());
    }
}
