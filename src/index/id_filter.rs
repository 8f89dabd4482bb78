//! One filter in memory over the ids of every sealed segment, so that a
//! fresh id costs a constant number of cache misses whatever the number of
//! segments.
//!
//! Each sealed segment's index file has its own id filter (see `file`),
//! and testing a batch of fresh ids against each of them cost one or two
//! cache misses per id per segment: some 5–13 µs per sealed segment per
//! batch of 100 (PERFORMANCE.md, issue 11). This filter is a blocked Bloom
//! filter: an id's bits all lie in one 64-byte block (one cache line),
//! chosen by the id's first [`id_hashes`] hash, with [`BITS_PER_ID`] bits
//! in it chosen by the second. A test is one cache miss.
//!
//! It is derived data and lives only in memory (nothing of it is on disk):
//! built from the sealed segments' id tables on a background thread that a
//! writable open starts (without background work: after the first append,
//! on the appending thread; a read-only store has none), and extended with
//! each newly sealed segment's
//! ids the same way, so that neither the open nor the writer's thread
//! waits for it. Until it covers a segment, that segment's own filter
//! answers for it. A filter is built for a capacity of twice the sealed
//! events at the time, at [`BITS_PER_EVENT`] bits an event of capacity,
//! and built again, twice as large, when the sealed events outgrow it:
//! 1 to 2 bytes per sealed event. Bits are only ever set, with atomic ORs,
//! so a filter being extended answers correctly for what it covered
//! before; "maybe" sends a caller on to the segments' own filters and id
//! tables, and there is never a false "no".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Table;
use super::file::id_hashes;
use crate::log::segment::Segment;

/// Bits of filter per event of capacity (the filter holds between half
/// its capacity and all of it: 8 to 16 bits per sealed event).
pub(crate) const BITS_PER_EVENT: u64 = 8;

/// Bits set per id, all in the id's block. Four is near the best for 8 to
/// 16 bits per id in 512-bit blocks: about 3 % false "maybe" at 8, under
/// 0.5 % at 16.
pub(crate) const BITS_PER_ID: u32 = 4;

/// The smallest capacity a filter is built for, in events (smaller in
/// tests, so that they see it rebuilt without 100,000 appends).
#[cfg(not(test))]
const MIN_CAPACITY: u64 = 1 << 16;
#[cfg(test)]
const MIN_CAPACITY: u64 = 1 << 10;

/// One cache line of the filter.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Block([AtomicU64; 8]);

/// A blocked Bloom filter of event ids (see the module docs).
#[derive(Debug)]
pub(crate) struct IdFilter {
    blocks: Box<[Block]>,
    /// How many events it was sized for.
    capacity: u64,
}

impl IdFilter {
    /// An empty filter for `capacity` events.
    pub(crate) fn with_capacity(capacity: u64) -> IdFilter {
        let blocks = capacity.saturating_mul(BITS_PER_EVENT).div_ceil(512).max(1);
        IdFilter {
            blocks: (0..blocks).map(|_| Block::default()).collect(),
            capacity,
        }
    }

    /// How many events it was sized for.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes it takes.
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.blocks)
    }

    /// The block of an id by its [`id_hashes`], and its bits there as
    /// (word, mask) pairs.
    fn place(&self, (h1, h2): (u64, u64)) -> (&Block, [(usize, u64); BITS_PER_ID as usize]) {
        // h1 picks the block (multiply-shift, no division); h2's bits
        // (above its lowest, which is always set) pick the bits.
        let n = self.blocks.len() as u64;
        let at = ((u128::from(h1) * u128::from(n)) >> 64) as usize;
        let block = &self.blocks[at.min(self.blocks.len() - 1)];
        let mut bits = [(0usize, 0u64); BITS_PER_ID as usize];
        for (i, bit) in bits.iter_mut().enumerate() {
            let b = (h2 >> (1 + 9 * i)) & 511;
            *bit = ((b >> 6) as usize, 1u64 << (b & 63));
        }
        (block, bits)
    }

    /// Adds an id by its [`id_hashes`].
    pub(crate) fn insert(&self, hashes: (u64, u64)) {
        let (block, bits) = self.place(hashes);
        for (word, mask) in bits {
            block.0[word].fetch_or(mask, Ordering::Relaxed);
        }
    }

    /// Whether an id, by its [`id_hashes`], may have been added: false
    /// means it was not.
    ///
    /// Without branches (every bit is tested), so that the tests of a
    /// batch's ids, each a cache miss, overlap.
    pub(crate) fn may_hold(&self, hashes: (u64, u64)) -> bool {
        let (block, bits) = self.place(hashes);
        let mut all = true;
        for (word, mask) in bits {
            all &= block.0[word].load(Ordering::Relaxed) & mask != 0;
        }
        all
    }
}

