//! The open: every segment file is listed (present, regular, numbered
//! without a gap); the sealed segments a stream catalog covers are deferred
//! to their first use (`Segment::deferred`, `Table::deferred`), where their
//! header and index are checked as here; every other segment header is
//! checked, sealed segments come from their index files while those check
//! out (`crate::index::persist`), the rest of the log is scanned and
//! checked frame by frame, and the one kind
//! of damage that is expected after a crash — a torn tail of the active
//! segment — is repaired. Everything else is refused.
//!
//! The *active* segment is the last one holding data; segments before it are
//! *sealed* and never change again. At most one empty segment may follow the
//! active one: a segment prepared ahead of need.
//!
//! The rows about how the log ends are the arms of [`Case`], decided one
//! arm per row by [`decide`]; headers, gaps and strays are refused earlier,
//! by the listing and `Segment::open`.
//!
//! | case | what the scan sees | decision | test |
//! | --- | --- | --- | --- |
//! | clean end | frames, then a zero length word and zeros to the end of the file | open; appends continue at the end | `recovery_table::clean_end` |
//! | zero tail | no frame at all after the header | open; an empty segment | `recovery_table::zero_tail` |
//! | torn tail | the last frames of the active segment fail a check, no valid frame header follows in the segment, and no later segment holds data | zero the torn bytes (the file never shrinks), sync, `warn!` with file, offset and bytes dropped, say so in the [`RecoveryReport`]; open. With [`TornTail::Refuse`](crate::TornTail): `Error::TornTail`, nothing modified | `recovery_table::torn_tail_at_every_offset` |
//! | bad record, valid data after | a frame fails a check, and a valid frame header follows it in the same segment, or a later segment holds data | `Corruption` at the bad frame; nothing modified | `recovery_table::bad_record_followed_by_valid_data` |
//! | damage in a sealed segment | any frame of a scanned sealed segment fails a check, or non-zero bytes follow its end | `Corruption`; nothing modified | `recovery_table::damage_in_sealed_segment` |
//! | damage in a sealed segment with its index | the index's checks (its last frame, the bytes after it) fail, or a read reaches a damaged record | the index is unusable and the segment scanned, as above; a damaged record fails its read with `Corruption` | `recovery_table::damage_in_sealed_segment_with_its_index` |
//! | unusable segment index | an index file missing, damaged, cut, foreign, stale or claiming what its segment does not hold | `warn!`, listed in the report; the log is scanned from that segment on and (writable) the index written again; open | `segment_index::*` |
//! | sealed segments a catalog covers | the catalog (version 2) lists their first positions, each has an index file in the listing, and the last one's index is the one it names | segments `1..n-1` deferred: not opened; the first use opens one, checks its header and loads its index (rebuilt from its frames if unusable); a failure there is `Corruption` naming the file, from that read | `lazy_open::*` |
//! | unusable stream catalog | the catalog (of a seal or a clean close) damaged, cut, foreign, or not describing the log as it is | `warn!`, listed in the report; the streams come from the index files; open | `segment_index::a_clean_close_writes_a_catalog_and_any_damage_to_it_is_ignored`, `segment_index::a_catalog_that_does_not_describe_the_log_is_ignored` |
//! | inconsistent frame | a frame whose checksums pass but whose positions or versions do not follow on | `Corruption`; nothing modified | `recovery_table::inconsistent_positions` |
//! | bad or foreign header | a header that fails its checksum, magic or version, names another number, store or size, or a file whose length is not the segment size | `Corruption`; nothing modified | `recovery_table::bad_or_foreign_header` |
//! | gap in segment numbers | a number missing below the highest (segment 0 included) | `Corruption` naming the missing file; nothing modified | `recovery_table::missing_segment` |
//! | stray file | a file or directory that is neither the lock, a segment, a segment being prepared, `lost+found` nor a name starting with `.` (those two are ignored); a segment that is a symlink or not a regular file | the stranger: `NotAStore` naming it, as this is no annals directory; a segment of the wrong kind: `Corruption` naming it; nothing modified either way | `recovery_table::stray_file` |
//! | interrupted preparation | a `NNN.seg.tmp` left by a crash while a segment was being created | remove it, sync the directory, `warn!`; open | `recovery_table::interrupted_preparation` |
//! | extra empty segments | more than one empty segment after the active one, or an empty segment followed by one holding data | `Corruption`; nothing modified | `recovery_table::extra_empty_segments` |
//! | bad first frame, segment after | the first frame of a segment fails a check and another segment follows it (one is prepared only after a frame of this one was durable) | `Corruption`; nothing modified | `regressions::damage_to_the_first_frame_of_a_segment_before_a_prepared_one_is_refused` |
//!
//! A writable open ends by syncing the directory, so that a segment name a
//! crash left unsynced is durable before any append goes into it (after a
//! clean close the writer's first write does it, when it removes the
//! clean close's index); a
//! read-only open scans the last two segments from copies, since a live
//! writer may be appending to them.
//!
//! A torn tail is told apart from damage by what follows it. The writer
//! writes sequentially into zeroed space and acknowledges a frame only after
//! it is synced, so an unacknowledged write is always the last thing in the
//! log; a valid frame after a bad one means acknowledged data would be lost
//! by truncating, and that is never done. The one ambiguity left is damage
//! to the very last frame with nothing after it: it looks exactly like a
//! torn write and is treated as one. FORMAT.md says the same.

