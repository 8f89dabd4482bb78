//! One filter in memory over the ids of every sealed segment, which also
//! names the segment an id may be in, so that a fresh id costs a constant
//! number of cache misses whatever the number of segments, and a false
//! "maybe" costs one segment's probe, not one per segment.
//!
//! Each sealed segment's index file has its own id filter (see `file`),
//! and testing a batch of fresh ids against each of them cost one or two
//! cache misses per id per segment: some 5–13 µs per sealed segment per
//! batch of 100 (PERFORMANCE.md, issue 11). A first store-wide filter (a
//! blocked Bloom filter) made a fresh id one cache miss, but each id it
//! let through by mistake (0.5–3 % of them) was then looked for in every
//! sealed segment. This one is a table of fingerprints: each id of a
//! sealed segment leaves one 16-bit entry, [`FINGERPRINT_BITS`] low bits
//! of its hash and the low [`TAG_BITS`] bits of its segment's number (its
//! tag), four to a 64-bit word, the id's home word chosen by the hash's
//! top bits; an entry goes in the first word with a free
//! slot from its home word on (linear probing, a word at a time, round the
//! home word's 64-byte line first). A lookup reads the home word, and the
//! next ones only while they are full, and answers with the set of tags whose
//! entries carry the id's fingerprint ([`Tags`]): empty means no sealed
//! segment the filter covers holds the id; otherwise only the segments
//! with those tags need looking at. With at most 16 sealed segments a
//! false "maybe" names exactly one; with more, the one in 16 that share
//! its tag.
//!
//! A fresh id's lookup compares its fingerprint with the entries of a few
//! words, so it passes about once in 280 in a full filter (measured in the
//! tests below), against once in 30 to 200 for the Bloom filter at its 1
//! to 2 bytes an event.
//!
//! The hash is the in-memory one ([`IdKey::hash`]), not the on-disk
//! filters' [`id_hashes`](super::file::id_hashes): nothing of this filter
//! is on disk, so it is free to use the hash that the writer's check
//! computes anyway for a batch's repeat check and the active segment's id
//! table, once per id for all three (two on-disk hashes cost an id about
//! 25 instructions more). And since that hash's key is a secret of the
//! process, ids chosen to share one home word (which would make the
//! linear probes of inserts and lookups long) cannot be computed, as they
//! can for the unseeded on-disk hashes.
//!
//! It is derived data and lives only in memory (nothing of it is on disk):
//! built from the sealed segments' id tables on a background thread that a
//! writable open starts (without background work: after the first append,
//! on the appending thread), and extended with each newly sealed segment's
//! ids the same way, so that neither the open nor the writer's thread
//! waits for it. Until it covers a segment, that segment's own filter
//! answers for it. A read-only store builds none: it never appends, so
//! only `find_event` would use it, and that stays within its target by
//! the segments' own filters (PERFORMANCE.md) without the build's second
//! of CPU and its memory at 10 M events in every reading process.
//!
//! Memory: [`SLOTS_PER_EVENT`] 2-byte slots per event of capacity, and a
//! filter is built for [`capacity_for`] the sealed events (a quarter
//! more), then built again when they outgrow it: 2.5 to 3.1 bytes per
//! sealed event (the Bloom filter took 1 to 2, with the false "maybe"s
//! above). Entries are only ever added, each slot going once from empty
//! to its final value with an atomic compare-and-swap, and a full word
//! never empties: so a lookup racing an extension still finds every id
//! the filter covered before, and there is never a false "no".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Table;
use super::id_hash::IdKey;
use crate::log::segment::Segment;

/// Bits of an id's fingerprint in its entry (never all zero, so that an
/// entry is never an empty slot).
pub(crate) const FINGERPRINT_BITS: u32 = 12;

/// Bits of the segment's number in an entry: 16 tags.
pub(crate) const TAG_BITS: u32 = 4;

const _: () = assert!(FINGERPRINT_BITS + TAG_BITS == 16);

/// Slots per event of capacity, as a fraction: at capacity the table is
/// four-fifths full, and a fresh id's lookup reads a few words, nearly
/// always of one cache line.
pub(crate) const SLOTS_PER_EVENT: (u64, u64) = (5, 4);

/// The smallest capacity a filter is built for, in events (smaller in
/// tests, so that they see it rebuilt without 100,000 appends).
#[cfg(not(test))]
const MIN_CAPACITY: u64 = 1 << 16;
#[cfg(test)]
const MIN_CAPACITY: u64 = 1 << 10;

