//! The bytes of the stream catalog: every stream with its next version and
//! the position of its first event, so that a reopen rebuilds its
//! per-stream state without reading the stream tables of every segment
//! index. The writer writes one each time it seals a segment, and again at
//! a clean close; both cover the log up to the end of the last sealed
//! segment. Pure encode and decode, no I/O; FORMAT.md gives the layout.
//!
//! Like the index files it is derived data, and it is used only together
//! with the index file it names (by that index's header checksum) and only
//! when the log, read up to that index, ends exactly where it says.
//! Anything else, and the streams come from the index files instead.

#![deny(clippy::indexing_slicing)]

/// The first eight bytes of a catalog file.
pub const CATALOG_MAGIC: [u8; 8] = *b"ANNALCAT";
/// The version of the catalog format this code writes and reads. Version
/// 2 added the sealed segments' first positions, which let an open defer
/// every sealed segment to its first use; a version-1 catalog is refused
/// like any unusable one (the streams then come from the index files, and
/// the next seal or clean close writes version 2).
pub const CATALOG_VERSION: u32 = 2;
/// Bytes of the header.
pub const CATALOG_HEADER_LEN: usize = 48;
/// Bytes of one stream's fixed part (then its name).
pub const CATALOG_ENTRY_LEN: usize = 20;

const VERSION_AT: usize = 8;
const STREAM_COUNT_AT: usize = 12;
const STORE_ID_AT: usize = 16;
const NEXT_POSITION_AT: usize = 24;
const INDEX_CRC_AT: usize = 32;
const BODY_LEN_AT: usize = 36;
const BODY_CRC_AT: usize = 40;
const HEADER_CRC_AT: usize = 44;

/// One stream of the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogStream<'a> {
    /// The stream id.
    pub name: &'a [u8],
    /// How many events it has.
    pub next_version: u64,
    /// The position of its first event.
    pub first_position: u64,
}

/// A decoded catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog<'a> {
    /// The store it belongs to.
    pub store_id: u64,
    /// The position the log had reached: the events it covers.
    pub next_position: u64,
    /// The header checksum of the clean close's index it was written with.
    pub index_crc: u32,
    /// Every stream, in the order the index holds them.
    pub streams: Vec<CatalogStream<'a>>,
    /// The position of the first event of each sealed segment, from
    /// segment 0 to the one whose index the catalog names (version 2).
    pub sealed_firsts: Vec<u64>,
}

/// Encodes a catalog. `None` if a count does not fit its field.
pub fn encode_catalog(catalog: &Catalog<'_>) -> Option<Vec<u8>> {
    let mut out = vec![0u8; CATALOG_HEADER_LEN];
    for s in &catalog.streams {
        out.extend_from_slice(&s.next_version.to_le_bytes());
        out.extend_from_slice(&s.first_position.to_le_bytes());
        out.extend_from_slice(&u32::try_from(s.name.len()).ok()?.to_le_bytes());
        out.extend_from_slice(s.name);
    }
    out.extend_from_slice(
        &u32::try_from(catalog.sealed_firsts.len())
            .ok()?
            .to_le_bytes(),
    );
    for first in &catalog.sealed_firsts {
        out.extend_from_slice(&first.to_le_bytes());
    }
    let body_len = u32::try_from(out.len() - CATALOG_HEADER_LEN).ok()?;
    let count = u32::try_from(catalog.streams.len()).ok()?;
    let body_crc = crc32fast::hash(out.get(CATALOG_HEADER_LEN..).unwrap_or_default());
    put(&mut out, 0, &CATALOG_MAGIC);
    put(&mut out, VERSION_AT, &CATALOG_VERSION.to_le_bytes());
    put(&mut out, STREAM_COUNT_AT, &count.to_le_bytes());
    put(&mut out, STORE_ID_AT, &catalog.store_id.to_le_bytes());
    put(
        &mut out,
        NEXT_POSITION_AT,
        &catalog.next_position.to_le_bytes(),
    );
    put(&mut out, INDEX_CRC_AT, &catalog.index_crc.to_le_bytes());
    put(&mut out, BODY_LEN_AT, &body_len.to_le_bytes());
    put(&mut out, BODY_CRC_AT, &body_crc.to_le_bytes());
    let header_crc = crc32fast::hash(out.get(..HEADER_CRC_AT).unwrap_or_default());
    put(&mut out, HEADER_CRC_AT, &header_crc.to_le_bytes());
    Some(out)
}

/// Sets the checksum of the index that an encoded catalog goes with, and
/// seals its header again. A catalog written when a segment is sealed is
/// encoded on the writer's thread, where the stream state is, and tied to
/// the sealed index only once that is built, on the index thread. `None`
/// when `bytes` is shorter than a catalog header.
pub fn set_index_crc(bytes: &mut [u8], index_crc: u32) -> Option<()> {
    if bytes.len() < CATALOG_HEADER_LEN {
        return None;
    }
    put(bytes, INDEX_CRC_AT, &index_crc.to_le_bytes());
    let header_crc = crc32fast::hash(bytes.get(..HEADER_CRC_AT)?);
    put(bytes, HEADER_CRC_AT, &header_crc.to_le_bytes());
    Some(())
}