mod listing;
mod report;
mod scan;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::format::{
    ALIGN, End, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, Salt, SegmentHeader, align_up,
    decode_frame_header, first_nonzero, last_nonzero,
};
use crate::index::catalog::decode_catalog;
use crate::index::persist::{
    BASE_FILE, CATALOG_FILE, Unusable, index_file_name, load_table, read_catalog,
    sealed_index_bytes, write_index,
};
use crate::index::{Deferred, Entry, Index, Table};
use crate::io::FileIo;
use crate::log::segment::{Access, Segment, map_immutable};
use crate::options::TornTail;

pub(crate) use listing::check_listing;
use listing::{list, segment_id};
pub use report::{RecoveryReport, TornTailReport};
use scan::{Piece, scan};

/// The name of the lock file in a data directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// What the scan found: the index, where appends continue, and what was
/// repaired.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub store_id: u64,
    pub segment_size: u64,
    pub index: Index,
    /// The number of the active segment.
    pub active: u32,
    /// Where the next frame goes in the active segment.
    pub write_offset: usize,
    pub report: RecoveryReport,
}

impl Recovered {
    /// The header every segment of this store shares, with segment 0's
    /// number.
    pub(crate) fn first_header(&self) -> SegmentHeader {
        SegmentHeader {
            store_id: self.store_id,
            segment_number: 0,
            segment_size: self.segment_size,
        }
    }
}

/// How a scan may treat the store.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// The directory lock is held: repair a torn tail as `TornTail` says,
    /// remove interrupted preparations, create a new store of this many
    /// bytes per segment if there is none.
    Writable(TornTail, u64),
    /// Modify nothing: a live writer may own the store. The log ends where
    /// the tail is torn.
    ReadOnly,
}

/// Scans the store in `dir` and rebuilds its index; see the table above.
pub(crate) fn recover(dir: &Path, io: &dyn FileIo, mode: Mode) -> Result<Recovered, Error> {
    recover_with(dir, io, mode, true, true)
}

/// Recovers without the catalog, which is unusable for `reason`: logged,
/// and listed in the report with the index files that could not be used.
fn catalog_unusable(
    dir: &Path,
    io: &dyn FileIo,
    mode: Mode,
    reason: String,
) -> Result<Recovered, Error> {
    let file = dir.join(CATALOG_FILE);
    tracing::warn!(
        file = %file.display(),
        %reason,
        "stream catalog unusable: taking the streams from the segment indexes"
    );
    let mut recovered = recover_with(dir, io, mode, false, false)?;
    recovered.report.unusable_indexes.push((file, reason));
    Ok(recovered)
}

