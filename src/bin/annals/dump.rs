//! `annals dump`: the frames and records of one segment file with their
//! offsets, decoded with `annals::format`, or one segment's index file,
//! decoded with `annals::index_format`, for debugging.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use annals::Uuid;
use annals::index_format::{IndexView, decode_index};

use crate::exit::{Code, Failure, corrupt_message, out};
use crate::fmt::{count, payload_excerpt, plural, utc};
use crate::open;
use crate::segments::{self, Stop, Visit};

/// Print the frames and records of one segment file with their byte
/// offsets, or (with --index) one segment's index file. Reads the file
/// directly and takes no lock; stops with a message at the first frame that
/// fails a check.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["segment", "index"]))]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals dump ./data --segment 0
  annals dump ./data --segment 3 --data | less
  annals dump ./data --index 2 --limit 0

Offsets are bytes from the start of the file. A frame is one durable write
(one append, or several appends committed together); its records are the
events. Exits 5 at the first frame that fails a check, naming its offset.

--index N prints segment N's index file (NNNNNNNNNNNNNNNNNNNN.idx, written
when the segment is sealed): its header, then each stream with its first
version, event count and positions, at most --limit positions a stream
(with --data, the record offset of at most --limit positions too). Its
checksums are checked; `annals verify` checks it against its segment. A
sealed segment may have none (a store written before index files); the
active one has one only after a clean close, covering the events written
so far. Exits 5 when it fails its checksums."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The segment number (see `annals stats` for how many there are).
    #[arg(long)]
    pub segment: Option<u64>,
    /// Print this segment's index file instead of a segment.
    #[arg(long, value_name = "SEGMENT")]
    pub index: Option<u64>,
    /// Show each record's payload (an excerpt) and id too; with --index,
    /// each position's record offset.
    #[arg(long)]
    pub data: bool,
    /// With --index: how many positions (and offsets) to list per stream;
    /// 0 for all of them.
    /// (Default 16.)
    #[arg(long, requires = "index")]
    pub limit: Option<usize>,
}

/// How many positions a stream `--index` lists without `--limit`.
const DEFAULT_LIMIT: usize = 16;

/// Runs `annals dump`.
pub fn run(args: &Args) -> Result<(), Failure> {
    open::require_dir(&args.dir)?;
    let number = match (args.segment, args.index) {
        (_, Some(number)) => return dump_index(args, number),
        (Some(number), None) => number,
        (None, None) => {
            return Err(Failure::new(Code::Usage, "give --segment N or --index N"));
        }
    };
    let path = segments::segment_path(&args.dir, number);
    let untrusted = std::fs::read(&path).map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            Code::NotFound
        } else {
            Code::Failure
        };
        Failure::new(code, format!("cannot read segment {}: {e}", path.display()))
    })?;
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    let shown = path.display().to_string();
    let walked = segments::walk(&untrusted, number, None, |visit| {
        out(show(
            &mut stdout,
            &shown,
            args.data.then_some(&untrusted[..]),
            &visit,
        ))
    });
    let result = match walked {
        Ok(w) => {
            let tail = untrusted.len() - w.end.min(untrusted.len());
            out(writeln!(
                stdout,
                "end of data at offset {}: {}, {}; the remaining {} bytes are zero",
                w.end,
                plural(w.frames, "frame"),
                plural(w.events, "event"),
                count(tail as u64)
            ))
        }
        Err(Stop::Visitor(failure)) => Err(failure),
        Err(Stop::Bad(problem)) => Err(Failure::new(
            Code::Corrupt,
            format!(
                "{} (dump stopped here)",
                corrupt_message(&shown, problem.offset, &problem.reason)
            ),
        )),
    };
    out(stdout.flush())?;
    result
}

/// Prints one step of the walk; with `file` (the segment's bytes), each
/// record's id and payload too.
fn show(
    out: &mut impl Write,
    path: &str,
    file: Option<&[u8]>,
    visit: &Visit<'_>,
) -> std::io::Result<()> {
    match visit {
        Visit::Header(h) => {
            writeln!(
                out,
                "segment {path}\n  store id {:#018x}, segment number {}, segment size {} bytes",
                h.store_id, h.segment_number, h.segment_size
            )?;
            writeln!(out, "offset 0: segment header, checked")
        }
        Visit::Frame {
            offset,
            header,
            records,
        } => {
            writeln!(
                out,
                "offset {offset}: frame of {} bytes, {} from position {}",
                header.frame_len,
                plural(u64::from(header.event_count), "event"),
                header.first_position
            )?;
            for (at, r) in records.iter() {
                if r.gap {
                    writeln!(
                        out,
                        "  offset {at}: gap record of {} bytes: position {}, an event removed by a scavenge",
                        r.padded_len, r.position
                    )?;
                    continue;
                }
                // A control record changes another stream's lifecycle.
                let kind = if r.control { ", a control record" } else { "" };
                writeln!(
                    out,
                    "  offset {at}: record of {} bytes: position {}, {}@{}, type {}, \
                     data {} bytes, metadata {} bytes, recorded {}{kind}",
                    r.padded_len,
                    r.position,
                    r.stream,
                    r.version,
                    r.event_type,
                    r.data.len(),
                    r.metadata.len(),
                    utc(r.recorded_at_us)
                )?;
                if let Some(file) = file {
                    let data = file.get(at + r.data.start..at + r.data.end);
                    writeln!(
                        out,
                        "    id {}, data {}",
                        Uuid::from_bytes(r.id),
                        payload_excerpt(data.unwrap_or_default(), 60)
                    )?;
                }
            }
            Ok(())
        }
    }
}

