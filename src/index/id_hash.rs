//! The hash of event ids in memory: one 64-bit value per id that every
//! in-memory structure keyed by id shares (a batch's repeat check, the
//! store-wide id filter, the active segment's id table, the ids of a
//! commit group's earlier batches), so that an append hashes each of its
//! ids once for all of them, not once per structure.
//!
//! The std hasher (SipHash-1-3) cost about 150 instructions per 16-byte
//! id, and an append of a batch of 100 hashed each id three to four
//! times: a third of the CPU an append of 100 fresh ids spent over the
//! version before ids were checked. A seeded multiply-and-mix of the two
//! halves (about 20 instructions) replaced it, but was still computed
//! three times per id for the active table alone, beside two more mixes
//! per id for the store-wide filter (PERFORMANCE.md, issue 11). This one
//! is built on the folded multiply of foldhash and ahash's fallback: each
//! half of the id is XORed with a secret word, the two are multiplied
//! into 128 bits, and the product's halves are XORed together; that is
//! multiplied by a constant and folded once more (about ten instructions
//! in all, see [`IdKey::hash`]). Every bit of the result depends on both
//! halves of the id, so ids that differ only in one half (counters,
//! time-ordered schemes such as UUID v7, whose first half is mostly the
//! time) still spread.
//!
//! Collisions are the price of such a cheap hash, and ids come from the
//! application, which may pass on ids chosen by someone else. The two
//! secret words come from std's random keys once per process, so which
//! ids collide depends on a secret: without it, no set of ids is known to
//! share hashes (unlike the unseeded hashes of the on-disk id filters,
//! whose collisions anyone can compute). That is foldhash's "minimal"
//! resistance to flooding, not SipHash's guarantee. It is enough here
//! because a flood of colliding ids would cost time, never a wrong
//! answer: every structure compares whole ids before it answers "stored",
//! and the probes of each are bounded. The key is per process rather
//! than per table so that one hash serves every table; a table in memory
//! is never compared with another process's.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

/// The process's secret words for [`IdKey::hash`].
static KEY: OnceLock<IdKey> = OnceLock::new();

/// The secret of the id hash; see the module's docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdKey {
    lo: u64,
    hi: u64,
}

impl IdKey {
    /// The process's key, the same for every caller: made from std's
    /// random keys on first use.
    pub(crate) fn get() -> IdKey {
        *KEY.get_or_init(|| {
            #[cfg(test)]
            if let Some(key) = IdKey::from_env() {
                return key;
            }
            let random = RandomState::new();
            IdKey {
                lo: random.hash_one(0x616e_6e61_6c73_u64),
                hi: random.hash_one(0x6964_7321_u64),
            }
        })
    }

    /// The key in `ANNALS_ID_KEY` (`lo,hi`), for a test to replay a
    /// failure that depended on which ids collided.
    #[cfg(test)]
    fn from_env() -> Option<IdKey> {
        let key = std::env::var("ANNALS_ID_KEY").ok()?;
        let (lo, hi) = key.split_once(',')?;
        Some(IdKey {
            lo: lo.parse().ok()?,
            hi: hi.parse().ok()?,
        })
    }

    /// How to run a test again with this process's key.
    #[cfg(test)]
    pub(crate) fn replay() -> String {
        let key = IdKey::get();
        format!("ANNALS_ID_KEY={},{}", key.lo, key.hi)
    }

    /// The hash of one id: its halves XORed with the key, multiplied, the
    /// 128-bit product folded, and that multiplied by a constant and folded
    /// again. One folded multiply leaves the middle bits poorly spread when
    /// one half of the ids is fixed and the other counts (a counter times a
    /// constant; the test below caught bytes of the hash taking some values
    /// 80 times as often as others); the second spreads every bit over the
    /// others. All 64 bits are then usable: tables take their homes from
    /// the top bits and fingerprints from the low ones.
    #[inline]
    pub(crate) fn hash(self, id: &[u8; 16]) -> u64 {
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = *id;
        let lo = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
        let hi = u64::from_le_bytes([i, j, k, l, m, n, o, p]);
        let first = fold(u128::from(lo ^ self.lo) * u128::from(hi ^ self.hi));
        fold(u128::from(first) * u128::from(MIX))
    }
}

/// An odd constant with well-spread bits (2^64 / φ) for the second
/// multiply of [`IdKey::hash`].
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// A 128-bit product's two halves, XORed.
fn fold(product: u128) -> u64 {
    (product as u64) ^ ((product >> 64) as u64)
}

/// Builds [`IdHasher`]s for std's maps and sets of ids: they hash an id as
/// [`IdKey::hash`] does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHashBuilder {
    key: IdKey,
}

impl Default for IdHashBuilder {
    fn default() -> IdHashBuilder {
        IdHashBuilder { key: IdKey::get() }
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            key: self.key,
            state: 0,
        }
    }
}

/// A hasher of event ids; see the module's docs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHasher {
    key: IdKey,
    state: u64,
}

impl Hasher for IdHasher {
    /// An id arrives as one 16-byte write, hashed as [`IdKey::hash`]
    /// does. Other writes (never made by annals, but a hasher must take
    /// them) are folded in 16 bytes at a time, zero-padded.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(16) {
            let mut block = [0u8; 16];
            if let Some(b) = block.get_mut(..chunk.len()) {
                b.copy_from_slice(chunk);
            }
            let h = self.key.hash(&block);
            self.state = if self.state == 0 {
                h
            } else {
                self.state.rotate_left(23) ^ h
            };
        }
    }

    /// The length prefix a slice's `Hash` writes first: always 16 for an
    /// id, and left out, so that an id hashes as [`IdKey::hash`] alone.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Ids that differ only in their high half, or only in their low half
    /// (a counter in either), still spread: no two of 100,000 share a
    /// hash, and the low bits a std map uses and the top bits the annals
    /// tables use take every value about equally.
    #[test]
    fn both_halves_of_an_id_change_its_hash() {
        let key = IdKey::get();
        for shift in [0u32, 64, 40, 104] {
            let hashes: Vec<u64> = (0..100_000u128)
                .map(|n| key.hash(&(n << shift).to_le_bytes()))
                .collect();
            let distinct: HashSet<u64> = hashes.iter().copied().collect();
            assert_eq!(distinct.len(), hashes.len());
            for bits_at in [0u32, 12, 56] {
                let mut buckets = [0u32; 256];
                for h in &hashes {
                    buckets[(h >> bits_at & 255) as usize] += 1;
                }
                // 390 expected per bucket; 6 standard deviations either way.
                assert!(
                    buckets.iter().all(|n| (270..=510).contains(n)),
                    "shift {shift} bits at {bits_at}: {buckets:?}"
                );
            }
        }
    }

    #[test]
    fn a_map_hashes_an_id_as_the_key_does() {
        let b = IdHashBuilder::default();
        for n in [
            0u128,
            1,
            u128::MAX,
            0x0192_f0c4_5b7e_7cc1_8a3e_2f1d_9c0b_4a11,
        ] {
            let id = n.to_le_bytes();
            assert_eq!(b.hash_one(id), IdKey::get().hash(&id));
        }
    }

    #[test]
    fn one_key_per_process() {
        assert_eq!(IdKey::get(), IdKey::get());
        let id = [7u8; 16];
        assert_eq!(IdKey::get().hash(&id), IdKey::get().hash(&id));
        assert_ne!(IdKey::get().hash(&id), IdKey::get().hash(&[8u8; 16]));
    }
}