/// [`recover`], taking the streams from the catalog (of the last seal or
/// of a clean close) when `use_catalog` and it fits, or else from the index
/// files; and, when `defer` and the catalog allows, deferring the sealed
/// segments it covers to their first use.
fn recover_with(
    dir: &Path,
    io: &dyn FileIo,
    mode: Mode,
    use_catalog: bool,
    defer: bool,
) -> Result<Recovered, Error> {
    let listing = list(dir)?;
    let writable = matches!(mode, Mode::Writable(..));
    if listing.segments.is_empty() {
        let Mode::Writable(_, segment_size) = mode else {
            let e = std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no segment files: this is not an annals store",
            );
            return Err(Error::io("open store read-only", dir, e));
        };
        let mut report = RecoveryReport::default();
        remove_temps(dir, io, &listing.temps, &mut report)?;
        return create_store(dir, io, segment_size, report);
    }

    let count = listing.segments.len();
    // Segments before the last two are sealed: nothing writes to them. A live
    // writer may be appending to the last two while a read-only open scans
    // them, so those are scanned from copies, never borrowed from the map.
    let shared_from = if writable {
        count
    } else {
        count.saturating_sub(2)
    };

    // With a catalog that names the last sealed segment's index, the
    // sealed segments before that one are deferred: nothing of them is
    // opened now (the listing has shown them present and numbered without
    // a gap), and each is opened and checked on first use (see
    // `Segment::deferred` and `Table::deferred`). Segment 0 is opened for
    // the store's header, and the last sealed one to tie the catalog to
    // the files.
    let catalog_bytes = if use_catalog { read_catalog(dir) } else { None };
    let catalog = catalog_bytes.as_deref().map(decode_catalog);
    let deferred_below = match &catalog {
        // A log that retention cut is opened whole: the catalog's segment
        // table counts from segment 0 (and a cut log holds few segments).
        Some(Ok(c)) if defer && listing.base.is_none() => deferrable(c, count, &listing.indexes),
        _ => 0,
    };
    let mut first: Option<SegmentHeader> = None;
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(count);
    for (number, path) in listing.segments {
        let k = segments.len();
        let segment = match &first {
            Some(h) if k < deferred_below => Segment::deferred(path, number, h),
            _ => Segment::open(path, number, &mut first)?,
        };
        segments.push(Arc::new(segment));
    }
    let header = first.ok_or_else(|| Error::corruption(dir, 0, "no segment header read"))?;
    let paths: Vec<PathBuf> = segments.iter().map(|s| s.path().to_path_buf()).collect();
    let salts: Vec<Salt> = segments.iter().map(|s| s.salt()).collect();

    // Sealed segments come from their index files, without a scan, for as
    // long as each one checks out; the rest of the log is scanned. After a
    // clean close the active segment has an index too, marked open, and
    // nothing is scanned: the writer removes that index (durably) before it
    // writes anything, so while it exists the log ends where it says.
    // The log starts where its base says, once retention dropped
    // segments: at the base's first segment, with the base's position.
    let first_segment = listing.base.as_ref().map_or(0, |b| b.first_segment);
    if let Some(base) = &listing.base
        && base.store_id != header.store_id
    {
        return Err(Error::corruption(
            dir.join(BASE_FILE),
            0,
            format!(
                "the log base of store {:x} in store {:x}",
                base.store_id, header.store_id
            ),
        ));
    }
    let mut index = Index::with_base(
        header.store_id,
        first_segment,
        listing.base.as_ref().map_or(0, |b| b.first_position),
    );
    let mut ends: Vec<usize> = Vec::with_capacity(count);
    let mut from = 0;
    let mut unusable = Vec::new();
    let mut clean_end = false;
    // With a catalog, the stream tables of the index files up to the one
    // it names are not read: the catalog gives every stream as it stood
    // there, if the log reaches that index where the catalog says. Only
    // the later index files' tables are merged, and the rest scanned.
    let catalog = match catalog {
        None => None,
        Some(Ok(c)) if c.store_id == header.store_id => Some(c),
        Some(Ok(_)) => return catalog_unusable(dir, io, mode, "of another store".into()),
        Some(Err(reason)) => return catalog_unusable(dir, io, mode, reason),
    };
    let mut catalog_installed = false;
    if let (Some(c), true) = (&catalog, deferred_below > 0) {
        // Segments 0..deferred_below from the catalog, each table loaded on
        // first use; the last sealed one's index loaded now and required
        // to be the one the catalog names.
        let mut deferred = Ok(());
        for (k, segment) in segments.iter().enumerate().take(deferred_below) {
            let positions = c.sealed_firsts[k]..c.sealed_firsts[k + 1];
            let table = Table::deferred(
                Deferred {
                    dir: dir.to_path_buf(),
                    segment: Arc::clone(segment),
                    store_id: header.store_id,
                },
                positions,
            )
            .ok_or_else(|| "segment number beyond 2^32".to_owned());
            deferred = table.and_then(|t| index.push_deferred(t));
            if deferred.is_err() {
                break;
            }
        }
        let last = &segments[deferred_below];
        let tied = deferred
            .map_err(Unusable::Bad)
            .and_then(|()| load_table(dir, last, header.store_id, index.len()))
            .and_then(|t| match t.header() {
                Some(h)
                    if !h.open
                        && t.header_crc() == Some(c.index_crc)
                        && h.first_position + u64::from(h.event_count) == c.next_position =>
                {
                    index.push_loaded(t, false).map_err(Unusable::Bad)
                }
                _ => Err(Unusable::Bad("not the index the catalog names".into())),
            });
        if tied.is_err() {
            // The last sealed index is not the one the catalog names (or
            // unusable itself): open every segment and take the log from
            // the index files as far as they go, which judges the catalog
            // and names what is wrong.
            return recover_with(dir, io, mode, use_catalog, false);
        }
        if let Err(reason) = index.install_catalog(c) {
            return catalog_unusable(dir, io, mode, reason);
        }
        catalog_installed = true;
        from = deferred_below + 1;
        ends.resize(from, SEGMENT_HEADER_LEN);
        if let (Some(h), Some(end)) = (
            index.sealed().last().and_then(Table::header),
            ends.last_mut(),
        ) {
            *end = h.data_end as usize;
        }
    }
    while from < count {
        let segment = &segments[from];
        let later_data = segments.get(from + 1).is_some_and(|s| holds_data(s));
        let loaded = load_table(dir, segment, header.store_id, index.len()).and_then(|t| {
            // The header was checked when the table was made; the body is
            // checked where it is first used (merging its streams below
            // when there is no catalog, else the first read), so an open
            // after a clean close touches no index body.
            let h = t.header().ok_or(Unusable::Missing)?;
            if h.open && (later_data || count > from + 2) {
                return Err(Unusable::Bad(
                    "a clean close's index, but a later segment holds data".into(),
                ));
            }
            if !h.open && from + 1 == count {
                return Err(Unusable::Bad(
                    "a sealed segment's index for the last segment".into(),
                ));
            }
            let crc = t.header_crc();
            index
                .push_loaded(t, catalog.is_none() || catalog_installed)
                .map(|()| (h.data_end as usize, h.open, crc))
                .map_err(Unusable::Bad)
        });
        // The index the catalog names: the streams as they stood there.
        if let (Ok((_, _, crc)), Some(c)) = (&loaded, &catalog)
            && !catalog_installed
            && *crc == Some(c.index_crc)
        {
            // Not the state the catalog describes (restored from elsewhere,
            // or forged): start again from the index files. A crash cannot
            // cause this: the catalog is written after the index it names.
            if index.len() != c.next_position {
                let reason = "not written with the log as it is (stale)".to_owned();
                return catalog_unusable(dir, io, mode, reason);
            }
            if let Err(reason) = index.install_catalog(c) {
                return catalog_unusable(dir, io, mode, reason);
            }
            catalog_installed = true;
        }
        match loaded {
            Ok((end, open, _)) => {
                ends.push(end);
                if open {
                    clean_end = true;
                    break;
                }
                from += 1;
            }
            Err(why) => {
                let reason = match why {
                    // The active segment has no index: expected, unless a
                    // later segment holds data.
                    Unusable::Missing if !later_data => break,
                    Unusable::Missing => "it is missing".to_owned(),
                    Unusable::Bad(reason) => reason,
                };
                let file = dir.join(index_file_name(segment.number()));
                tracing::warn!(
                    file = %file.display(),
                    %reason,
                    "segment index unusable: scanning the log from its segment on, and rebuilding it"
                );
                unusable.push((file, reason));
                break;
            }
        }
    }

    if catalog.is_some() && !catalog_installed {
        if !unusable.is_empty() {
            // An index file before the one the catalog names was unusable,
            // and the log is scanned from it on: the report names that
            // file, and the streams come from the index files and the scan.
            return recover_with(dir, io, mode, false, false);
        }
        // No index file the log reaches is the one the catalog names.
        let reason = "not written with the log as it is (stale)".to_owned();
        return catalog_unusable(dir, io, mode, reason);
    }

    let mut end_of_log: Option<EndOfLog> = None;
    if !clean_end {
        let contents: Vec<_> = segments
            .iter_mut()
            .enumerate()
            .skip(from)
            .map(|(k, seg)| {
                let access = if k >= shared_from {
                    Access::Shared
                } else {
                    Access::Exclusive
                };
                // Scanned segments are opened above and not shared yet;
                // were one shared, its bytes are copied rather than
                // borrowed.
                if Arc::strong_count(seg) == 1 && Arc::weak_count(seg) == 0 {
                    Arc::get_mut(seg).map_or(std::borrow::Cow::Owned(Vec::new()), |s| {
                        s.scan_bytes(access)
                    })
                } else {
                    std::borrow::Cow::Owned(seg.copy_out(0, seg.data_len()).unwrap_or_default())
                }
            })
            .collect();
        let bytes: Vec<&[u8]> = contents.iter().map(|c| &**c).collect();
        let (scanned_paths, scanned_salts) = (&paths[from..], &salts[from..]);
        scan(&bytes, scanned_salts, index.len(), &mut |piece: Piece<
            '_,
        >| {
            let k = piece.segment;
            let number = segment_id(
                u64::from(first_segment) + (from + k) as u64,
                &scanned_paths[k],
            )?;
            for frame in &piece.frames {
                let records = piece.records.get(frame.records.clone()).unwrap_or_default();
                let entries = records.iter().map(|r| Entry {
                    stream: r.stream,
                    event_type: r.event_type,
                    version: r.version,
                    offset: r.offset,
                    id: r.id,
                    control: None,
                });
                // The checksums passed, so these bytes are as written: a
                // refusal here is not a torn write but a broken log.
                index
                    .push_frame(number, frame.span.clone(), frame.first_position, entries)
                    .map_err(|r| Error::corruption(&scanned_paths[k], r.offset, r.reason))?;
            }
            match piece.end {
                None => Ok(true),
                Some(End::Clean { at }) if at > SEGMENT_HEADER_LEN => {
                    ends.push(at);
                    Ok(true)
                }
                Some(end) => {
                    let case = classify(k, end, &bytes, scanned_salts, index.len());
                    let found = decide(k, case, scanned_paths)?;
                    end_of_log = Some(EndOfLog {
                        active: from + found.active,
                        ..found
                    });
                    Ok(false)
                }
            }
        })?;
    }
    // Every segment scanned clean and full: the last is the active one.
    let (active, torn) = match end_of_log {
        _ if clean_end => (from, None),
        Some(e) => {
            ends.push(e.end);
            (e.active, e.torn)
        }
        None => (count - 1, None),
    };
    ends.resize(count, SEGMENT_HEADER_LEN);
    // A log that ends in a segment with no frames yet (the first frame of a
    // new segment torn) has its previous segment full: sealed.
    if (index.active_segment() as usize) < active && index.active_segment_has_events() {
        index.seal();
    }

    if let Some(base) = &listing.base {
        index
            .apply_base(base)
            .map_err(|reason| Error::corruption(dir.join(BASE_FILE), 0, reason))?;
    }

    let mut report = RecoveryReport {
        unusable_indexes: unusable,
        ..RecoveryReport::default()
    };
    if let Some(torn) = &torn {
        report.torn_tail = Some(TornTailReport {
            file: paths[active].clone(),
            offset: torn.at as u64,
            bytes: torn.bytes as u64,
            zeroed: false,
            claimed_positions: torn.claimed.clone(),
        });
    }
    // Every check has passed: only now is anything modified.
    if let Mode::Writable(policy, _) = mode {
        if let (Some(torn), TornTail::Refuse) = (&torn, policy) {
            return Err(Error::TornTail {
                file: paths[active].clone(),
                offset: torn.at as u64,
                bytes: torn.bytes as u64,
            });
        }
        remove_temps(dir, io, &listing.temps, &mut report)?;
        remove_dropped(dir, io, &listing.dropped)?;
        for temp in &listing.index_temps {
            // Half an index file: nothing refers to it.
            if let Err(e) = io.remove_file(temp) {
                tracing::warn!(file = %temp.display(), error = %e, "could not remove a half-written segment index");
            }
        }
        if let (Some(torn), Some(t)) = (&torn, report.torn_tail.as_mut()) {
            zero_tail(io, &paths[active], torn)?;
            t.zeroed = true;
        }
        // A crash right after a segment was renamed into place, before the
        // directory was synced, leaves a name that is not durable yet; the
        // writer may append into that segment, so make the names durable
        // before anything is acknowledged. Not after a clean close (the
        // open took the clean close's index of the active segment): the
        // writer removes that index and syncs the directory before its
        // first write anyway (`Engine::stale_index`), so no append can be
        // acknowledged before the names are durable, and a reopen that
        // only reads costs no directory sync (milliseconds on a busy disk).
        if !clean_end {
            io.sync_dir(dir)
                .map_err(|e| Error::io("sync data directory", dir, e))?;
        }
        persist_rebuilt(dir, io, &mut index);
    }

    for (k, (seg, end)) in segments.into_iter().zip(&ends).enumerate() {
        // A deferred segment's watermark covers its header (checked, for
        // segment 0, and readable only once checked, for the others) until
        // its table is loaded, which sets it where its frames end.
        seg.publish(if k < deferred_below {
            SEGMENT_HEADER_LEN
        } else {
            *end
        });
        index.push_segment(seg);
    }
    Ok(Recovered {
        store_id: header.store_id,
        segment_size: header.segment_size,
        index,
        active: segment_id(u64::from(first_segment) + active as u64, dir)?,
        write_offset: ends[active],
        report,
    })
}