/// Decodes and checks a catalog: magic, version, both checksums, the
/// length, and every entry inside the body. Names are not checked to be
/// UTF-8 or distinct here; the index does that as it takes them.
pub fn decode_catalog(untrusted: &[u8]) -> Result<Catalog<'_>, String> {
    let head = untrusted
        .get(..CATALOG_HEADER_LEN)
        .ok_or_else(|| format!("catalog of {} bytes has no header", untrusted.len()))?;
    if head.get(..8) != Some(&CATALOG_MAGIC[..]) {
        return Err("not an annals catalog (bad magic)".into());
    }
    let u32_at = |at| read_u32(head, at).ok_or("catalog too short");
    let u64_at = |at| read_u64(head, at).ok_or("catalog too short");
    if crc32fast::hash(head.get(..HEADER_CRC_AT).unwrap_or_default()) != u32_at(HEADER_CRC_AT)? {
        return Err("catalog header fails its checksum".into());
    }
    let version = u32_at(VERSION_AT)?;
    if version != CATALOG_VERSION {
        return Err(format!(
            "catalog format version {version}, where this build reads {CATALOG_VERSION}"
        ));
    }
    let body = untrusted.get(CATALOG_HEADER_LEN..).unwrap_or_default();
    if body.len() != u32_at(BODY_LEN_AT)? as usize {
        return Err("catalog length is not what its header says".into());
    }
    if crc32fast::hash(body) != u32_at(BODY_CRC_AT)? {
        return Err("catalog body fails its checksum".into());
    }
    let count = u32_at(STREAM_COUNT_AT)? as usize;
    // Every entry takes at least its fixed part: a count the body cannot
    // hold is refused before anything is allocated for it.
    if count > body.len() / CATALOG_ENTRY_LEN {
        return Err("catalog counts more streams than it holds".into());
    }
    let mut streams = Vec::with_capacity(count);
    let mut at = 0usize;
    for _ in 0..count {
        let next_version = read_u64(body, at).ok_or("catalog entry cut short")?;
        let first_position = read_u64(body, at + 8).ok_or("catalog entry cut short")?;
        let len = read_u32(body, at + 16).ok_or("catalog entry cut short")? as usize;
        let start = at + CATALOG_ENTRY_LEN;
        let name = start
            .checked_add(len)
            .and_then(|end| body.get(start..end))
            .ok_or("catalog name cut short")?;
        streams.push(CatalogStream {
            name,
            next_version,
            first_position,
        });
        at = start + len;
    }
    let sealed = read_u32(body, at).ok_or("catalog segment table cut short")? as usize;
    at += 4;
    if body.len().saturating_sub(at) != sealed.saturating_mul(8) {
        return Err("catalog segment table is not as long as it says".into());
    }
    let sealed_firsts: Vec<u64> = (0..sealed)
        .map_while(|k| read_u64(body, at + 8 * k))
        .collect();
    Ok(Catalog {
        store_id: u64_at(STORE_ID_AT)?,
        next_position: u64_at(NEXT_POSITION_AT)?,
        index_crc: u32_at(INDEX_CRC_AT)?,
        streams,
        sealed_firsts,
    })
}

/// Writes `bytes` at `at` (nothing if they do not fit); shared with the
/// log base's encoding.
pub(super) fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// The little-endian `u32` at `at`, if the bytes hold one.
pub(super) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The little-endian `u64` at `at`, if the bytes hold one.
pub(super) fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_round_trips_and_any_damage_or_cut_is_refused() {
        let catalog = Catalog {
            store_id: 3,
            next_position: 42,
            index_crc: 0xdead_beef,
            streams: vec![
                CatalogStream {
                    name: b"order-1",
                    next_version: 10,
                    first_position: 0,
                },
                CatalogStream {
                    name: b"x",
                    next_version: 1,
                    first_position: 41,
                },
            ],
            sealed_firsts: vec![0, 17, 30],
        };
        let bytes = encode_catalog(&catalog).unwrap();
        assert_eq!(decode_catalog(&bytes).unwrap(), catalog);
        // Tied to another index afterwards, it still decodes whole.
        let mut retied = bytes.clone();
        set_index_crc(&mut retied, 7).unwrap();
        let mut expected = catalog.clone();
        expected.index_crc = 7;
        assert_eq!(decode_catalog(&retied).unwrap(), expected);
        assert!(set_index_crc(&mut [0u8; CATALOG_HEADER_LEN - 1], 7).is_none());
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x08;
            assert!(decode_catalog(&damaged).is_err(), "flip at {at} passed");
        }
        for len in 0..bytes.len() {
            assert!(
                decode_catalog(&bytes[..len]).is_err(),
                "cut at {len} passed"
            );
        }
    }
}