/// Each 16-bit lane's lowest bit.
const LANES_LOW: u64 = 0x0001_0001_0001_0001;
/// Each lane but its top bit.
const LANES_LOW15: u64 = 0x7fff_7fff_7fff_7fff;
/// Each lane's top bit.
const LANES_HIGH: u64 = 0x8000_8000_8000_8000;
/// Each lane's fingerprint bits.
const LANES_FINGERPRINT: u64 = LANES_LOW * (0xffff << TAG_BITS & 0xffff);

/// The top bit of each 16-bit lane of `x` that is zero, exactly (no borrow
/// crosses lanes, unlike the shorter `(x - low) & !x & high`).
fn zero_lanes(x: u64) -> u64 {
    !(((x & LANES_LOW15) + LANES_LOW15) | x) & LANES_HIGH
}

/// Whether some 16-bit lane of `x` is zero. The shorter form is exact for
/// this question: a borrow starts only at a zero lane, so it can mark
/// lanes above one, never make one up where there is none.
fn has_zero_lane(x: u64) -> bool {
    x.wrapping_sub(LANES_LOW) & !x & LANES_HIGH != 0
}

/// One cache line of the table: 32 slots of 16 bits, four to a word.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Line([AtomicU64; 8]);

/// The tags (low bits of segment numbers) of the sealed segments that may
/// hold an id: bit `t` set for tag `t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tags(u16);

impl Tags {
    /// Every tag: an id the filter cannot rule out anywhere.
    pub(crate) const ALL: Tags = Tags(u16::MAX);

    /// No tag: no covered segment holds the id.
    #[cfg(test)]
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether segment number `segment` is among these.
    pub(crate) fn has(self, segment: u32) -> bool {
        self.0 & (1 << tag_of(segment)) != 0
    }

    /// Both sets.
    pub(crate) fn union(self, other: Tags) -> Tags {
        Tags(self.0 | other.0)
    }
}

/// The tag of segment number `segment`.
fn tag_of(segment: u32) -> u16 {
    (segment & ((1 << TAG_BITS) - 1)) as u16
}

/// A table of id fingerprints with their segments' tags (see the module
/// docs).
#[derive(Debug)]
pub(crate) struct IdFilter {
    lines: Box<[Line]>,
    /// How many events it was sized for.
    capacity: u64,
    /// Set if an entry found no free slot (only if far more ids went in
    /// than it was sized for): then every lookup answers [`Tags::ALL`].
    overflowed: AtomicBool,
}

impl IdFilter {
    /// An empty filter for `capacity` events.
    pub(crate) fn with_capacity(capacity: u64) -> IdFilter {
        let slots = capacity.saturating_mul(SLOTS_PER_EVENT.0) / SLOTS_PER_EVENT.1;
        let lines = slots.div_ceil(32).max(1);
        IdFilter {
            lines: (0..lines).map(|_| Line::default()).collect(),
            capacity,
            overflowed: AtomicBool::new(false),
        }
    }