/// Finishes a retention that a crash interrupted: removes the segments
/// below the log's first segment and their index files (`dropped`), then
/// syncs the directory. The base that names the new start was
/// durable before any of them was removed.
fn remove_dropped(dir: &Path, io: &dyn FileIo, dropped: &[PathBuf]) -> Result<(), Error> {
    for path in dropped {
        tracing::info!(file = %path.display(), "removing a file of a segment that retention dropped before a crash");
        io.remove_file(path)
            .map_err(|e| Error::io("remove a dropped segment's file", path, e))?;
    }
    if !dropped.is_empty() {
        io.sync_dir(dir)
            .map_err(|e| Error::io("sync data directory", dir, e))?;
    }
    Ok(())
}

/// How many segments, from 0, the open may defer with catalog `c` in a
/// store of `count` segments: those before the last sealed one the catalog
/// covers, when its segment table is well formed (strictly increasing
/// first positions from 0, below the position it reached) and at least
/// one segment follows the ones it covers, and every one of them has an
/// index file. 0 when nothing can be deferred.
fn deferrable(
    c: &crate::index::catalog::Catalog<'_>,
    count: usize,
    indexes: &std::collections::HashSet<u64>,
) -> usize {
    let n = c.sealed_firsts.len();
    // A sealed segment without an index file is scanned at this open (and
    // its index written by a writable one), as before catalogs deferred
    // anything: "remove it and the next open rebuilds it" stays true.
    if (0..n as u64).any(|k| !indexes.contains(&k)) {
        return 0;
    }
    let increasing = c.sealed_firsts.windows(2).all(|w| w[0] < w[1]);
    let fits = c.sealed_firsts.first() == Some(&0)
        && c.sealed_firsts.last().is_some_and(|l| *l < c.next_position);
    if n >= 2 && n < count && increasing && fits {
        n - 1
    } else {
        0
    }
}

