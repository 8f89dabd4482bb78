//! The bytes of a segment index file: what reads and recovery need of one
//! segment without scanning it. Pure encode and decode, no I/O; FORMAT.md
//! gives the layout and this module's constants mirror it.
//!
//! A segment index is derived data. It is written when its segment is
//! sealed (or, for the active segment, at a clean close: then it covers a
//! prefix of the segment's frames), and rebuilt from its segment whenever
//! it is missing or fails a check.
//!
//! Since version 3 every part a read uses has its own checksum: a block of
//! offsets, of hash slots, of the id filter or of the id table, and each
//! stream's entry together with its name and its run of positions. A view
//! made with [`PartChecks`] checks each part the first time it reads it and
//! remembers it (an index file never changes once written), so that a read
//! checks the bytes it uses and no others; [`decode_index`] checks them all.
//!
//! Layout, little-endian:
//!
//! | part | bytes |
//! | --- | --- |
//! | header | [`INDEX_HEADER_LEN`] |
//! | checksums | 4 per block of the offsets, slots, id filter and ids: one CRC-32 each |
//! | offsets | 4 per event: the record offset of position `first_position + i` |
//! | positions | 4 per event: positions relative to `first_position`, grouped by stream in entry order |
//! | entries | [`ENTRY_LEN`] per stream: first version, count, where its positions start, where its name lies, and the CRC-32 of the entry, its name and its positions |
//! | slots | [`SLOT_LEN`] per slot, a power of two at least twice the streams: an open-addressed table from a name's hash to its entry |
//! | names | the stream names, one after another |
//! | id filter | [`id_filter_len`] bytes: a Bloom filter over the events' ids |
//! | ids | [`ID_ENTRY_LEN`] per event: (id, position relative to `first_position`), sorted by id then position |

#![deny(clippy::indexing_slicing)]

use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The first eight bytes of every segment index file.
pub const INDEX_MAGIC: [u8; 8] = *b"ANNALIDX";
/// The version of the index format this code writes and the only one it
/// reads. Version 2 added the event-id filter and table; version 3 replaced
/// the one checksum of the whole body by one per part (see
/// [`PartChecks`]). A file of any other version is refused like any
/// unusable index, and rebuilt from its segment.
pub const INDEX_VERSION: u32 = 3;
/// Bytes of the header.
pub const INDEX_HEADER_LEN: usize = 64;
/// Bytes of one stream entry: 24 of fields, then the CRC-32 of those 24
/// bytes, the stream's name and its run of positions.
pub const ENTRY_LEN: usize = 28;
/// Where an entry's checksum lies in it.
const ENTRY_CRC_AT: usize = 24;
/// Offsets per checksummed block of the offsets part (4 KiB).
pub const OFFSETS_PER_BLOCK: usize = 1024;
/// Hash slots per checksummed block of the slots part (4 KiB).
pub const SLOTS_PER_BLOCK: usize = 512;
/// Bytes per checksummed block of the id filter.
pub const FILTER_BLOCK_LEN: usize = 4096;
/// Entries per checksummed block of the id table (5 KiB).
pub const IDS_PER_BLOCK: usize = 256;
/// Bytes of one checksum of the checksums part.
pub const BLOCK_CRC_LEN: usize = 4;
/// Bytes of one hash slot.
pub const SLOT_LEN: usize = 8;
/// Bytes of one entry of the id table: the id (16) and its position
/// relative to the segment's first (u32).
pub const ID_ENTRY_LEN: usize = 20;
/// Bits of the id filter per event: with [`ID_FILTER_PROBES`] probes, a
/// fresh id passes one segment's filter about once in 2,000 tries.
pub const ID_FILTER_BITS_PER_EVENT: usize = 16;
/// Bits of the id filter each id sets and each lookup tests.
pub const ID_FILTER_PROBES: u64 = 8;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 8;
const FLAGS_AT: usize = 10;
const EVENT_COUNT_AT: usize = 12;
const STORE_ID_AT: usize = 16;
const SEGMENT_AT: usize = 24;
const FIRST_POSITION_AT: usize = 32;
const DATA_END_AT: usize = 40;
const LAST_FRAME_AT: usize = 44;
const STREAM_COUNT_AT: usize = 48;
const NAMES_LEN_AT: usize = 52;
/// The CRC-32 of the checksums part (version 2: of the whole body).
const CHECKSUMS_CRC_AT: usize = 56;
const HEADER_CRC_AT: usize = 60;

/// The flag of an index written at a clean close for the segment then
/// active: it covers the frames written so far, and the segment goes on.
pub const FLAG_OPEN: u16 = 1;

/// What an index file's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexHeader {
    /// Whether the segment was still active when the index was written
    /// ([`FLAG_OPEN`]): the index covers a prefix of its frames.
    pub open: bool,
    /// The store the indexed segment belongs to.
    pub store_id: u64,
    /// The number of the indexed segment.
    pub segment_number: u64,
    /// The position of the segment's first event.
    pub first_position: u64,
    /// How many events the index covers.
    pub event_count: u32,
    /// Where the frames it covers end in the segment file.
    pub data_end: u32,
    /// Where the last frame it covers starts (the header's length when it
    /// covers none).
    pub last_frame_at: u32,
    /// How many streams have events in the segment.
    pub stream_count: u32,
    /// Bytes of the stream names part.
    pub names_len: u32,
}

/// What the index holds for one stream: its events in this segment are
/// versions `first_version..first_version + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    /// The version of the stream's first event in the segment.
    pub first_version: u64,
    /// How many of its events the segment holds.
    pub count: u32,
    /// Where its positions start in the positions part.
    pub positions_at: u32,
    name_at: u32,
    name_len: u32,
    /// Its number in the entries part, whose check a view remembers.
    number: u32,
}

impl StreamEntry {
    /// The versions the entry covers.
    pub fn versions(&self) -> Range<u64> {
        self.first_version..self.first_version + u64::from(self.count)
    }
}

/// One stream of a segment, for [`encode_index`]: its name, its first
/// version in the segment, and its positions there, relative to the
/// segment's first position.
#[derive(Clone, Copy, Debug)]
pub struct StreamPart<'a> {
    /// The stream's name.
    pub name: &'a [u8],
    /// The version of its first event in the segment.
    pub first_version: u64,
    /// The positions of its events, relative to the segment's first.
    pub positions: &'a [u32],
}