/// The capacity a filter is built for when `events` sealed events must go
/// in: twice that, so that it takes as many again before it is rebuilt.
pub(crate) fn capacity_for(events: u64) -> u64 {
    events.saturating_mul(2).max(MIN_CAPACITY)
}

/// Work for a background thread: ids of sealed tables to put in a filter,
/// either an existing one (which has room) or a new one.
#[derive(Debug)]
pub(crate) struct FilterJob {
    /// The filter to extend, or `None` to build one for `capacity`.
    pub(crate) filter: Option<Arc<IdFilter>>,
    pub(crate) capacity: u64,
    /// The tables whose ids go in, each with its segment (to rebuild a
    /// damaged table from).
    pub(crate) tables: Vec<(Table, Option<Arc<Segment>>)>,
    /// The position up to which the filter covers every sealed event once
    /// these tables are in.
    pub(crate) end: u64,
    /// The index's filter epoch when the job was made: a job made before
    /// the filter was thrown away is not installed.
    pub(crate) epoch: u64,
}

/// A finished [`FilterJob`]: the filter and what it covers, or `None`
/// for the filter when some table could not be read.
#[derive(Debug)]
pub(crate) struct FilterDone {
    pub(crate) filter: Option<Arc<IdFilter>>,
    pub(crate) end: u64,
    pub(crate) epoch: u64,
}

/// How many ids of a table's id table the filter's build reads between
/// two releases of the file's pages (16,384 ids: 320 KiB of the table).
const RELEASE_EVERY_IDS: usize = 16_384;

impl FilterJob {
    /// Puts the tables' ids in the filter. Gives up (filter `None`) if a
    /// table cannot be read or `cancel` is set.
    pub(crate) fn run(self, cancel: &AtomicBool) -> FilterDone {
        let filter = self
            .filter
            .unwrap_or_else(|| Arc::new(IdFilter::with_capacity(self.capacity)));
        let mut ok = true;
        for (table, segment) in &self.tables {
            if cancel.load(Ordering::Relaxed) {
                ok = false;
                break;
            }
            // Only the id table is read, each block checked on first use;
            // a damaged block makes the table rebuilt and the ids taken
            // again (inserting one twice changes nothing).
            // The pass reads the whole id table through the map: its pages
            // are given back as it goes, so that the build (which runs
            // beside whatever the store is doing after an open) keeps no
            // more than a few hundred KiB of the file resident.
            let taken = table.with_view(segment.as_deref(), |view| {
                for (i, (id, _)) in view.ids().enumerate() {
                    filter.insert(id_hashes(&id));
                    if i % RELEASE_EVERY_IDS == RELEASE_EVERY_IDS - 1 {
                        table.release_pages();
                    }
                }
            });
            table.release_pages();
            if taken.is_err() {
                ok = false;
                break;
            }
        }
        FilterDone {
            filter: ok.then_some(filter),
            end: self.end,
            epoch: self.epoch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&i.to_le_bytes());
        b[8..].copy_from_slice(&(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
        b
    }

    #[test]
    fn never_forgets_and_rarely_guesses() {
        let f = IdFilter::with_capacity(100_000);
        for i in 0..100_000 {
            f.insert(id_hashes(&id(i)));
        }
        assert!((0..100_000).all(|i| f.may_hold(id_hashes(&id(i)))));
        let false_maybes = (1_000_000..1_100_000)
            .filter(|i| f.may_hold(id_hashes(&id(*i))))
            .count();
        // Full (8 bits an id): a few percent.
        assert!(false_maybes < 6_000, "{false_maybes} false maybes");
        let bytes = f.bytes() as u64;
        assert!((100_000..100_064).contains(&bytes), "{bytes} bytes");
    }

    #[test]
    fn a_tiny_filter_still_answers() {
        let f = IdFilter::with_capacity(0);
        assert!(!f.may_hold(id_hashes(&id(1))));
        f.insert(id_hashes(&id(1)));
        assert!(f.may_hold(id_hashes(&id(1))));
        assert_eq!(capacity_for(10), MIN_CAPACITY);
        assert_eq!(capacity_for(1 << 20), 1 << 21);
    }
}