/// Whether `segment` holds a frame: its first frame's length word is set.
fn holds_data(segment: &Segment) -> bool {
    segment
        .copy_out(SEGMENT_HEADER_LEN, 4)
        .is_some_and(|word| word != [0; 4])
}

/// Writes the index files of the sealed segments whose tables the scan
/// built. A failure costs only time at the next open: a warning, not an
/// error.
fn persist_rebuilt(dir: &Path, io: &dyn FileIo, index: &mut Index) {
    let mut built: Vec<u32> = index
        .sealed()
        .iter()
        .filter(|t| !t.is_persisted() && t.segment() != index.active_segment())
        .map(|t| t.segment())
        .collect();
    built.dedup();
    for segment in built {
        let file = dir.join(index_file_name(u64::from(segment)));
        let written = sealed_index_bytes(&index.tables_of(segment))
            .ok_or_else(|| std::io::Error::other("the segment's tables do not follow on"))
            .and_then(|bytes| write_index(io, dir, u64::from(segment), &bytes));
        // The file's bytes, mapped, take the place of the ones built in
        // memory: a store rebuilt whole keeps no event in memory.
        let mapped = written.and_then(|path| {
            let mapped = map_immutable(&fs::File::open(path)?)?;
            Table::from_map(mapped, false)
                .ok_or_else(|| std::io::Error::other("unreadable after writing"))
        });
        if let Ok(table) = &mapped {
            index.replace_tables(segment, table.clone());
        }
        if let Err(e) = mapped {
            tracing::warn!(
                file = %file.display(),
                error = %e,
                "could not write a segment index; the next open rebuilds it"
            );
        }
    }
}