/// A stable 64-bit hash of a stream name (FNV-1a, then a finalizer): the
/// same on every build and machine, since it is stored.
pub fn name_hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// How many slots an index with `streams` streams has.
fn slot_count(streams: u32) -> Option<usize> {
    (streams as usize)
        .checked_mul(2)?
        .max(2)
        .checked_next_power_of_two()
}

/// Where each part starts, and the file's whole length.
#[derive(Clone, Copy, Debug)]
struct Layout {
    checksums: usize,
    offsets: usize,
    positions: usize,
    entries: usize,
    slots: usize,
    slot_count: usize,
    names: usize,
    id_filter: usize,
    /// The filter's bit count, as a [`Modulus`] for the probes.
    id_filter_modulus: Modulus,
    ids: usize,
    len: usize,
    events: usize,
    streams: usize,
    /// The blocks of each checksummed part, and where each part's first
    /// block's checksum is in the checksums part (in blocks).
    offset_blocks: usize,
    slot_blocks: usize,
    filter_blocks: usize,
    id_blocks: usize,
}

/// The checksummed blocks of the index, by part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Offsets(usize),
    Slots(usize),
    Filter(usize),
    Ids(usize),
}

impl Block {
    /// The block in words, for messages.
    fn describe(&self) -> String {
        match self {
            Block::Offsets(i) => format!("offsets block {i}"),
            Block::Slots(i) => format!("hash slots block {i}"),
            Block::Filter(i) => format!("id filter block {i}"),
            Block::Ids(i) => format!("id table block {i}"),
        }
    }
}

impl Layout {
    fn blocks(&self) -> usize {
        self.offset_blocks + self.slot_blocks + self.filter_blocks + self.id_blocks
    }

    /// The number of `block` in the checksums part.
    fn block_number(&self, block: Block) -> usize {
        match block {
            Block::Offsets(i) => i,
            Block::Slots(i) => self.offset_blocks + i,
            Block::Filter(i) => self.offset_blocks + self.slot_blocks + i,
            Block::Ids(i) => self.offset_blocks + self.slot_blocks + self.filter_blocks + i,
        }
    }

    /// The bytes `block` covers.
    fn block_range(&self, block: Block) -> Range<usize> {
        let (start, end, len) = match block {
            Block::Offsets(i) => (self.offsets, self.positions, 4 * OFFSETS_PER_BLOCK * i),
            Block::Slots(i) => (self.slots, self.names, SLOT_LEN * SLOTS_PER_BLOCK * i),
            Block::Filter(i) => (self.id_filter, self.ids, FILTER_BLOCK_LEN * i),
            Block::Ids(i) => (self.ids, self.len, ID_ENTRY_LEN * IDS_PER_BLOCK * i),
        };
        let per = match block {
            Block::Offsets(_) => 4 * OFFSETS_PER_BLOCK,
            Block::Slots(_) => SLOT_LEN * SLOTS_PER_BLOCK,
            Block::Filter(_) => FILTER_BLOCK_LEN,
            Block::Ids(_) => ID_ENTRY_LEN * IDS_PER_BLOCK,
        };
        let from = start.saturating_add(len).min(end);
        from..from.saturating_add(per).min(end)
    }

    /// Every block, in the order of their checksums.
    fn all_blocks(&self) -> impl Iterator<Item = Block> + '_ {
        (0..self.offset_blocks)
            .map(Block::Offsets)
            .chain((0..self.slot_blocks).map(Block::Slots))
            .chain((0..self.filter_blocks).map(Block::Filter))
            .chain((0..self.id_blocks).map(Block::Ids))
    }
}

/// Bytes of the id filter of an index covering `events` events: 16 bits
/// per event, in whole 64-bit words, at least one word.
pub fn id_filter_len(events: u32) -> Option<usize> {
    let bits = (events as usize).checked_mul(ID_FILTER_BITS_PER_EVENT)?;
    bits.div_ceil(64).max(1).checked_mul(8)
}

/// The two 64-bit hashes of an event id that place its filter bits
/// (double hashing: probe `i` is bit `(h1 + i * h2) mod bits`). Stable
/// across builds and machines, since the filter is stored: each half of
/// the id is mixed with the finalizer of [`name_hash`].
pub fn id_hashes(id: &[u8; 16]) -> (u64, u64) {
    let mix = |mut h: u64| {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        h
    };
    let (lo, hi) = id.split_at(8);
    let lo = u64::from_le_bytes(lo.try_into().unwrap_or_default());
    let hi = u64::from_le_bytes(hi.try_into().unwrap_or_default());
    let h1 = mix(lo ^ hi.rotate_left(17));
    let h2 = mix(hi ^ 0x9e37_79b9_7f4a_7c15 ^ lo.rotate_left(41)) | 1;
    (h1, h2)
}

fn layout(events: u32, streams: u32, names_len: u32) -> Option<Layout> {
    let events = events as usize;
    let slot_count = slot_count(streams)?;
    let filter_len = id_filter_len(events as u32)?;
    let offset_blocks = events.div_ceil(OFFSETS_PER_BLOCK);
    let slot_blocks = slot_count.div_ceil(SLOTS_PER_BLOCK);
    let filter_blocks = filter_len.div_ceil(FILTER_BLOCK_LEN);
    let id_blocks = events.div_ceil(IDS_PER_BLOCK);
    let blocks = offset_blocks
        .checked_add(slot_blocks)?
        .checked_add(filter_blocks)?
        .checked_add(id_blocks)?;
    let checksums = INDEX_HEADER_LEN;
    let offsets = checksums.checked_add(blocks.checked_mul(BLOCK_CRC_LEN)?)?;
    let positions = offsets.checked_add(events.checked_mul(4)?)?;
    let entries = positions.checked_add(events.checked_mul(4)?)?;
    let slots = entries.checked_add((streams as usize).checked_mul(ENTRY_LEN)?)?;
    let names = slots.checked_add(slot_count.checked_mul(SLOT_LEN)?)?;
    let id_filter = names.checked_add(names_len as usize)?;
    let ids = id_filter.checked_add(filter_len)?;
    let len = ids.checked_add(events.checked_mul(ID_ENTRY_LEN)?)?;
    Some(Layout {
        checksums,
        offsets,
        positions,
        entries,
        slots,
        slot_count,
        names,
        id_filter,
        id_filter_modulus: Modulus::new((filter_len as u64) * 8),
        ids,
        len,
        events,
        streams: streams as usize,
        offset_blocks,
        slot_blocks,
        filter_blocks,
        id_blocks,
    })
}