    /// How many events it was sized for.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes it takes.
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.lines)
    }

    /// An id's home word and fingerprint (shifted into place, never zero),
    /// from its [`IdKey::hash`]: the top bits pick the word by
    /// multiply-shift (no division), the low bits are the fingerprint.
    fn place(&self, hash: u64) -> (usize, u16) {
        let words = self.lines.len() as u64 * 8;
        let home = ((u128::from(hash) * u128::from(words)) >> 64) as usize;
        let fingerprint = (hash as u16 & ((1 << FINGERPRINT_BITS) - 1)).max(1);
        (home, fingerprint << TAG_BITS)
    }

    /// Word `at` of the table.
    fn word(&self, at: usize) -> Option<&AtomicU64> {
        self.lines
            .get(at / 8)
            .and_then(|Line(words)| words.get(at % 8))
    }

    /// Calls `visit` on the words of the probe sequence from `home` until
    /// it returns true (then returns true), or on every word (then false).
    /// The sequence goes round the home word's line first, then on through
    /// the following lines, so that the words a lookup reads after its
    /// home word are nearly always in the line it already fetched.
    fn probe(&self, home: usize, mut visit: impl FnMut(&AtomicU64) -> bool) -> bool {
        let lines = self.lines.len();
        let (mut line, offset) = (home / 8, home % 8);
        let mut at = offset;
        // One word after the other, round the line and on to the next when
        // back at `offset`. (Two nested loops, round a line inside, made
        // the compiler compute all eight word indexes before reading the
        // first word: most of a lookup's cost, when nearly every lookup
        // reads one or two words.)
        for _ in 0..lines.saturating_mul(8) {
            let word = self.lines.get(line).and_then(|Line(words)| words.get(at));
            if word.is_some_and(&mut visit) {
                return true;
            }
            at = (at + 1) & 7;
            if at == offset {
                line += 1;
                if line == lines {
                    line = 0;
                }
            }
        }
        false
    }

    /// Adds an id of segment `segment`, by its [`IdKey::hash`]: in the
    /// first word of its probe sequence with a free slot, so that a lookup
    /// (which stops at such a word) reaches it.
    pub(crate) fn insert(&self, hash: u64, segment: u32) {
        let (home, fingerprint) = self.place(hash);
        let entry = fingerprint | tag_of(segment);
        let placed = self.probe(home, |word| {
            let mut v = word.load(Ordering::Relaxed);
            loop {
                if zero_lanes(v ^ (LANES_LOW * u64::from(entry))) != 0 {
                    // The same fingerprint and tag are there already, and
                    // a lookup reaches them.
                    return true;
                }
                let free = zero_lanes(v);
                if free == 0 {
                    return false;
                }
                // The lowest free lane (its top bit is bit 16i + 15).
                let lane = free.trailing_zeros() - 15;
                let with = v | u64::from(entry) << lane;
                match word.compare_exchange(v, with, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return true,
                    Err(now) => v = now,
                }
            }
        });
        if !placed {
            self.overflowed.store(true, Ordering::Relaxed);
        }
    }

    /// Reads the home word of each id by its [`IdKey::hash`], all before
    /// any is looked up. A lookup's loop ends on a test of the word it
    /// loaded, and when that branch is mispredicted (a full home word is
    /// not rare) the processor waits for the load before it goes on to
    /// the next id, so that a batch's cache misses follow one another
    /// rather than overlap. These loads have no branch on their values:
    /// 100 fresh ids in a 14-segment store took 5.5 µs with them, 9.6 µs
    /// without (PERFORMANCE.md).
    pub(crate) fn touch(&self, hashes: impl Iterator<Item = u64>) {
        let sum = hashes.fold(0u64, |sum, h| {
            let (home, _) = self.place(h);
            sum ^ self.word(home).map_or(0, |w| w.load(Ordering::Relaxed))
        });
        std::hint::black_box(sum);
    }

    /// The tags of the segments that may hold each id, by its
    /// [`IdKey::hash`] in `hashes`, into `out` (as long): what
    /// [`tags`](IdFilter::tags) answers for each, for a batch. A first
    /// pass reads every id's home word and, with no branch on what it
    /// holds, settles the common case there (a free slot and no entry with
    /// the id's fingerprint: no segment holds the id); the others get the
    /// whole probe after. A lookup's loop ends on a test of the word it
    /// loaded, and when that branch is mispredicted (a full home word is
    /// not rare) the processor waits for the load before it goes on to the
    /// next id, so that a batch's cache misses follow one another rather
    /// than overlap; the first pass lets them overlap (as [`touch`]
    /// did before each lookup: 100 fresh ids in a 14-segment store took
    /// 5.5 µs with it, 9.6 µs without, PERFORMANCE.md) and answers most
    /// ids in the same pass.
    ///
    /// [`touch`]: IdFilter::touch
    pub(crate) fn tags_of_all(&self, hashes: &[u64], out: &mut [Tags]) {
        if self.overflowed.load(Ordering::Relaxed) {
            out.fill(Tags::ALL);
            return;
        }
        for (tags, h) in out.iter_mut().zip(hashes) {
            let (home, fingerprint) = self.place(*h);
            // A word that cannot be read (never: `place` stays in the
            // table) counts as full, and sends the id to the whole probe.
            let v = self
                .word(home)
                .map_or(u64::MAX, |w| w.load(Ordering::Relaxed));
            let wanted = LANES_LOW * u64::from(fingerprint);
            let settled = !has_zero_lane((v & LANES_FINGERPRINT) ^ wanted) & has_zero_lane(v);
            // No tag when settled, every tag (look further) when not.
            *tags = Tags(u16::from(settled).wrapping_sub(1));
        }
        for (tags, h) in out.iter_mut().zip(hashes) {
            if *tags == Tags::ALL {
                let (home, fingerprint) = self.place(*h);
                *tags = self.tags_probing(home, LANES_LOW * u64::from(fingerprint));
            }
        }
    }

    /// The tags of the segments that may hold an id, by its
    /// [`IdKey::hash`]: empty means no segment the filter covers holds it.
    /// One id at a time, by the whole probe: the reference the tests hold
    /// [`tags_of_all`](IdFilter::tags_of_all) to.
    #[cfg(test)]
    pub(crate) fn tags(&self, hash: u64) -> Tags {
        let (home, fingerprint) = self.place(hash);
        self.tags_probing(home, LANES_LOW * u64::from(fingerprint))
    }

    /// The tags of the segments that may hold an id whose home word is
    /// `home` and whose fingerprint, in every lane, is `wanted`. Reads its
    /// probe sequence up to the first word with a free slot (an entry lies
    /// only there or before), usually one to three words of one cache
    /// line. Out of line: [`tags_of_all`](IdFilter::tags_of_all) settles
    /// most ids without it.
    #[inline(never)]
    fn tags_probing(&self, home: usize, wanted: u64) -> Tags {
        let mut tags = 0u16;
        self.probe(home, |word| {
            let v = word.load(Ordering::Relaxed);
            // Lanes whose fingerprint matches; an empty lane never does,
            // since no fingerprint is zero.
            let mut hits = zero_lanes((v & LANES_FINGERPRINT) ^ wanted);
            while hits != 0 {
                let lane = hits.trailing_zeros() - 15;
                tags |= 1 << ((v >> lane) as u16 & ((1 << TAG_BITS) - 1));
                hits &= hits - 1;
            }
            zero_lanes(v) != 0
        });
        if self.overflowed.load(Ordering::Relaxed) {
            return Tags::ALL;
        }
        Tags(tags)
    }
}