/// Where the log ends, as [`decide`] found it.
struct EndOfLog {
    /// The index of the active segment: the one that ends the log, or the
    /// one before it when that one is an empty segment prepared ahead.
    active: usize,
    /// Where the frames of the segment that ends the log end (after repair,
    /// if its tail is torn).
    end: usize,
    /// A torn tail to zero in the active segment.
    torn: Option<Torn>,
}

/// A torn tail: where it starts, how many bytes it spans, and the positions
/// its frame header claimed if that header still checks out.
#[derive(Clone, Debug)]
struct Torn {
    at: usize,
    bytes: usize,
    claimed: Option<std::ops::Range<u64>>,
}

/// A failed check: where, and what.
struct Problem {
    offset: usize,
    reason: String,
}

/// The row of the recovery table that segment `k`, the one ending the log,
/// falls in. Segments after it are `k + 1..`.
enum Case {
    /// Frames, then zeros; nothing after. (Also "zero tail": no frames in
    /// segment 0.)
    CleanEnd { end: usize },
    /// An empty segment after one holding data: the one prepared ahead.
    PreparedAhead,
    /// The last frames fail a check and nothing valid follows.
    TornTail { torn: Torn },
    /// A frame fails a check and a later segment holds data: damage to a
    /// sealed segment, or a bad record followed by valid data.
    DataAfterDamage { problem: Problem, later: usize },
    /// A frame fails a check and a valid frame header follows it in the
    /// same segment.
    FrameAfterDamage { problem: Problem, frame_at: usize },
    /// A frame checks out but its positions do not follow on.
    Inconsistent { problem: Problem },
    /// This segment holds no frames but a later one holds data.
    DataAfterEmpty { later: usize, offset: usize },
    /// The first frame of this segment fails a check and another segment
    /// follows (it is prepared only after a frame of this one was durable).
    SegmentAfterBadFirstFrame { problem: Problem, later: usize },
    /// This segment holds no frames and another segment follows it.
    SegmentAfterEmpty { later: usize },
    /// More than one empty segment after the active one.
    ExtraEmpty { extra: usize },
}