/// Encodes the index of a segment: `header` (whose counts are taken from
/// `offsets` and `streams`), the record offset of each event in position
/// order, each stream's part, and each event's id with its position
/// relative to the segment's first (in any order; one per event). Returns
/// `None` when the counts do not fit the format's 32-bit fields or there
/// is not one id per event.
pub fn encode_index(
    header: &IndexHeader,
    offsets: &[u32],
    streams: &[StreamPart<'_>],
    ids: &[([u8; 16], u32)],
) -> Option<Vec<u8>> {
    let event_count = u32::try_from(offsets.len()).ok()?;
    if ids.len() != offsets.len() {
        return None;
    }
    let stream_count = u32::try_from(streams.len()).ok()?;
    let names_len = streams.iter().try_fold(0u32, |n, s| {
        n.checked_add(u32::try_from(s.name.len()).ok()?)
    })?;
    let l = layout(event_count, stream_count, names_len)?;
    let mut out = vec![0u8; l.len];
    for (i, offset) in offsets.iter().enumerate() {
        put(&mut out, l.offsets + 4 * i, &offset.to_le_bytes());
    }
    let mask = l.slot_count - 1;
    let (mut positions_at, mut name_at) = (0u32, 0u32);
    for (i, s) in streams.iter().enumerate() {
        let count = u32::try_from(s.positions.len()).ok()?;
        for (j, p) in s.positions.iter().enumerate() {
            let at = l.positions + 4 * (positions_at as usize + j);
            put(&mut out, at, &p.to_le_bytes());
        }
        let entry_at = l.entries + ENTRY_LEN * i;
        put(&mut out, entry_at, &s.first_version.to_le_bytes());
        put(&mut out, entry_at + 8, &count.to_le_bytes());
        put(&mut out, entry_at + 12, &positions_at.to_le_bytes());
        put(&mut out, entry_at + 16, &name_at.to_le_bytes());
        put(
            &mut out,
            entry_at + 20,
            &(s.name.len() as u32).to_le_bytes(),
        );
        put(&mut out, l.names + name_at as usize, s.name);
        let hash = name_hash(s.name);
        let mut slot = (hash as usize) & mask;
        while read_u32(&out, l.slots + SLOT_LEN * slot).is_some_and(|e| e != 0) {
            slot = (slot + 1) & mask;
        }
        put(
            &mut out,
            l.slots + SLOT_LEN * slot,
            &(i as u32 + 1).to_le_bytes(),
        );
        put(
            &mut out,
            l.slots + SLOT_LEN * slot + 4,
            &((hash >> 32) as u32).to_le_bytes(),
        );
        positions_at = positions_at.checked_add(count)?;
        name_at += s.name.len() as u32;
    }
    let sorted = sorted_ids(ids);
    for (i, (id, relative)) in sorted.iter().enumerate() {
        let at = l.ids + ID_ENTRY_LEN * i;
        put(&mut out, at, id);
        put(&mut out, at + 16, &relative.to_le_bytes());
        for bit in FilterBits::new(id_hashes(id), &l.id_filter_modulus) {
            let byte = l.id_filter + (bit / 8) as usize;
            if let Some(b) = out.get_mut(byte) {
                *b |= 1 << (bit % 8);
            }
        }
    }
    let header = IndexHeader {
        event_count,
        stream_count,
        names_len,
        ..*header
    };
    put(&mut out, MAGIC_AT, &INDEX_MAGIC);
    put(&mut out, VERSION_AT, &(INDEX_VERSION as u16).to_le_bytes());
    let flags = if header.open { FLAG_OPEN } else { 0 };
    put(&mut out, FLAGS_AT, &flags.to_le_bytes());
    put(&mut out, EVENT_COUNT_AT, &header.event_count.to_le_bytes());
    put(&mut out, STORE_ID_AT, &header.store_id.to_le_bytes());
    put(&mut out, SEGMENT_AT, &header.segment_number.to_le_bytes());
    put(
        &mut out,
        FIRST_POSITION_AT,
        &header.first_position.to_le_bytes(),
    );
    put(&mut out, DATA_END_AT, &header.data_end.to_le_bytes());
    put(&mut out, LAST_FRAME_AT, &header.last_frame_at.to_le_bytes());
    put(
        &mut out,
        STREAM_COUNT_AT,
        &header.stream_count.to_le_bytes(),
    );
    put(&mut out, NAMES_LEN_AT, &header.names_len.to_le_bytes());
    seal(&mut out, &l);
    Some(out)
}

/// Writes every checksum of an index whose fields are in place, last:
/// each entry's over itself, its name and its positions; each block's;
/// then the checksums part's, and the header's.
fn seal(out: &mut [u8], l: &Layout) {
    for i in 0..l.streams {
        let crc = entry_crc(out, l, i).unwrap_or(0);
        put(
            out,
            l.entries + ENTRY_LEN * i + ENTRY_CRC_AT,
            &crc.to_le_bytes(),
        );
    }
    for block in l.all_blocks() {
        let crc = crc32fast::hash(out.get(l.block_range(block)).unwrap_or_default());
        let at = l.checksums + BLOCK_CRC_LEN * l.block_number(block);
        put(out, at, &crc.to_le_bytes());
    }
    let checksums_crc = crc32fast::hash(out.get(l.checksums..l.offsets).unwrap_or_default());
    put(out, CHECKSUMS_CRC_AT, &checksums_crc.to_le_bytes());
    let header_crc = crc32fast::hash(out.get(..HEADER_CRC_AT).unwrap_or_default());
    put(out, HEADER_CRC_AT, &header_crc.to_le_bytes());
}

/// Makes every checksum of an index file right again after its fields
/// were changed: for tests and tools that forge an index whose checksums
/// pass, to reach the checks behind them. False, changing nothing, when
/// the header's magic, version or sizes do not describe `bytes`.
pub fn reseal_index(bytes: &mut [u8]) -> bool {
    let Ok(header) = parse_index_header(bytes, false) else {
        return false;
    };
    match layout(header.event_count, header.stream_count, header.names_len) {
        Some(l) if l.len == bytes.len() => {
            seal(bytes, &l);
            true
        }
        _ => false,
    }
}

/// `ids` in the id table's order: by id (its bytes in order), then by
/// position, as 128-bit keys. The sort runs on the writer's thread when the
/// segment is sealed, and appends wait for it: a comparison sort of a
/// segment's 200,000 random ids took 12 ms. So the keys are first dealt
/// into 65,536 buckets by the 16 bits that follow the prefix all of them
/// share (the time of a batch of UUID v7s, or nothing for random ids),
/// which orders the buckets, and then each bucket, a few keys as a rule,
/// is sorted on its own.
fn sorted_ids(ids: &[([u8; 16], u32)]) -> Vec<([u8; 16], u32)> {
    // Big-endian is the reading under which an integer's order is the
    // order of the bytes: the table is sorted by bytes, whatever the host.
    #[expect(
        clippy::big_endian_bytes,
        reason = "the id table is sorted by its bytes, which is the order of the big-endian number"
    )]
    let key = |id: &[u8; 16]| u128::from_be_bytes(*id);
    let keyed: Vec<(u128, u32)> = ids.iter().map(|(id, p)| (key(id), *p)).collect();
    #[expect(
        clippy::big_endian_bytes,
        reason = "back from the sort key to the id's bytes"
    )]
    bucket_sort(keyed)
        .into_iter()
        .map(|(k, p)| (k.to_be_bytes(), p))
        .collect()
}