/// Prints segment `number`'s index file.
fn dump_index(args: &Args, number: u64) -> Result<(), Failure> {
    let path = segments::index_path(&args.dir, number);
    let untrusted = std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            let segment = segments::segment_path(&args.dir, number);
            let why = if segment.exists() {
                "a segment still being written has none, nor has a store written before \
                 index files until a writable open writes them"
            } else {
                "there is no such segment either"
            };
            Failure::new(
                Code::NotFound,
                format!("no index file {}: {why}", path.display()),
            )
        } else {
            Failure::new(
                Code::Failure,
                format!("cannot read index file {}: {e}", path.display()),
            )
        }
    })?;
    let view = decode_index(&untrusted).map_err(|reason| {
        Failure::new(
            Code::Corrupt,
            format!(
                "bad index file {}: {reason} (derived data: remove it and the next writable open rebuilds it; \
                 dump stopped here)",
                path.display()
            ),
        )
    })?;
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    let shown = path.display().to_string();
    out(show_index(
        &mut stdout,
        &shown,
        untrusted.len(),
        &view,
        args,
    ))?;
    out(stdout.flush())
}

/// Prints a decoded index: its header, the offsets with `--data`, and each
/// stream's entry, at most `--limit` positions each.
fn show_index(
    out: &mut impl Write,
    path: &str,
    len: usize,
    view: &IndexView<'_>,
    args: &Args,
) -> std::io::Result<()> {
    let h = view.header();
    let limit = match args.limit.unwrap_or(DEFAULT_LIMIT) {
        0 => usize::MAX,
        n => n,
    };
    let events = u64::from(h.event_count);
    writeln!(
        out,
        "index {path}: {} bytes, checksums checked",
        count(len as u64)
    )?;
    writeln!(
        out,
        "  store id {:#018x}, segment number {}, {}",
        h.store_id,
        h.segment_number,
        if h.open {
            "flagged open: written at a clean close while the segment was active"
        } else {
            "sealed"
        }
    )?;
    let positions = if events == 0 {
        "no positions".to_owned()
    } else {
        format!(
            "positions {} to {}",
            h.first_position,
            h.first_position + events - 1
        )
    };
    writeln!(
        out,
        "  {}, {positions}; last frame at offset {}, data end at offset {}",
        plural(events, "event"),
        h.last_frame_at,
        h.data_end
    )?;
    writeln!(
        out,
        "  {}, {} bytes of names",
        plural(u64::from(h.stream_count), "stream"),
        h.names_len
    )?;
    if args.data {
        let first = h.first_position;
        for position in (first..first + events).take(limit) {
            let offset = view
                .offset(position)
                .map_or("none".to_owned(), |o| o.to_string());
            writeln!(out, "  position {position}: record at offset {offset}")?;
        }
        more(out, events, limit, "  ", "position")?;
    }
    for (i, entry) in view.entries().enumerate() {
        let name = match view.name(&entry) {
            Some(raw) => match std::str::from_utf8(raw) {
                Ok(name) => name.to_owned(),
                Err(_) => format!("{} (not UTF-8)", String::from_utf8_lossy(raw)),
            },
            None => format!("#{i} (its name is out of bounds)"),
        };
        let listed: Vec<String> = entry
            .versions()
            .take(limit)
            .map(|v| {
                view.position(&entry, v)
                    .map_or("?".to_owned(), |p| p.to_string())
            })
            .collect();
        let rest = u64::from(entry.count).saturating_sub(listed.len() as u64);
        let rest = if rest > 0 {
            format!(" and {} more", count(rest))
        } else {
            String::new()
        };
        writeln!(
            out,
            "stream {name}: first version {}, {}, positions {}{rest}",
            entry.first_version,
            plural(u64::from(entry.count), "event"),
            listed.join(" ")
        )?;
    }
    Ok(())
}

/// Says how many of `total` lines `limit` left out, if any.
fn more(
    out: &mut impl Write,
    total: u64,
    limit: usize,
    indent: &str,
    what: &str,
) -> std::io::Result<()> {
    let shown = total.min(limit as u64);
    if total > shown {
        writeln!(
            out,
            "{indent}... and {} (--limit 0 shows all)",
            plural(total - shown, &format!("more {what}"))
        )?;
    }
    Ok(())
}
