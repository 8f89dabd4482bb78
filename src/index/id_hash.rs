//! The hasher of the in-memory maps and sets keyed by event id: the active
//! segment's ids, the ids of a commit group's earlier batches, and a
//! batch's own ids when it is checked for repeats.
//!
//! The std hasher (SipHash-1-3) cost about 150 instructions per 16-byte
//! id, and an append of a batch of 100 hashes each id three to four times
//! (its repeat check, its lookup, its insertion, and a share of the
//! rehashing as the map grows): that was a third of the CPU an append of
//! 100 fresh ids spent over the version before ids were checked. This one
//! folds the id's two 64-bit halves with a multiply each and finishes with
//! a 64-bit mixer, about 20 instructions.
//!
//! Both halves go in, never only the low 64 bits: a UUID v7's low bits
//! are random, but an id is any 16 bytes the application chose, and ids
//! that differ only in their high half (counters, time-ordered schemes)
//! must not share a hash. Each map gets its own random seed from std's
//! per-process random keys, so that the buckets ids land in cannot be
//! predicted from the ids alone. That is a cheap obstacle, not SipHash's
//! guarantee against flooding; the ids come from the application that
//! links annals, not from strangers, and a flood of colliding ids would
//! cost time, never a wrong answer.

use std::hash::{BuildHasher, Hasher, RandomState};

/// Builds [`IdHasher`]s with one random seed per map.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHashBuilder {
    seed: u64,
}

impl Default for IdHashBuilder {
    fn default() -> IdHashBuilder {
        IdHashBuilder {
            seed: RandomState::new().hash_one(0x616e_6e61_6c73_u64),
        }
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher { state: self.seed }
    }
}

impl IdHashBuilder {
    /// The hash of one id, as [`BuildHasher::hash_one`] would give it,
    /// without going through `Hash` (which feeds a slice's length, then
    /// its bytes a chunk at a time): two words and the finish.
    pub(crate) fn hash_id(&self, id: &[u8; 16]) -> u64 {
        let (lo, hi) = id.split_at(8);
        let mut h = IdHasher { state: self.seed };
        h.write_usize(16);
        h.word(u64::from_le_bytes(lo.try_into().unwrap_or_default()));
        h.word(u64::from_le_bytes(hi.try_into().unwrap_or_default()));
        h.finish()
    }
}

/// A fast hasher of event ids; see the module's docs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHasher {
    state: u64,
}

/// Odd multipliers with well-spread bits (from the finalizer of
/// MurmurHash3, whose avalanche is well studied).
const K1: u64 = 0xff51_afd7_ed55_8ccd;
const K2: u64 = 0xc4ce_b9fe_1a85_ec53;

impl IdHasher {
    fn word(&mut self, w: u64) {
        self.state = (self.state ^ w).wrapping_mul(K1).rotate_left(31);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // An id arrives as one 16-byte write: two words. Other lengths
        // (never used by annals, but a hasher must take them) go 8 bytes
        // at a time, the last word zero-padded.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            if let Some(w) = word.get_mut(..chunk.len()) {
                w.copy_from_slice(chunk);
            }
            self.word(u64::from_le_bytes(word));
        }
    }

    /// The length prefix a slice's `Hash` writes first: always 16 for an
    /// id, so it is folded in cheaply rather than as a word of its own.
    fn write_usize(&mut self, n: usize) {
        self.state ^= n as u64;
    }

    fn finish(&self) -> u64 {
        let mut h = self.state;
        h ^= h >> 33;
        h = h.wrapping_mul(K2);
        h ^= h >> 33;
        h = h.wrapping_mul(K1);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Ids that differ only in their high half, or only in their low half
    /// (a counter in either), still spread over the buckets: no two of
    /// 100,000 share a hash, and the low bits a small table uses take
    /// every value about equally.
    #[test]
    fn both_halves_of_an_id_change_its_hash() {
        let b = IdHashBuilder::default();
        for shift in [0u32, 64] {
            let hashes: Vec<u64> = (0..100_000u128)
                .map(|n| b.hash_one((n << shift).to_le_bytes()))
                .collect();
            let distinct: HashSet<u64> = hashes.iter().copied().collect();
            assert_eq!(distinct.len(), hashes.len());
            let mut buckets = [0u32; 256];
            for h in &hashes {
                buckets[(h & 255) as usize] += 1;
            }
            // 390 expected per bucket; 6 standard deviations either way.
            assert!(
                buckets.iter().all(|n| (270..=510).contains(n)),
                "{buckets:?}"
            );
        }
    }

    #[test]
    fn hash_id_is_hash_one() {
        let b = IdHashBuilder::default();
        for n in [
            0u128,
            1,
            u128::MAX,
            0x0192_f0c4_5b7e_7cc1_8a3e_2f1d_9c0b_4a11,
        ] {
            let id = n.to_le_bytes();
            assert_eq!(b.hash_id(&id), b.hash_one(id));
        }
    }

    #[test]
    fn the_same_id_hashes_the_same_in_one_map() {
        let b = IdHashBuilder::default();
        let id = [7u8; 16];
        assert_eq!(b.hash_one(id), b.hash_one(id));
        assert_ne!(b.hash_one(id), b.hash_one([8u8; 16]));
    }
}