/// `x mod d` for a fixed `d` by two multiplications instead of a division
/// (Lemire, Kaser and Kurz, "Faster remainder by direct computation",
/// 2019: with `m = ceil(2^128 / d)`, `x mod d` is the high 128 bits of
/// `((m * x) mod 2^128) * d`, exact for every 64-bit `x` and `d`). A
/// lookup of a fresh id tests one or two filter bits in every sealed
/// segment, each a 64-bit remainder, and the division was the larger
/// part of a test whose byte is in cache. A test holds it equal to `%`.
#[derive(Clone, Copy, Debug)]
struct Modulus {
    d: u64,
    m: u128,
}

impl Modulus {
    fn new(d: u64) -> Modulus {
        // A filter has at least 64 bits; 1 stands in for a zero that no
        // layout produces, so that nothing here divides by zero.
        let d = d.max(1);
        Modulus {
            d,
            m: (u128::MAX / u128::from(d)).wrapping_add(1),
        }
    }

    fn of(&self, x: u64) -> u64 {
        if self.d == 1 {
            return 0;
        }
        let low = self.m.wrapping_mul(u128::from(x));
        let d = u128::from(self.d);
        let lo = u128::from(low as u64) * d;
        let hi = (low >> 64) * d;
        ((hi + (lo >> 64)) >> 64) as u64
    }
}

/// The filter bits of an id, `(h1 + i * h2) mod 2^64 mod bits` for probe
/// `i` (see [`id_hashes`]), with three remainders (by [`Modulus`]) rather
/// than eight: a seal sets the bits of every id of its segment, on the
/// writer's thread. With `a = h1 mod bits`, `b = h2 mod bits` and
/// `r = 2^64 mod bits`, the next bit is the last plus `b`, less `r` when
/// the 64-bit sum wrapped, all modulo `bits`. Lookups, which stop at the
/// first clear bit, compute each probe directly
/// ([`IndexView::may_hold_hashed`]); a test holds the two equal.
struct FilterBits {
    bit: u64,
    step: u64,
    wrap: u64,
    sum: u64,
    h2: u64,
    bits: u64,
    left: u64,
}

impl FilterBits {
    fn new((h1, h2): (u64, u64), modulus: &Modulus) -> FilterBits {
        let bits = modulus.d;
        FilterBits {
            bit: modulus.of(h1),
            step: modulus.of(h2),
            // 2^64 mod bits, from (2^64 - bits) mod bits without overflow.
            wrap: modulus.of(u64::MAX - bits + 1),
            sum: h1,
            h2,
            bits,
            left: ID_FILTER_PROBES,
        }
    }
}

impl Iterator for FilterBits {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.left = self.left.checked_sub(1)?;
        let bit = self.bit;
        let (sum, wrapped) = self.sum.overflowing_add(self.h2);
        self.sum = sum;
        // Each operand is below `bits`, so one correction each suffices.
        let mut next = self.bit + self.step;
        if next >= self.bits {
            next -= self.bits;
        }
        if wrapped {
            next = if next >= self.wrap {
                next - self.wrap
            } else {
                next + self.bits - self.wrap
            };
        }
        self.bit = next;
        Some(bit)
    }
}

/// Bits of the key that choose a bucket in [`bucket_sort`].
const BUCKET_BITS: u32 = 16;

/// Sorts `keyed` by key, then by position; see [`sorted_ids`].
fn bucket_sort(mut keyed: Vec<(u128, u32)>) -> Vec<(u128, u32)> {
    let first = keyed.first().map_or(0, |k| k.0);
    let differ = keyed.iter().fold(0u128, |acc, k| acc | (k.0 ^ first));
    // Few keys, or keys already in order (ids generated in order): the
    // comparison sort is as fast, and linear on a sorted run.
    if keyed.len() < 4096 || keyed.is_sorted() {
        keyed.sort_unstable();
        return keyed;
    }
    // Every key has the same bits above the highest one where any two
    // differ; the bucket is the 16 bits from that one down.
    let shift = (128 - differ.leading_zeros()).saturating_sub(BUCKET_BITS);
    let bucket = |k: u128| ((k >> shift) as usize) & ((1 << BUCKET_BITS) - 1);
    // `starts[b]`: where bucket `b` begins in the output.
    let mut starts = vec![0usize; (1 << BUCKET_BITS) + 1];
    for k in &keyed {
        if let Some(c) = starts.get_mut(bucket(k.0) + 1) {
            *c += 1;
        }
    }
    let mut sum = 0;
    for c in starts.iter_mut() {
        sum += *c;
        *c = sum;
    }
    let mut next = starts.clone();
    let mut out = vec![(0u128, 0u32); keyed.len()];
    for k in keyed {
        if let Some(at) = next.get_mut(bucket(k.0)) {
            if let Some(slot) = out.get_mut(*at) {
                *slot = k;
            }
            *at += 1;
        }
    }
    for w in starts.windows(2) {
        if let [from, to] = *w
            && let Some(run) = out.get_mut(from..to)
        {
            run.sort_unstable();
        }
    }
    out
}

/// A decoded index over its bytes: the header and the length checked, and
/// each part either checked already (a view from [`decode_index`], or over
/// bytes this crate built) or checked on first use through its
/// [`PartChecks`].
#[derive(Clone, Copy, Debug)]
pub struct IndexView<'a> {
    bytes: &'a [u8],
    header: IndexHeader,
    layout: Layout,
    /// Where the parts checked so far are remembered; `None` when every
    /// part is trusted already.
    checks: Option<&'a PartChecks>,
}

