//! The ids of the active segment's events, in position order, with an
//! open-addressed table from id to the first event carrying it: what the
//! sealed segments' id filters and tables do for them, for the segment
//! being written.
//!
//! A std `HashMap<[u8; 16], u64>` cost an append more in cache misses than
//! in instructions: its 25-byte buckets put a segment's 200,000 ids in
//! 6 MiB of table, and each insertion touched a random line of it (about
//! 190 ns an event, 19 µs of a batch of 100, on the test machine). Here a
//! slot is 8 bytes (a 32-bit tag of the id's hash and the event's index in
//! the segment), the id itself stays in the position-ordered list the seal
//! needs anyway, and the writer touches all of a frame's slots before it
//! inserts the frame's ids, so that their misses overlap and the
//! insertions find the lines in cache.
//!
//! A slot's tag is the top 32 bits of the id's hash, and its home slot is
//! the top bits of that tag: growing the table moves each entry from slot
//! `i` to about `2i` without hashing the id again or reading it, so a
//! doubling is one pass in order over both tables, not one cache miss per
//! id. Removals (a frame the index refused is undone, last event first)
//! shift the entries after a freed slot back where they belong, as linear
//! probing needs.
//!
//! The hash is the one every in-memory id structure shares
//! ([`IdKey::hash`]), so that the writer's check of a batch computes it
//! once for the store-wide filter and this table
//! ([`index_of_hashed`](ActiveIds::index_of_hashed)); an insertion
//! computes it again (a few instructions) rather than carrying it through
//! the frame. Its key is secret, so ids that crowd one run of slots
//! cannot be chosen on purpose (see `id_hash`); should they crowd it
//! anyway, a probe reads more slots, never answers wrongly.

use super::id_hash::IdKey;

/// The fewest slots a non-empty table has.
const MIN_SLOTS: usize = 64;
/// log2 of the most slots a table has: 2^32, twice the events a segment
/// could index (a slot's index has 32 bits).
const MAX_BITS: u32 = 32;
/// A slot's tag: the high 32 bits of the id's hash.
const TAG_MASK: u64 = 0xffff_ffff_0000_0000;
/// A slot's event: its index in the segment, plus one.
const INDEX_MASK: u64 = 0xffff_ffff;

/// The active segment's ids; see the module's docs.
#[derive(Clone, Debug)]
pub(crate) struct ActiveIds {
    /// The id of each event, in position order.
    ids: Vec<[u8; 16]>,
    /// Open-addressed, linear probing, at most half full, a power of two
    /// long: 0 is empty, otherwise the tag (the high 32 bits of the id's
    /// hash) and, below it, the index in `ids` of the first event with
    /// that id, plus one.
    slots: Vec<u64>,
    /// 64 minus log2 of the slot count: a tag's home slot is its top bits,
    /// `tag >> shift`, always below the slot count. 64 while there are no
    /// slots (then every slot is out of range, whatever `home` says).
    shift: u32,
    key: IdKey,
}

impl Default for ActiveIds {
    fn default() -> ActiveIds {
        ActiveIds {
            ids: Vec::new(),
            slots: Vec::new(),
            shift: 64,
            key: IdKey::get(),
        }
    }
}

impl ActiveIds {
    /// An empty table with room for `events` ids before it grows: a new
    /// segment's table is sized for as many as the segment before held,
    /// so that the writer does not double it (and copy the ids) over and
    /// over as the segment fills. That was a quarter of the 140
    /// instructions an id's insertion cost when it started empty.
    pub(crate) fn with_capacity(events: usize) -> ActiveIds {
        let mut table = ActiveIds {
            ids: Vec::with_capacity(events),
            ..ActiveIds::default()
        };
        if events > 0 {
            // At most half full, and within `grow`'s bounds (never past
            // 2^32 slots); made at its size at once, not doubled there.
            let bits = (usize::BITS - (events.saturating_mul(2) - 1).leading_zeros())
                .clamp(MIN_SLOTS.trailing_zeros(), MAX_BITS);
            table.slots = vec![0; 1 << bits];
            table.shift = 64 - bits;
        }
        table
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, in position order.
    pub(crate) fn ids(&self) -> &[[u8; 16]] {
        &self.ids
    }

    /// Bytes held, for the index's memory estimate.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ids.capacity() * 16 + self.slots.capacity() * 8
    }

    /// The tag of an id: the high half of its hash, shifted into place.
    fn tag(&self, id: &[u8; 16]) -> u64 {
        self.key.hash(id) & TAG_MASK
    }