/// The capacity a filter is built for when `events` sealed events must go
/// in: a quarter more, so that it takes that many again before it is
/// rebuilt (off the writer's thread; a rebuild reads every sealed id
/// table once).
pub(crate) fn capacity_for(events: u64) -> u64 {
    events.saturating_add(events / 4).max(MIN_CAPACITY)
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
#[derive(Clone, Debug)]
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
            // again (inserting one twice changes nothing). The pass reads
            // the whole id table through the map: its pages are given back
            // as it goes, so that the build (which runs beside whatever the
            // store is doing after an open) keeps no more than a few
            // hundred KiB of the file resident. A chunk of ids at a time,
            // their home words read first, so that the cache misses of
            // their insertions overlap (see `touch`).
            let taken = table.with_view(segment.as_deref(), |view| {
                let mut ids = view.ids();
                let key = IdKey::get();
                let mut chunk = [0u64; 64];
                let mut since_release = 0usize;
                loop {
                    let mut n = 0;
                    for (slot, (id, _)) in chunk.iter_mut().zip(ids.by_ref()) {
                        *slot = key.hash(&id);
                        n += 1;
                    }
                    let Some(hashes) = chunk.get(..n).filter(|h| !h.is_empty()) else {
                        break;
                    };
                    filter.touch(hashes.iter().copied());
                    for h in hashes {
                        filter.insert(*h, table.segment);
                    }
                    since_release += n;
                    if since_release >= RELEASE_EVERY_IDS {
                        table.release_pages();
                        since_release = 0;
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

    fn hash(id: &[u8; 16]) -> u64 {
        IdKey::get().hash(id)
    }

    fn id(i: u64) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&i.to_le_bytes());
        b[8..].copy_from_slice(&(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
        b
    }

    #[test]
    fn lanes_are_found_exactly() {
        assert_eq!(zero_lanes(0), LANES_HIGH);
        assert_eq!(zero_lanes(u64::MAX), 0);
        assert_eq!(zero_lanes(0x0001_0000_8000_ffff), 0x0000_8000_0000_0000);
        // A zero lane below a lane of 1 (where the short form borrows).
        assert_eq!(zero_lanes(0x0000_0000_0001_0000), 0x8000_8000_0000_8000);
    }

    #[test]
    fn never_forgets_and_rarely_guesses() {
        let f = IdFilter::with_capacity(100_000);
        for i in 0..100_000 {
            f.insert(hash(&id(i)), (i / 7_000) as u32);
        }
        for i in 0..100_000 {
            assert!(f.tags(hash(&id(i))).has((i / 7_000) as u32), "id {i}");
        }
        let false_maybes = (1_000_000..1_100_000)
            .filter(|i| !f.tags(hash(&id(*i))).is_empty())
            .count();
        // Full (four-fifths of its slots): a fresh id meets about 15
        // entries, each with one chance in 4,095 of its fingerprint.
        println!("{false_maybes} false maybes in 100,000");
        assert!(false_maybes < 600, "{false_maybes} false maybes");
        let bytes = f.bytes() as u64;
        assert!((250_000..250_064).contains(&bytes), "{bytes} bytes");
    }

    #[test]
    fn a_tiny_filter_still_answers() {
        let f = IdFilter::with_capacity(0);
        assert!(f.tags(hash(&id(1))).is_empty());
        f.insert(hash(&id(1)), 17);
        assert_eq!(f.tags(hash(&id(1))), Tags(1 << 1));
        assert!(f.tags(hash(&id(1))).has(1));
        assert!(!f.tags(hash(&id(1))).has(2));
        assert_eq!(capacity_for(10), MIN_CAPACITY);
        assert_eq!(capacity_for(1 << 20), 5 << 18);
    }

    /// Far more ids than slots: every word fills, the overflow is
    /// noticed, and the filter answers "maybe, anywhere" rather than a
    /// false "no".
    #[test]
    fn an_overfull_filter_answers_maybe_everywhere() {
        let f = IdFilter::with_capacity(0);
        for i in 0..100 {
            f.insert(hash(&id(i)), i as u32);
        }
        assert_eq!(f.tags(hash(&id(5))), Tags::ALL);
        assert_eq!(f.tags(hash(&id(1_000))), Tags::ALL);
        let mut all = [Tags::default(); 2];
        f.tags_of_all(&[hash(&id(5)), hash(&id(1_000))], &mut all);
        assert_eq!(all, [Tags::ALL; 2]);
    }

    /// The seed of a randomized test: `ANNALS_SEED` when set (to replay a
    /// failure), otherwise new each run; printed either way.
    fn seed() -> u64 {
        let seed = std::env::var("ANNALS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                use std::hash::{BuildHasher, RandomState};
                RandomState::new().hash_one(0u8)
            });
        println!(
            "seed {seed} (replay with ANNALS_SEED={seed} {})",
            IdKey::replay()
        );
        seed
    }

    /// The filter against a model (a map from id to its segment), with
    /// random capacities, fills up to and past capacity, ids that share
    /// words and fingerprints (from a small id space, so that the same
    /// fingerprint and tag repeat), and segments numbered past 16: every
    /// id inserted is reported with its segment's tag, never a false "no";
    /// an id never inserted is reported rarely.
    #[test]
    fn randomized_against_a_model_never_a_false_no() {
        let seed = seed();
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..40 {
            let capacity = next() % 5_000;
            let f = IdFilter::with_capacity(capacity);
            let fill = capacity * (next() % 140) / 100;
            let space = 1 + next() % (fill * 2 + 1);
            let mut model = std::collections::HashMap::<u64, Vec<u32>>::new();
            let segments = 1 + (next() % 40) as u32;
            for k in 0..fill {
                let i = next() % space;
                let segment = (k * u64::from(segments) / fill.max(1)) as u32 + 3;
                f.insert(hash(&id(i)), segment);
                model.entry(i).or_default().push(segment);
            }
            for (i, segments) in &model {
                let tags = f.tags(hash(&id(*i)));
                for s in segments {
                    assert!(
                        tags.has(*s),
                        "seed {seed} round {round}: id {i} of segment {s} missed ({tags:?})"
                    );
                }
            }
            // A batch's lookup answers as one id's at a time, for stored
            // and fresh ids alike.
            let hashes: Vec<u64> = (0..space + 200).map(|i| hash(&id(i))).collect();
            let mut all = vec![Tags::default(); hashes.len()];
            f.tags_of_all(&hashes, &mut all);
            for (k, (h, tags)) in hashes.iter().zip(&all).enumerate() {
                assert_eq!(*tags, f.tags(*h), "seed {seed} round {round}: id {k}");
            }
            if fill <= capacity && capacity > 500 {
                let fresh = (0..2_000)
                    .filter(|k| !f.tags(hash(&id(space + k))).is_empty())
                    .count();
                assert!(
                    fresh < 60,
                    "seed {seed} round {round}: {fresh} false maybes"
                );
            }
        }
    }

    /// Lookups racing an extension on another thread: every id put in
    /// before the race started is always found.
    #[test]
    fn lookups_during_an_extension_find_what_was_there() {
        let f = Arc::new(IdFilter::with_capacity(20_000));
        for i in 0..10_000 {
            f.insert(hash(&id(i)), 1);
        }
        let writer = {
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                for i in 10_000..20_000 {
                    f.insert(hash(&id(i)), 2);
                }
            })
        };
        for round in 0..5 {
            for i in 0..10_000 {
                assert!(f.tags(hash(&id(i))).has(1), "round {round} id {i}");
            }
        }
        writer.join().unwrap();
        assert!((10_000..20_000).all(|i| f.tags(hash(&id(i))).has(2)));
    }
}