/// Which parts of one index file have passed their checksums, remembered
/// for as long as the file is mapped (it never changes), and whether one
/// failed. One bit for the checksums part, one per block, one per stream
/// entry: at most one bit per 28 bytes of the file.
#[derive(Debug)]
pub struct PartChecks {
    bits: Box<[AtomicU64]>,
    damaged: OnceLock<String>,
}

impl PartChecks {
    /// The record of the parts of the index `view` covers, none checked.
    pub fn new(view: &IndexView<'_>) -> PartChecks {
        let l = &view.layout;
        let bits = 1 + l.blocks() + l.streams;
        PartChecks {
            bits: (0..bits.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            damaged: OnceLock::new(),
        }
    }

    /// Why a part failed its check, if one did.
    pub fn damaged(&self) -> Option<&str> {
        self.damaged.get().map(String::as_str)
    }

    fn is_set(&self, bit: usize) -> bool {
        self.bits
            .get(bit / 64)
            .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (bit % 64)) != 0)
    }

    fn set(&self, bit: usize) {
        if let Some(w) = self.bits.get(bit / 64) {
            w.fetch_or(1 << (bit % 64), Ordering::AcqRel);
        }
    }

    fn fail(&self, reason: String) -> bool {
        let _ = self.damaged.set(reason);
        false
    }
}

/// Decodes a whole index file and checks every part of it: header,
/// length, the checksums part and every checksum in it. Offsets and
/// positions are not checked one by one against the segment: every read
/// checks the record it is pointed at (checksum, position, stream and
/// version), so a wrong entry can fail a read but never return wrong data.
pub fn decode_index(untrusted: &[u8]) -> Result<IndexView<'_>, String> {
    let view = decode_index_unchecked(untrusted)?;
    let checks = PartChecks::new(&view);
    let checking = IndexView {
        checks: Some(&checks),
        ..view
    };
    checking.check_all()?;
    Ok(view)
}

/// The view over bytes whose header (and its checksum) and length check
/// out, with no part checked: for bytes this crate just built, or through
/// [`IndexView::checked_by`], whose parts are checked as they are used.
pub fn decode_index_unchecked(untrusted: &[u8]) -> Result<IndexView<'_>, String> {
    let header = decode_index_header(untrusted)?;
    let layout = layout(header.event_count, header.stream_count, header.names_len)
        .ok_or("index sizes overflow")?;
    if layout.len != untrusted.len() {
        return Err(format!(
            "index file is {} bytes where its header implies {}",
            untrusted.len(),
            layout.len
        ));
    }
    Ok(IndexView {
        bytes: untrusted,
        header,
        layout,
        checks: None,
    })
}

/// The view over bytes that passed [`decode_index_unchecked`] before: the
/// header's fields and the length are read and checked again, its checksum
/// is not. This is the view a lookup takes, once per segment per lookup,
/// where a checksum of the header cost more than the filter test it led
/// to. Bytes that changed since their check can make a lookup miss or land
/// wrong, never read out of bounds; every caller checks the record it is
/// sent to.
pub fn view_checked_before(bytes: &[u8]) -> Option<IndexView<'_>> {
    let header = parse_index_header(bytes, false).ok()?;
    let layout = layout(header.event_count, header.stream_count, header.names_len)?;
    (layout.len == bytes.len()).then_some(IndexView {
        bytes,
        header,
        layout,
        checks: None,
    })
}

/// Decodes and checks an index file's header alone.
pub fn decode_index_header(untrusted: &[u8]) -> Result<IndexHeader, String> {
    parse_index_header(untrusted, true)
}

/// Decodes an index file's header, checking its checksum when `check_crc`.
fn parse_index_header(untrusted: &[u8], check_crc: bool) -> Result<IndexHeader, String> {
    let head = untrusted
        .get(..INDEX_HEADER_LEN)
        .ok_or_else(|| format!("index file of {} bytes has no header", untrusted.len()))?;
    if head.get(..8) != Some(&INDEX_MAGIC[..]) {
        return Err("not an annals segment index (bad magic)".into());
    }
    let crc = read_u32(head, HEADER_CRC_AT).ok_or("index too short")?;
    if check_crc && crc32fast::hash(head.get(..HEADER_CRC_AT).unwrap_or_default()) != crc {
        return Err("index header fails its checksum".into());
    }
    let word = read_u32(head, VERSION_AT).ok_or("index too short")?;
    let (version, flags) = (word & 0xffff, word >> 16);
    if version != INDEX_VERSION {
        return Err(format!(
            "index format version {version}, where this build reads {INDEX_VERSION}"
        ));
    }
    if flags & !u32::from(FLAG_OPEN) != 0 {
        return Err(format!("unknown index flags {flags:#x}"));
    }
    let u32_at = |at| read_u32(head, at).ok_or("index too short");
    let u64_at = |at| read_u64(head, at).ok_or("index too short");
    Ok(IndexHeader {
        open: flags & u32::from(FLAG_OPEN) != 0,
        store_id: u64_at(STORE_ID_AT)?,
        segment_number: u64_at(SEGMENT_AT)?,
        first_position: u64_at(FIRST_POSITION_AT)?,
        event_count: u32_at(EVENT_COUNT_AT)?,
        data_end: u32_at(DATA_END_AT)?,
        last_frame_at: u32_at(LAST_FRAME_AT)?,
        stream_count: u32_at(STREAM_COUNT_AT)?,
        names_len: u32_at(NAMES_LEN_AT)?,
    })
}

impl<'a> IndexView<'a> {
    /// The checked header.
    pub fn header(&self) -> &IndexHeader {
        &self.header
    }

    /// The same view, checking each part on first use and remembering it
    /// in `checks` (which must have been made for these bytes).
    pub fn checked_by(self, checks: &'a PartChecks) -> IndexView<'a> {
        IndexView {
            checks: Some(checks),
            ..self
        }
    }

    /// The same view with every part trusted: for bytes already checked
    /// whole.
    pub fn trusted(self) -> IndexView<'a> {
        IndexView {
            checks: None,
            ..self
        }
    }