    /// The slot where the probe for a tag starts: below the slot count
    /// whenever there are slots (see `shift`).
    fn home(&self, tag: u64) -> usize {
        (tag >> (self.shift & 63)) as usize
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The id of the event a slot names.
    fn id_at(&self, slot: u64) -> Option<&[u8; 16]> {
        self.ids.get(((slot & INDEX_MASK) as usize).checked_sub(1)?)
    }

    /// Appends the id of the next event. An id already held keeps its
    /// first event (only a store written before ids were unique repeats
    /// one). Inlined into the index's push of each event: the common
    /// case, an empty home slot, is a hash, a load and a store.
    #[inline]
    pub(crate) fn push(&mut self, id: [u8; 16]) {
        if (self.ids.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        // A segment's events are far fewer than 2^32 (record offsets are
        // u32); past that an id would stay listed but unfindable, never
        // wrong.
        if let Ok(index) = u32::try_from(self.ids.len() + 1) {
            let tag = self.tag(&id);
            let at = self.home(tag);
            match self.slots.get_mut(at) {
                // An empty home slot: the id is nowhere further on either.
                Some(slot) if *slot == 0 => *slot = tag | u64::from(index),
                _ => self.insert_probing(&id, tag | u64::from(index), at),
            }
        }
        self.ids.push(id);
    }

    /// Puts `entry` in the first empty slot from `at` on, unless an entry
    /// for `id` comes first.
    fn insert_probing(&mut self, id: &[u8; 16], entry: u64, mut at: usize) {
        let mask = self.mask();
        // At most half full, so an empty slot ends the probe; the bound is
        // for a table out of step, which must still not loop.
        for _ in 0..self.slots.len() {
            let Some(&slot) = self.slots.get(at) else {
                return;
            };
            if slot == 0 {
                if let Some(s) = self.slots.get_mut(at) {
                    *s = entry;
                }
                return;
            }
            if (slot ^ entry) & TAG_MASK == 0 && self.id_at(slot) == Some(id) {
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// The index of the first event with id `id`.
    #[cfg(test)]
    pub(crate) fn index_of(&self, id: &[u8; 16]) -> Option<usize> {
        self.index_of_hashed(id, self.key.hash(id))
    }

    /// [`index_of`](ActiveIds::index_of) with the id's hash at hand
    /// ([`IdKey::hash`]): the writer's check has it from the store-wide
    /// filter's lookup.
    #[inline]
    pub(crate) fn index_of_hashed(&self, id: &[u8; 16], hash: u64) -> Option<usize> {
        let tag = hash & TAG_MASK;
        let mut at = self.home(tag);
        let mask = self.mask();
        // At most half full, so an empty slot ends every probe (and most
        // end at the first, the home slot); the bound is for a table out
        // of step, which must still not loop. An empty table has no slot.
        for _ in 0..self.slots.len() {
            let slot = *self.slots.get(at)?;
            if slot == 0 {
                return None;
            }
            if slot & TAG_MASK == tag && self.id_at(slot) == Some(id) {
                return Some((slot & INDEX_MASK) as usize - 1);
            }
            at = (at + 1) & mask;
        }
        None
    }

    /// Touches the home slot of each id, all before any is needed, so
    /// that the cache misses of a frame's insertions overlap rather than
    /// follow one another.
    pub(crate) fn touch(&self, ids: &[[u8; 16]]) {
        let sum = ids.iter().fold(0u64, |sum, id| {
            let at = self.home(self.tag(id));
            sum ^ self.slots.get(at).copied().unwrap_or_default()
        });
        std::hint::black_box(sum);
    }

    /// Removes the ids of the events from index `len` on, last first.
    pub(crate) fn truncate(&mut self, len: usize) {
        while self.ids.len() > len {
            if let Some(id) = self.ids.last().copied() {
                let index = self.ids.len() as u64;
                let mask = self.mask();
                let mut at = self.home(self.tag(&id));
                for _ in 0..self.slots.len() {
                    match self.slots.get(at).copied() {
                        Some(slot) if slot & INDEX_MASK == index => {
                            self.remove_at(at);
                            break;
                        }
                        Some(0) | None => break,
                        Some(_) => at = (at + 1) & mask,
                    }
                }
            }
            self.ids.pop();
        }
    }

    /// Empties slot `free`, moving back each later entry of its run that
    /// may sit there (its home is not cyclically within the gap and its
    /// slot), so that no probe meets a hole before its entry.
    fn remove_at(&mut self, mut free: usize) {
        let mask = self.mask();
        let mut at = free;
        for _ in 0..self.slots.len() {
            at = (at + 1) & mask;
            let Some(slot) = self.slots.get(at).copied() else {
                break;
            };
            if slot == 0 {
                break;
            }
            let home = self.home(slot & TAG_MASK);
            let stays = if free <= at {
                free < home && home <= at
            } else {
                free < home || home <= at
            };
            if !stays {
                if let Some(f) = self.slots.get_mut(free) {
                    *f = slot;
                }
                free = at;
            }
        }
        if let Some(f) = self.slots.get_mut(free) {
            *f = 0;
        }
    }

    /// Doubles the table (or makes the first). Entries move in slot order
    /// to their homes in the new table, found from their tags alone. Kept
    /// out of line: it runs once per doubling, and [`push`](ActiveIds::push)
    /// is inlined where each event is indexed.
    #[inline(never)]
    fn grow(&mut self) {
        let bits = (64 - self.shift + 1).max(MIN_SLOTS.trailing_zeros());
        if bits > MAX_BITS {
            // Half of 2^32 slots are already in use: no segment gets here.
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![0; 1 << bits]);
        self.shift = 64 - bits;
        let mask = self.mask();
        for slot in old.into_iter().filter(|s| *s != 0) {
            let mut at = self.home(slot & TAG_MASK);
            for _ in 0..mask + 1 {
                match self.slots.get_mut(at) {
                    Some(s) if *s == 0 => {
                        *s = slot;
                        break;
                    }
                    Some(_) => at = (at + 1) & mask,
                    None => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The table against a map: ids pushed (some repeated, as an old
    /// store may hold them), found at their first index, and undone from
    /// the end, through several doublings.
    #[test]
    fn agrees_with_a_map_of_first_indexes() {
        let mut ids = ActiveIds::default();
        let mut model: Vec<[u8; 16]> = Vec::new();
        let id = |n: u64| {
            let mut b = [0u8; 16];
            // High-half counters: ids that differ only there.
            b[8..].copy_from_slice(&(n % 3_000).to_le_bytes());
            b
        };
        let first = |model: &[[u8; 16]]| {
            let mut m: HashMap<[u8; 16], usize> = HashMap::new();
            for (i, id) in model.iter().enumerate() {
                m.entry(*id).or_insert(i);
            }
            m
        };
        for round in 0..4u64 {
            for n in 0..1_000 {
                ids.push(id(n * (round + 1)));
                model.push(id(n * (round + 1)));
            }
            let keep = model.len() - 333;
            ids.truncate(keep);
            model.truncate(keep);
            let m = first(&model);
            assert_eq!(ids.ids(), &model[..]);
            for n in 0..6_000 {
                assert_eq!(ids.index_of(&id(n)), m.get(&id(n)).copied(), "id {n}");
            }
            let mut absent = [0xffu8; 16];
            absent[0] = round as u8;
            assert_eq!(ids.index_of(&absent), None);
        }
        // Small steps: frames of a few events, some refused, across the
        // doublings, checked after each step.
        let (mut ids, mut model) = (ActiveIds::default(), Vec::new());
        let mut x = 0x9e37_79b9_u64;
        for step in 0..3_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            for k in 0..(x >> 61) + 1 {
                let n = (x >> 20) % 5_000 + k;
                ids.push(id(n));
                model.push(id(n));
            }
            if step % 3 == 0 {
                let keep = model.len().saturating_sub(((x >> 40) % 4) as usize);
                ids.truncate(keep);
                model.truncate(keep);
            }
            if step % 97 == 0 {
                let m = first(&model);
                for n in 0..1_000 {
                    assert_eq!(
                        ids.index_of(&id(n)),
                        m.get(&id(n)).copied(),
                        "step {step} id {n}"
                    );
                }
            }
        }
        ids.truncate(0);
        assert!(ids.is_empty());
        // A table made with room answers the same from its first id.
        let mut sized = ActiveIds::with_capacity(3_000);
        let slots = sized.slots.len();
        assert!(slots >= 6_000, "{slots} slots");
        for n in 0..3_000 {
            sized.push(id(n));
        }
        assert_eq!(sized.slots.len(), slots);
        for n in 0..3_000 {
            assert_eq!(sized.index_of(&id(n)), Some(n as usize));
        }
        assert_eq!(sized.index_of(&[0xee; 16]), None);
        assert_eq!(ids.index_of(&id(1)), None);
        ids.touch(&[id(1), id(2)]);
    }
}
