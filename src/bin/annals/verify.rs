//! `annals verify`: checks every byte of a store without modifying it.
//!
//! Three passes, each catching what the one before cannot:
//!
//! 1. A read-only open, which checks every segment header and every frame
//!    and record checksum, and refuses damage with the file and offset.
//! 2. Every event read back through `read_all`, which checks each record's
//!    checksum again and that the index and the files agree.
//! 3. Every segment file walked directly with `annals::format`. A read-only
//!    open treats a bad last frame as a torn write and ends the log before
//!    it, silently (the next writable open would drop those bytes), so only
//!    this pass reports it. It also checks that only zeros follow the data.
//!
//! Nothing is written and no lock is taken, so verify may run beside a live
//! writer; a frame being written at that very moment can then show up as a
//! torn tail, and a second run tells the two apart.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::exit::{Code, Failure, corrupt_message, out};
use crate::fmt::{duration, plural, progress_bar};
use crate::open;
use crate::segments::{self, Stop};

/// How many events one `read_all` call fetches.
const PAGE_EVENTS: usize = 10_000;

/// Check every record of every segment; exit 0 when the store is clean, 5
/// with the file and byte offset of the first problem otherwise. Never
/// modifies anything and takes no lock.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals verify ./data && echo clean

A torn tail (a write cut short by a crash, which the next writable open
drops) is reported too, as a problem at its offset."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
}

/// Runs `annals verify`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let started = Instant::now();
    let store = open::reader(&args.dir)?;
    let total = store.global_position();

    let bar = progress_bar(total, "verifying");
    let mut position = 0u64;
    while position < total {
        let page = store.read_all(position, PAGE_EVENTS)?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            if e.position != position {
                bar.abandon();
                return Err(Failure::new(
                    Code::Corrupt,
                    format!(
                        "read_all returned position {} where {position} was expected",
                        e.position
                    ),
                ));
            }
            position += 1;
        }
        bar.inc(page.len() as u64);
    }
    bar.finish_and_clear();
    if position != total {
        return Err(Failure::new(
            Code::Corrupt,
            format!("the store holds {total} events but read_all stopped after {position}"),
        ));
    }

    let mut next_position = Some(0u64);
    let mut files = 0u64;
    // Counted as `annals stats` counts segments: those holding events, and
    // segment 0 of an empty store; a segment prepared ahead is not one.
    let mut holding_events = 0u64;
    let mut file_events = 0u64;
    for (number, path) in segments::list(&args.dir)? {
        let untrusted = std::fs::read(&path).map_err(|e| {
            Failure::new(
                Code::Failure,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        match segments::walk(&untrusted, number, next_position, |_| Ok(())) {
            Ok(walked) => {
                next_position = Some(walked.next_position);
                file_events += walked.events;
                files += 1;
                if walked.events > 0 || number == 0 {
                    holding_events += 1;
                }
            }
            Err(Stop::Bad(problem)) => {
                let torn = if file_events + problem.events_before >= total && problem.offset > 0 {
                    " (the log ends in an unfinished write: a torn tail, which the next \
                     writable open drops)"
                } else {
                    ""
                };
                return Err(Failure::new(
                    Code::Corrupt,
                    format!(
                        "{}{torn}",
                        corrupt_message(
                            &path.display().to_string(),
                            problem.offset,
                            &problem.reason
                        )
                    ),
                ));
            }
            Err(Stop::Visitor(failure)) => return Err(failure),
        }
    }
    if file_events < total {
        return Err(Failure::new(
            Code::Corrupt,
            format!("the segment files hold {file_events} events, but the store read {total}"),
        ));
    }

    let mut stdout = std::io::stdout().lock();
    out(writeln!(
        stdout,
        "ok: {} in {} holding events; {} checked in {}; no problems found",
        plural(total, "event"),
        plural(holding_events, "segment"),
        plural(files, "segment file"),
        duration(started.elapsed())
    ))
}