    /// Checks every part: the checksums part, every block and every
    /// entry, and that the positions after every stream's run (those of
    /// gap records, which belong to no stream) are zero. The first failure is the error.
    pub fn check_all(&self) -> Result<(), String> {
        let failed = |view: &IndexView<'_>| {
            Err(view
                .checks
                .and_then(PartChecks::damaged)
                .unwrap_or("index part fails its checksum")
                .to_owned())
        };
        if !self.check_checksums() {
            return failed(self);
        }
        for block in self.layout.all_blocks() {
            if !self.check_block(block) {
                return failed(self);
            }
        }
        let mut used = 0usize;
        for i in 0..self.layout.streams {
            if !self.check_entry(i) {
                return failed(self);
            }
            let at = self.layout.entries + ENTRY_LEN * i;
            let count = read_u32(self.bytes, at + 8).unwrap_or(0) as usize;
            let from = read_u32(self.bytes, at + 12).unwrap_or(0) as usize;
            used = used.max(from.saturating_add(count));
        }
        let unused = self.layout.positions + 4 * used.min(self.layout.events)..self.layout.entries;
        if self
            .bytes
            .get(unused)
            .is_none_or(|rest| rest.iter().any(|b| *b != 0))
        {
            return Err("index positions no stream uses are not zero".into());
        }
        Ok(())
    }

    /// Whether the checksums part passes its checksum (in the header).
    fn check_checksums(&self) -> bool {
        let Some(checks) = self.checks else {
            return true;
        };
        if checks.is_set(0) {
            return true;
        }
        let part = self
            .bytes
            .get(self.layout.checksums..self.layout.offsets)
            .unwrap_or_default();
        if read_u32(self.bytes, CHECKSUMS_CRC_AT) != Some(crc32fast::hash(part)) {
            return checks.fail("index body fails its checksum: the checksums part".into());
        }
        checks.set(0);
        true
    }

    /// Whether `block` passes its checksum, checked once.
    fn check_block(&self, block: Block) -> bool {
        let Some(checks) = self.checks else {
            return true;
        };
        let number = self.layout.block_number(block);
        let bit = 1 + number;
        if checks.is_set(bit) {
            return true;
        }
        if !self.check_checksums() {
            return false;
        }
        let stored = read_u32(self.bytes, self.layout.checksums + BLOCK_CRC_LEN * number);
        let bytes = self.bytes.get(self.layout.block_range(block));
        if bytes.is_none() || stored != bytes.map(crc32fast::hash) {
            return checks.fail(format!(
                "index body fails its checksum: {}",
                block.describe()
            ));
        }
        checks.set(bit);
        true
    }

    /// Whether entry `i`, with its name and positions, passes its
    /// checksum, checked once.
    fn check_entry(&self, i: usize) -> bool {
        let Some(checks) = self.checks else {
            return true;
        };
        let bit = 1 + self.layout.blocks() + i;
        if checks.is_set(bit) {
            return true;
        }
        let at = self.layout.entries + ENTRY_LEN * i;
        let stored = read_u32(self.bytes, at + ENTRY_CRC_AT);
        let computed = entry_crc(self.bytes, &self.layout, i);
        if computed.is_none() || stored != computed {
            return checks.fail(format!(
                "index body fails its checksum: stream entry {i} (with its name and positions)"
            ));
        }
        checks.set(bit);
        true
    }

    /// The record offset of the event at `position`, if the index covers it.
    pub fn offset(&self, position: u64) -> Option<u32> {
        let i = position.checked_sub(self.header.first_position)?;
        if i >= u64::from(self.header.event_count) {
            return None;
        }
        let i = usize::try_from(i).ok()?;
        if !self.check_block(Block::Offsets(i / OFFSETS_PER_BLOCK)) {
            return None;
        }
        read_u32(self.bytes, self.layout.offsets + 4 * i)
    }

    /// The entry of stream `name`, if it has events in this segment.
    pub fn stream(&self, name: &[u8]) -> Option<StreamEntry> {
        let hash = name_hash(name);
        let tag = (hash >> 32) as u32;
        let mask = self.layout.slot_count - 1;
        let mut slot = (hash as usize) & mask;
        // A well-formed table has empty slots; a damaged one that passed
        // its checksum must still not loop forever.
        for _ in 0..self.layout.slot_count {
            if !self.check_block(Block::Slots(slot / SLOTS_PER_BLOCK)) {
                return None;
            }
            let at = self.layout.slots + SLOT_LEN * slot;
            let entry = read_u32(self.bytes, at)?;
            if entry == 0 {
                return None;
            }
            if read_u32(self.bytes, at + 4) == Some(tag) {
                let e = self.entry(entry - 1)?;
                if self.name(&e) == Some(name) {
                    return Some(e);
                }
            }
            slot = (slot + 1) & mask;
        }
        None
    }

    /// The `i`th stream entry, its checksum checked.
    pub fn entry(&self, i: u32) -> Option<StreamEntry> {
        if i >= self.header.stream_count || !self.check_entry(i as usize) {
            return None;
        }
        let at = self.layout.entries + ENTRY_LEN * i as usize;
        Some(StreamEntry {
            first_version: read_u64(self.bytes, at)?,
            count: read_u32(self.bytes, at + 8)?,
            positions_at: read_u32(self.bytes, at + 12)?,
            name_at: read_u32(self.bytes, at + 16)?,
            name_len: read_u32(self.bytes, at + 20)?,
            number: i,
        })
    }

    /// The name of the stream `entry` describes.
    pub fn name(&self, entry: &StreamEntry) -> Option<&'a [u8]> {
        if !self.check_entry(entry.number as usize) {
            return None;
        }
        let start = self.layout.names.checked_add(entry.name_at as usize)?;
        let end = start.checked_add(entry.name_len as usize)?;
        if end > self.layout.id_filter {
            return None;
        }
        self.bytes.get(start..end)
    }

    /// The global position of version `version` of the stream `entry`
    /// describes, if the entry covers it.
    pub fn position(&self, entry: &StreamEntry, version: u64) -> Option<u64> {
        let i = version.checked_sub(entry.first_version)?;
        if i >= u64::from(entry.count) || !self.check_entry(entry.number as usize) {
            return None;
        }
        let j = u64::from(entry.positions_at).checked_add(i)?;
        if j >= u64::from(self.header.event_count) {
            return None;
        }
        let relative = read_u32(self.bytes, self.layout.positions + 4 * j as usize)?;
        self.header.first_position.checked_add(u64::from(relative))
    }

    /// Every stream entry, in entry order (up to the first that fails its
    /// check).
    pub fn entries(&self) -> impl Iterator<Item = StreamEntry> + '_ {
        (0..self.header.stream_count).map_while(|i| self.entry(i))
    }

    /// Whether the id filter lets `id` through: false means the segment
    /// holds no event with that id; true means it may.
    pub fn may_hold_id(&self, id: &[u8; 16]) -> bool {
        self.may_hold_hashed(id_hashes(id))
    }

    /// [`may_hold_id`](IndexView::may_hold_id) for an id whose
    /// [`id_hashes`] are at hand: a batch checked against many segments
    /// hashes each id once. A filter block that fails its check lets every
    /// id through (and is recorded as damage).
    pub fn may_hold_hashed(&self, (h1, h2): (u64, u64)) -> bool {
        (0..ID_FILTER_PROBES).all(|probe| {
            let bit = self
                .layout
                .id_filter_modulus
                .of(h1.wrapping_add(probe.wrapping_mul(h2)));
            let byte = (bit / 8) as usize;
            if !self.check_block(Block::Filter(byte / FILTER_BLOCK_LEN)) {
                return true;
            }
            self.bytes
                .get(self.layout.id_filter + byte)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        })
    }

    /// The `i`th entry of the id table: an id and its global position.
    pub fn id_entry(&self, i: u32) -> Option<([u8; 16], u64)> {
        if i >= self.header.event_count || !self.check_block(Block::Ids(i as usize / IDS_PER_BLOCK))
        {
            return None;
        }
        let at = self.layout.ids.checked_add(ID_ENTRY_LEN * i as usize)?;
        let id: [u8; 16] = self.bytes.get(at..at + 16)?.try_into().ok()?;
        let relative = read_u32(self.bytes, at + 16)?;
        Some((
            id,
            self.header
                .first_position
                .checked_add(u64::from(relative))?,
        ))
    }

    /// The position of the event with id `id` in this segment (the first,
    /// should a store written before ids were unique hold it twice): the
    /// filter first, then a binary search of the sorted id table.
    pub fn id_position(&self, id: &[u8; 16]) -> Option<u64> {
        self.id_position_hashed(id, id_hashes(id))
    }

    /// [`id_position`](IndexView::id_position) for an id whose
    /// [`id_hashes`] are `hashes`.
    pub fn id_position_hashed(&self, id: &[u8; 16], hashes: (u64, u64)) -> Option<u64> {
        if !self.may_hold_hashed(hashes) {
            return None;
        }
        // The first entry whose id is not below `id`; a damaged table that
        // passed its checksum can at worst make this miss or land wrong,
        // and every caller checks the record it is sent to.
        let (mut lo, mut hi) = (0u32, self.header.event_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.id_entry(mid) {
                Some((got, _)) if got < *id => lo = mid + 1,
                Some(_) => hi = mid,
                None => return None,
            }
        }
        self.id_entry(lo)
            .and_then(|(got, position)| (got == *id).then_some(position))
    }

    /// Every entry of the id table, in table order (by id).
    pub fn ids(&self) -> impl Iterator<Item = ([u8; 16], u64)> + '_ {
        (0..self.header.event_count).map_while(|i| self.id_entry(i))
    }
}

