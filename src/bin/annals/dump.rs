//! `annals dump`: the frames and records of one segment file with their
//! offsets, decoded with `annals::format`, for debugging.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use annals::Uuid;

use crate::exit::{Code, Failure, corrupt_message, out};
use crate::fmt::{count, payload_excerpt, plural, utc};
use crate::open;
use crate::segments::{self, Stop, Visit};

/// Print the frames and records of one segment file with their byte
/// offsets. Reads the file directly and takes no lock; stops with a
/// message at the first frame that fails a check.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals dump ./data --segment 0
  annals dump ./data --segment 3 --data | less

Offsets are bytes from the start of the file. A frame is one durable write
(one append, or several appends committed together); its records are the
events. Exits 5 at the first frame that fails a check, naming its offset."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The segment number (see `annals stats` for how many there are).
    #[arg(long)]
    pub segment: u64,
    /// Show each record's payload (an excerpt) and id too.
    #[arg(long)]
    pub data: bool,
}

/// Runs `annals dump`.
pub fn run(args: &Args) -> Result<(), Failure> {
    open::require_dir(&args.dir)?;
    let path = segments::segment_path(&args.dir, args.segment);
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
    let walked = segments::walk(&untrusted, args.segment, None, |visit| {
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
                writeln!(
                    out,
                    "  offset {at}: record of {} bytes: position {}, {}@{}, type {}, \
                     data {} bytes, metadata {} bytes, recorded {}",
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