/// Finds the row of the table for segment `k`, which ended the log with
/// `end` where the next event would take position `next_position`. What
/// follows it must be empty: data there means a failure here is damage, not
/// a torn write.
fn classify(k: usize, end: End, bytes: &[&[u8]], salts: &[Salt], next_position: u64) -> Case {
    let at = end.at();
    let problem = end
        .problem()
        .map(|(offset, reason)| Problem { offset, reason });
    if let End::OutOfOrder { .. } = end
        && let Some(problem) = problem
    {
        return Case::Inconsistent { problem };
    }
    let later_data = bytes.iter().enumerate().skip(k + 1).find_map(|(i, body)| {
        body.get(SEGMENT_HEADER_LEN..)
            .and_then(first_nonzero)
            .map(|j| (i, SEGMENT_HEADER_LEN + j))
    });
    let no_frames = at == SEGMENT_HEADER_LEN;
    let has_later = bytes.len() > k + 1;
    match (problem, later_data) {
        (Some(problem), Some((later, _))) => Case::DataAfterDamage { problem, later },
        (None, Some((later, offset))) => Case::DataAfterEmpty { later, offset },
        (Some(problem), None) if no_frames && has_later => Case::SegmentAfterBadFirstFrame {
            problem,
            later: k + 1,
        },
        (None, None) if no_frames && has_later => Case::SegmentAfterEmpty { later: k + 1 },
        _ if bytes.len() > k + 2 => Case::ExtraEmpty { extra: k + 2 },
        (Some(problem), None) => {
            let untrusted = bytes.get(k).copied().unwrap_or_default();
            match valid_frame_after(untrusted, salts[k], at) {
                Some(frame_at) => Case::FrameAfterDamage { problem, frame_at },
                None => Case::TornTail {
                    torn: torn_tail(untrusted, salts[k], at, next_position),
                },
            }
        }
        (None, None) if no_frames && k > 0 => Case::PreparedAhead,
        (None, None) => Case::CleanEnd { end: at },
    }
}

/// What each row of the table decides for segment `k`.
fn decide(k: usize, case: Case, paths: &[PathBuf]) -> Result<EndOfLog, Error> {
    let path = &paths[k];
    let name = |i: usize| {
        paths
            .get(i)
            .map_or_else(String::new, |p| p.display().to_string())
    };
    match case {
        Case::CleanEnd { end } => Ok(EndOfLog {
            active: k,
            end,
            torn: None,
        }),
        Case::PreparedAhead => Ok(EndOfLog {
            active: k - 1,
            end: SEGMENT_HEADER_LEN,
            torn: None,
        }),
        Case::TornTail { torn } => Ok(EndOfLog {
            active: k,
            end: torn.at,
            torn: Some(torn),
        }),
        Case::DataAfterDamage { problem, later } => Err(Error::corruption(
            path,
            problem.offset as u64,
            format!(
                "{}, and a later segment ({}) holds data",
                problem.reason,
                name(later)
            ),
        )),
        Case::FrameAfterDamage { problem, frame_at } => Err(Error::corruption(
            path,
            problem.offset as u64,
            format!(
                "{}, and a valid frame follows at offset {frame_at}",
                problem.reason
            ),
        )),
        Case::Inconsistent { problem } => Err(Error::corruption(
            path,
            problem.offset as u64,
            problem.reason,
        )),
        Case::DataAfterEmpty { later, offset } => Err(Error::corruption(
            &paths[later],
            offset as u64,
            format!(
                "segment holds data but the segment before it ({}) is empty",
                path.display()
            ),
        )),
        Case::SegmentAfterBadFirstFrame { problem, later } => Err(Error::corruption(
            path,
            problem.offset as u64,
            format!(
                "{}, in the first frame of a segment that another ({}) follows",
                problem.reason,
                name(later)
            ),
        )),
        Case::SegmentAfterEmpty { later } => Err(Error::corruption(
            &paths[later],
            0,
            format!("segment follows an empty segment ({})", path.display()),
        )),
        Case::ExtraEmpty { extra } => Err(Error::corruption(
            &paths[extra],
            0,
            "more than one empty segment after the active one",
        )),
    }
}