/// The stream parts of an index being built: each stream in `order` (the
/// order its first event came in), with its first version and its
/// positions relative to the segment's first, from `streams`.
pub fn stream_parts<'a>(
    order: &[&'a [u8]],
    streams: &'a std::collections::HashMap<&[u8], (u64, Vec<u32>)>,
) -> Vec<StreamPart<'a>> {
    order
        .iter()
        .filter_map(|name| {
            let (first_version, positions) = streams.get(name)?;
            Some(StreamPart {
                name,
                first_version: *first_version,
                positions,
            })
        })
        .collect()
}

/// Merges the indexes of consecutive parts of one segment into the index
/// of the whole: the parts must follow on (positions and offsets), and the
/// result covers from the first part's first position to the last part's
/// end, marked `open` or not. `None` if they do not follow on.
pub fn merge_index(parts: &[IndexView<'_>], open: bool) -> Option<Vec<u8>> {
    let first = parts.first()?.header;
    let last = parts.last()?.header;
    let mut offsets: Vec<u32> = Vec::new();
    let mut ids: Vec<([u8; 16], u32)> = Vec::new();
    let mut order: Vec<&[u8]> = Vec::new();
    let mut streams: std::collections::HashMap<&[u8], (u64, Vec<u32>)> =
        std::collections::HashMap::new();
    let mut next = first.first_position;
    for part in parts {
        let h = part.header;
        if h.store_id != first.store_id
            || h.segment_number != first.segment_number
            || h.first_position != next
        {
            return None;
        }
        for i in 0..u64::from(h.event_count) {
            offsets.push(part.offset(h.first_position + i)?);
        }
        for (id, p) in part.ids() {
            ids.push((
                id,
                u32::try_from(p.checked_sub(first.first_position)?).ok()?,
            ));
        }
        for entry in part.entries() {
            let name = part.name(&entry)?;
            let (_, positions) = streams.entry(name).or_insert_with(|| {
                order.push(name);
                (entry.first_version, Vec::new())
            });
            for v in entry.versions() {
                let p = part.position(&entry, v)?;
                positions.push(u32::try_from(p.checked_sub(first.first_position)?).ok()?);
            }
        }
        next = h.first_position + u64::from(h.event_count);
    }
    let parts = stream_parts(&order, &streams);
    let header = IndexHeader {
        open,
        first_position: first.first_position,
        ..last
    };
    encode_index(&header, &offsets, &parts, &ids)
}

/// The checksum of entry `i` as its bytes stand: over the entry's 24
/// bytes of fields, the stream's name and its run of positions. `None`
/// when the entry points outside its parts.
fn entry_crc(bytes: &[u8], l: &Layout, i: usize) -> Option<u32> {
    let at = l.entries.checked_add(ENTRY_LEN.checked_mul(i)?)?;
    let fields = bytes.get(at..at.checked_add(ENTRY_CRC_AT)?)?;
    let count = read_u32(bytes, at + 8)? as usize;
    let positions_at = read_u32(bytes, at + 12)? as usize;
    let name_at = read_u32(bytes, at + 16)? as usize;
    let name_len = read_u32(bytes, at + 20)? as usize;
    if positions_at.checked_add(count)? > l.events {
        return None;
    }
    let run_start = l.positions.checked_add(4 * positions_at)?;
    let run = bytes.get(run_start..run_start.checked_add(4 * count)?)?;
    let name_start = l.names.checked_add(name_at)?;
    let name_end = name_start.checked_add(name_len)?;
    if name_end > l.id_filter {
        return None;
    }
    let name = bytes.get(name_start..name_end)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(fields);
    hasher.update(name);
    hasher.update(run);
    Some(hasher.finalize())
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let header = IndexHeader {
            open: false,
            store_id: 7,
            segment_number: 3,
            first_position: 100,
            event_count: 0,
            data_end: 4096,
            last_frame_at: 2048,
            stream_count: 0,
            names_len: 0,
        };
        let offsets = [64, 128, 192, 256];
        let a = [0u32, 2, 3];
        let b = [1u32];
        let streams = [
            StreamPart {
                name: b"order-1",
                first_version: 5,
                positions: &a,
            },
            StreamPart {
                name: b"order-2",
                first_version: 0,
                positions: &b,
            },
        ];
        let ids: Vec<([u8; 16], u32)> = (0..4u32).map(|i| (id(i), i)).collect();
        encode_index(&header, &offsets, &streams, &ids).unwrap()
    }

    fn id(i: u32) -> [u8; 16] {
        let mut id = [0x5a; 16];
        id[15] = 3 - i as u8;
        id
    }

    #[test]
    fn ids_are_found_by_filter_and_search_and_fresh_ones_are_not() {
        let bytes = sample();
        let view = decode_index(&bytes).unwrap();
        for i in 0..4 {
            assert!(view.may_hold_id(&id(i)));
            assert_eq!(view.id_position(&id(i)), Some(100 + u64::from(i)));
        }
        assert_eq!(view.id_position(&[0x5a; 16]), None);
        assert_eq!(view.id_position(&[0; 16]), None);
        assert_eq!(view.id_position(&[0xff; 16]), None);
        let sorted: Vec<_> = view.ids().map(|(id, _)| id).collect();
        assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(sorted.len(), 4);
        // Fresh random-looking ids mostly miss the filter.
        let passed = (0..10_000u32)
            .filter(|n| {
                let mut fresh = [0u8; 16];
                fresh[..4].copy_from_slice(&n.to_le_bytes());
                fresh[8..12].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_le_bytes());
                view.may_hold_id(&fresh)
            })
            .count();
        assert!(
            passed < 100,
            "{passed} of 10000 fresh ids passed the filter"
        );
        // Not one id per event: refused.
        assert!(encode_index(view.header(), &[64], &[], &[]).is_none());
    }

    #[test]
    fn an_index_decodes_to_what_was_encoded() {
        let bytes = sample();
        let view = decode_index(&bytes).unwrap();
        assert_eq!(view.header().event_count, 4);
        assert_eq!(view.header().stream_count, 2);
        assert_eq!(view.offset(101), Some(128));
        assert_eq!(view.offset(104), None);
        assert_eq!(view.offset(99), None);
        let a = view.stream(b"order-1").unwrap();
        assert_eq!(a.versions(), 5..8);
        assert_eq!(view.position(&a, 6), Some(102));
        assert_eq!(view.position(&a, 8), None);
        let b = view.stream(b"order-2").unwrap();
        assert_eq!(view.position(&b, 0), Some(101));
        assert_eq!(view.stream(b"order-3"), None);
        assert_eq!(view.entries().count(), 2);
    }

    #[test]
    fn any_damage_or_cut_is_refused() {
        let bytes = sample();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(decode_index(&damaged).is_err(), "flip at {at} passed");
        }
        for len in 0..bytes.len() {
            assert!(decode_index(&bytes[..len]).is_err(), "cut at {len} passed");
        }
        assert!(decode_index(&[]).is_err());
    }
    /// The bucketed sort of the id table gives the order a plain sort
    /// does: random keys, keys sharing a long prefix (UUID v7s of one
    /// segment), keys in order, repeated keys (an old store's), few keys.
    #[test]
    fn bucket_sort_agrees_with_a_plain_sort() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let random: Vec<(u128, u32)> = (0..20_000u32)
            .map(|i| ((u128::from(next()) << 64) | u128::from(next()), i))
            .collect();
        let prefixed: Vec<(u128, u32)> = (0..20_000u32)
            .map(|i| {
                (
                    (0x0192_f0c4_5b7e_u128 << 80) | (u128::from(next()) << 20),
                    i,
                )
            })
            .collect();
        let ordered: Vec<(u128, u32)> = (0..20_000u32).map(|i| (u128::from(i) << 7, i)).collect();
        let repeated: Vec<(u128, u32)> = (0..20_000u32)
            .map(|i| (u128::from(next() % 300) << 100, i))
            .collect();
        let low_bits_only: Vec<(u128, u32)> = (0..20_000u32)
            .map(|i| (u128::from(next() % 1_000), i))
            .collect();
        let few: Vec<(u128, u32)> = random.iter().take(100).copied().collect();
        for keys in [random, prefixed, ordered, repeated, low_bits_only, few] {
            let mut expected = keys.clone();
            expected.sort_unstable();
            assert_eq!(bucket_sort(keys), expected);
        }
    }
    /// The filter bits a seal sets are the bits a lookup tests, for
    /// filter sizes of every kind (one word, powers of two, odd multiples
    /// of 64) and hashes that wrap many times.
    #[test]
    fn incremental_filter_bits_equal_the_direct_formula() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for bits in [
            64u64,
            128,
            192,
            1 << 20,
            64 * 2_968_751,
            64 * 3,
            u64::from(u32::MAX) * 64,
        ] {
            for k in 0..2_000 {
                let (h1, h2) = if k == 0 {
                    (u64::MAX, u64::MAX)
                } else {
                    (next(), next() | 1)
                };
                let direct: Vec<u64> = (0..ID_FILTER_PROBES)
                    .map(|i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
                    .collect();
                let incremental: Vec<u64> =
                    FilterBits::new((h1, h2), &Modulus::new(bits)).collect();
                assert_eq!(incremental, direct, "bits {bits} h1 {h1:#x} h2 {h2:#x}");
            }
        }
    }
    /// The remainder by multiplication equals `%` for divisors of every
    /// kind a filter has and some it never has, and numerators across the
    /// whole 64-bit range.
    #[test]
    fn modulus_by_multiplication_equals_the_remainder() {
        let mut x = 0x0123_4567_89ab_cdef_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let divisors = [
            1u64,
            2,
            3,
            7,
            64,
            192,
            1 << 20,
            64 * 2_968_751,
            u64::from(u32::MAX),
            u64::from(u32::MAX) * 64,
            (1 << 63) + 1,
            u64::MAX,
        ];
        for d in divisors {
            let m = Modulus::new(d);
            for k in 0..20_000u64 {
                let n = match k {
                    0 => 0,
                    1 => u64::MAX,
                    2 => d.wrapping_sub(1),
                    3 => d,
                    4 => d.wrapping_mul(3),
                    _ => next(),
                };
                assert_eq!(m.of(n), n % d, "{n} mod {d}");
            }
        }
    }
}