/// The offset of a valid frame header after the failure at `at`, if there
/// is one: a write that was cut short is always the last thing in the log,
/// so such a frame means the failure is damage to acknowledged data.
fn valid_frame_after(untrusted: &[u8], salt: Salt, at: usize) -> Option<usize> {
    let mut probe = align_up(at + 1).unwrap_or(usize::MAX);
    while probe.saturating_add(FRAME_HEADER_LEN) <= untrusted.len() {
        let candidate = untrusted.get(probe..).unwrap_or_default();
        if candidate.get(..4).is_some_and(|w| w != [0; 4])
            && matches!(decode_frame_header(candidate, salt), Ok(Some(_)))
        {
            return Some(probe);
        }
        probe += ALIGN;
    }
    None
}

/// The torn tail that starts at `at`: up to the last non-zero byte, and the
/// positions its frame header claims if that still checks out and starts
/// where the log ends (`next_position`). A header whose checksum passes by
/// chance but names other positions claims nothing: reporting positions the
/// log never reached would send a reader looking for them.
fn torn_tail(untrusted: &[u8], salt: Salt, at: usize, next_position: u64) -> Torn {
    let last_nonzero = last_nonzero(untrusted).unwrap_or(at);
    let claimed = untrusted
        .get(at..)
        .and_then(|rest| decode_frame_header(rest, salt).ok().flatten())
        .filter(|h| h.first_position == next_position)
        .map(|h| h.first_position..h.first_position.saturating_add(u64::from(h.event_count)));
    Torn {
        at,
        bytes: (last_nonzero + 1).saturating_sub(at),
        claimed,
    }
}

/// Zeroes a torn tail and syncs it. The file keeps its size: it is mapped,
/// and a segment never shrinks.
fn zero_tail(io: &dyn FileIo, path: &Path, torn: &Torn) -> Result<(), Error> {
    if torn.bytes == 0 {
        return Ok(());
    }
    tracing::warn!(
        file = %path.display(),
        offset = torn.at,
        bytes_dropped = torn.bytes,
        claimed_positions = ?torn.claimed,
        "truncating the torn tail of the active segment: an unacknowledged write was cut short"
    );
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open segment for repair", path, e))?;
    io.write_at(&file, path, &vec![0u8; torn.bytes], torn.at as u64)
        .map_err(|e| Error::io("zero torn tail", path, e))?;
    io.sync_data(&file, path)
        .map_err(|e| Error::io("sync repaired segment", path, e))
}

fn remove_temps(
    dir: &Path,
    io: &dyn FileIo,
    temps: &[PathBuf],
    report: &mut RecoveryReport,
) -> Result<(), Error> {
    for temp in temps {
        tracing::warn!(file = %temp.display(), "removing a segment whose preparation was interrupted");
        io.remove_file(temp)
            .map_err(|e| Error::io("remove interrupted segment", temp, e))?;
        report.removed_preparations.push(temp.clone());
    }
    if !temps.is_empty() {
        io.sync_dir(dir)
            .map_err(|e| Error::io("sync data directory", dir, e))?;
    }
    Ok(())
}

/// Starts a new store: a random store id and an empty segment 0.
fn create_store(
    dir: &Path,
    io: &dyn FileIo,
    segment_size: u64,
    report: RecoveryReport,
) -> Result<Recovered, Error> {
    let random = uuid::Uuid::now_v7().as_u64_pair();
    let store_id = random.0 ^ random.1.rotate_left(17);
    let header = SegmentHeader {
        store_id,
        segment_number: 0,
        segment_size,
    };
    let (segment, _file) = Segment::create(io, dir, &header)?;
    let mut index = Index::new(store_id);
    index.push_segment(segment);
    Ok(Recovered {
        store_id,
        segment_size,
        index,
        active: 0,
        write_offset: SEGMENT_HEADER_LEN,
        report,
    })
}
