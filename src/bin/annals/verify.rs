//! `annals verify`: checks every byte of a store without modifying it.
//!
//! Three passes over the events, each catching what the one before cannot,
//! then a check of the segment index files:
//!
//! 1. A read-only open, which checks every segment header, and every frame
//!    and record checksum of the segments it scans (those it cannot take
//!    from a usable index file), and refuses damage with the file and
//!    offset.
//! 2. Every event read back through `read_all`, which checks each record's
//!    checksum again and that the index and the files agree (positions
//!    strictly increasing: removed events and control records are skipped).
//! 3. Every segment file walked directly with `annals::format`. A read-only
//!    open treats a bad last frame as a torn write and ends the log before
//!    it, silently (the next writable open would drop those bytes), so only
//!    this pass reports it. It also checks that only zeros follow the data.
//! 4. Every segment index file (`NNNNNNNNNNNNNNNNNNNN.idx`) decoded with
//!    `annals::index_format` and compared with what its segment's frames,
//!    as pass 3 walked them, imply: store and segment, first position,
//!    event count, the last frame and the end of the data, the record
//!    offset of every position, and every stream's first version, count and
//!    positions, down to the last byte. Index files are derived data (the
//!    next writable open rebuilds a missing or bad one), so a bad one is
//!    its own outcome, [`Code::BadIndex`], not a corrupt store; a sealed
//!    segment without one (a store written before index files) is a note.
//!
//! Nothing is written and no lock is taken, so verify may run beside a live
//! writer; a frame being written at that very moment can then show up as a
//! torn tail, and a second run tells the two apart.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use annals::index_format::decode_index;

use crate::exit::{Code, Failure, corrupt_message, out};
use crate::fmt::{duration, plural, progress_bar};
use crate::indexes::{self, Implied, Verdict};
use crate::open;
use crate::segments::{self, Stop};

/// How many events one `read_all` call fetches.
const PAGE_EVENTS: usize = 10_000;

/// What a bad index file's report ends with.
const DERIVED: &str = "derived data: remove it and the next writable open rebuilds it";

/// What it ends with when the open's own checks passed it, so that the
/// next writable open would use it rather than rebuild it.
const ACCEPTED: &str = "derived data, but it passes the open's own checks, which use it: \
                        remove the file and the next writable open rebuilds it";

/// What it ends with when the reads failed, so which files the open took
/// is not known.
const MAYBE_ACCEPTED: &str = "derived data: a writable open rebuilds it if its own checks \
                              find it bad; remove the file to be sure";

/// Check every record of every segment, and every segment index file
/// against its segment; exit 0 when all is clean, 5 with the file and byte
/// offset of the first problem in the events, 8 when the events check out
/// but an index file does not. Never modifies anything and takes no lock.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals verify ./data && echo clean

A torn tail (a write cut short by a crash, which the next writable open
drops) is reported too, as a problem at its offset.

Each segment index file (NNNNNNNNNNNNNNNNNNNN.idx) must be exactly what its
segment implies: every record offset, every stream's versions and
positions. A bad one (damaged, stale, of another store, or of a segment
that is not sealed) is reported on standard error as
  index N (FILE): PROBLEM (derived data: remove it and the next writable
  open rebuilds it)
and makes verify exit 8, not 5: index files are derived data, nothing
stored is lost, and reads never trust a bad one (they rebuild it from its
segment where they first use it, and a writable store's clean close
writes it again); removing the file makes the next writable open (annals
append, say) rebuild it at once. A sealed segment without an index file (a store written before
index files existed) is only a note on standard output."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
}

/// Runs `annals verify`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let started = Instant::now();
    // A read that fails may have been sent astray by a wrong index file the
    // open trusted; the walk of the files below tells which.
    let (total, taken, read_failure) = match read_back(&args.dir) {
        Ok((total, taken)) => (Some(total), Some(taken), None),
        Err(failure) if failure.code == Code::Corrupt => (None, None, Some(failure)),
        Err(failure) => return Err(failure),
    };
    let walked = walk_files(&args.dir, total, taken);
    let (walked, index_problems) = match walked {
        Ok(w) => {
            let problems = w.index_problems.clone();
            (Some(w), problems)
        }
        Err(failure) => {
            return Err(read_failure.unwrap_or(failure));
        }
    };
    for problem in &index_problems {
        eprintln!("annals: {problem}");
    }
    if let Some(failure) = read_failure {
        if index_problems.is_empty() {
            return Err(failure);
        }
        // Every segment file checks out, so the failed read went through a
        // wrong index; an open that accepts it would use it again.
        return Err(Failure::new(
            Code::BadIndex,
            format!(
                "every segment file checks out, but reading the store failed, through an \
                 index file listed above: {failure}. Remove the bad index files; the next \
                 writable open rebuilds them"
            ),
        ));
    }
    let (Some(w), Some(total)) = (walked, total) else {
        return Err(Failure::new(
            Code::Failure,
            "verify lost its count of events",
        ));
    };
    if w.file_events < total {
        return Err(Failure::new(
            Code::Corrupt,
            format!(
                "the segment files hold {} events, but the store read {total}",
                w.file_events
            ),
        ));
    }

    let mut stdout = std::io::stdout().lock();
    let index_summary = match w.index_files {
        0 => "no index files".to_owned(),
        1 => "1 index file matches its segment".to_owned(),
        n => format!("{} match their segments", plural(n, "index file")),
    };
    if !index_problems.is_empty() {
        for note in &w.notes {
            out(writeln!(stdout, "note: {note}"))?;
        }
        return Err(Failure::new(
            Code::BadIndex,
            format!(
                "the events check out ({} in {}), but {} of {} {}; index files are \
                 derived data, and nothing stored is lost",
                plural(total, "event"),
                plural(w.files, "segment file"),
                index_problems.len(),
                plural(w.index_files, "index file"),
                if index_problems.len() == 1 {
                    "does not"
                } else {
                    "do not"
                },
            ),
        ));
    }
    out(writeln!(
        stdout,
        "ok: {} in {} holding events; {} checked in {}; {index_summary}; no problems found",
        plural(total, "event"),
        plural(w.holding_events, "segment"),
        plural(w.files, "segment file"),
        duration(started.elapsed())
    ))?;
    for note in &w.notes {
        out(writeln!(stdout, "note: {note}"))?;
    }
    Ok(())
}

/// Passes 1 and 2: a read-only open, and every event read back; the
/// number of events, and which index files the open took (see [`Taken`]).
fn read_back(dir: &Path) -> Result<(u64, Taken), Failure> {
    let store = open::reader(dir)?;
    let total = store.global_position();
    // Where the log starts: 0, or later once retention dropped segments.
    let stats = store.stats();
    let (first_segment, first_position) = (stats.first_segment, stats.first_position);
    // The open takes sealed segments from their index files up to the
    // first one it finds unusable, and scans (and a writable open rebuilds)
    // from there on.
    let first_unusable = store
        .recovery_report()
        .unusable_indexes
        .iter()
        .filter_map(|(file, _)| {
            let name = file.file_name()?.to_str()?;
            name.strip_suffix(".idx")?.parse::<u64>().ok()
        })
        .min();

    let bar = progress_bar(total - first_position, "verifying");
    let mut position = first_position;
    while position < total {
        let page = store.read_all(position, PAGE_EVENTS).inspect_err(|_| {
            bar.abandon();
        })?;
        if page.is_empty() {
            break;
        }
        // Positions are strictly increasing; they skip only events that
        // were removed (deleted, truncated, past a limit) and control
        // records, which no read returns.
        for e in &page {
            if e.position < position || e.position >= total {
                bar.abandon();
                return Err(Failure::new(
                    Code::Corrupt,
                    format!(
                        "read_all returned position {} where a position from {position} to {} was expected",
                        e.position,
                        total.saturating_sub(1)
                    ),
                ));
            }
            position = e.position + 1;
        }
        bar.inc(page.len() as u64);
    }
    bar.finish_and_clear();
    Ok((
        total - first_position,
        Taken {
            first_unusable,
            first_segment,
            first_position,
        },
    ))
}

/// Which index files the read-only open took without finding fault: those
/// of segments before the first one it found unusable, but for the last
/// segment, which it always scans. A bad index file among them passes the
/// open's own checks, so a writable open would use it too, not rebuild it.
#[derive(Debug, Clone, Copy)]
struct Taken {
    first_unusable: Option<u64>,
    /// The log's first segment and position (0 and 0 unless retention
    /// dropped segments).
    first_segment: u64,
    first_position: u64,
}

/// What passes 3 and 4 found, when every segment file checked out.
#[derive(Debug, Default)]
struct Walked {
    /// Segment files checked.
    files: u64,
    /// Segments holding events, counted as `annals stats` counts them.
    holding_events: u64,
    /// Events in the segment files.
    file_events: u64,
    /// Index files looked at.
    index_files: u64,
    /// What is wrong with index files, one line each.
    index_problems: Vec<String>,
    /// What is worth knowing but not wrong.
    notes: Vec<String>,
}

/// How one index file compared with its segment, before it is known
/// whether that segment is sealed.
enum Found {
    /// Wrong whatever the segment's state.
    Bad(String),
    /// As the check says.
    Checked(Result<Verdict, String>, bool),
}

/// Passes 3 and 4: every segment file walked, each index file checked
/// against its segment. `total` is what the store read back, when it could.
fn walk_files(dir: &Path, total: Option<u64>, taken: Option<Taken>) -> Result<Walked, Failure> {
    // The index files are listed before the segments: an index file is
    // written only after its segment is sealed and the next one is in
    // place, so a live writer cannot make one listed here look unsealed.
    let mut index_files: BTreeMap<u64, PathBuf> =
        segments::list_indexes(dir)?.into_iter().collect();
    let listed = segments::list(dir)?;
    let last_file = listed.last().map(|(n, _)| *n);

    let mut w = Walked::default();
    // Where the first segment's frames must start: known when the store
    // opened (a log that retention cut starts later), unchecked otherwise.
    let first_segment = taken.as_ref().map_or(0, |t| t.first_segment);
    let mut next_position = match &taken {
        Some(t) => Some(t.first_position),
        None if listed.first().is_some_and(|(n, _)| *n == 0) => Some(0),
        None => None,
    };
    let listed: Vec<_> = listed
        .into_iter()
        .filter(|(n, _)| *n >= first_segment)
        .collect();
    index_files.retain(|n, _| *n >= first_segment);
    // Per segment with an index file: (number, what the check found,
    // whether it holds events).
    let mut found: Vec<(u64, PathBuf, Found, bool)> = Vec::new();
    let mut holding: Vec<u64> = Vec::new();
    let mut with_index: Vec<u64> = Vec::new();
    for (number, path) in listed {
        let untrusted = std::fs::read(&path).map_err(|e| {
            Failure::new(
                Code::Failure,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let mut implied = Implied::default();
        let walk = segments::walk(&untrusted, number, next_position, |visit| {
            implied.add(&visit);
            Ok(())
        });
        match walk {
            Ok(walked) => {
                next_position = Some(walked.next_position);
                w.file_events += walked.events;
                w.files += 1;
                if walked.events > 0 || number == first_segment {
                    w.holding_events += 1;
                }
                if walked.events > 0 {
                    holding.push(number);
                }
            }
            Err(Stop::Bad(problem)) => {
                let torn = match total {
                    Some(total)
                        if w.file_events + problem.events_before >= total && problem.offset > 0 =>
                    {
                        " (the log ends in an unfinished write: a torn tail, which the next \
                         writable open drops)"
                    }
                    _ => "",
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
        if let Some(index) = index_files.remove(&number) {
            with_index.push(number);
            let outcome = match std::fs::read(&index) {
                Err(e) => Found::Bad(format!("cannot read it: {e}")),
                Ok(bytes) => match decode_index(&bytes) {
                    Err(reason) => Found::Bad(reason),
                    Ok(view) => Found::Checked(
                        indexes::check(&bytes, &view, number, &implied),
                        view.header().open,
                    ),
                },
            };
            found.push((number, index, outcome, implied.events() > 0));
        }
    }

    // The active segment is the last one holding events; those before it
    // are sealed. An empty segment after it is one prepared ahead, or the
    // next one of a rotation whose first write has not landed yet, which
    // sealed it: an index of it is then right either way.
    let active = holding.last().copied().unwrap_or(0);
    let followed = last_file.is_some_and(|last| last > active);
    for (number, index, outcome, holds_events) in found {
        w.index_files += 1;
        // Whether the open took this index file although it is bad.
        // Unknown when the reads failed.
        let accepted = match taken {
            _ if !matches!(outcome, Found::Checked(..)) => Some(false),
            None => None,
            Some(t) => Some(
                t.first_unusable.is_none_or(|f| number < f)
                    && last_file.is_some_and(|last| number < last),
            ),
        };
        let problem = match outcome {
            Found::Bad(reason) => Some(reason),
            Found::Checked(result, open) => {
                if !holds_events {
                    Some(format!(
                        "segment {number} holds no events, so it has no index"
                    ))
                } else if number < active && open {
                    Some(format!(
                        "it is flagged open (written at a clean close while its segment was \
                         active), but segment {number} is sealed: later segments hold events"
                    ))
                } else if number == active && !open && !followed {
                    Some(format!(
                        "segment {number} is the active segment, not sealed: only sealed \
                         segments have an index written for them"
                    ))
                } else {
                    match result {
                        Err(reason) => Some(reason),
                        Ok(Verdict::Whole) => None,
                        Ok(Verdict::Prefix { covered, events }) => {
                            if covered < events {
                                w.notes.push(format!(
                                    "index {number} ({}) covers the first {} of the active \
                                     segment's {} (written at a clean close; a writer has \
                                     appended since)",
                                    index.display(),
                                    plural(covered, "event"),
                                    plural(events, "event"),
                                ));
                            }
                            None
                        }
                    }
                }
            }
        };
        if let Some(problem) = problem {
            let ending = match accepted {
                Some(false) => DERIVED,
                Some(true) => ACCEPTED,
                None => MAYBE_ACCEPTED,
            };
            w.index_problems.push(format!(
                "index {number} ({}): {problem} ({ending})",
                index.display()
            ));
        }
    }
    // Index files of no segment at all.
    for (number, index) in index_files {
        w.index_files += 1;
        w.index_problems.push(bad_index(
            number,
            &index,
            &format!("there is no segment {number}"),
        ));
    }
    let unindexed: Vec<u64> = holding
        .iter()
        .copied()
        .filter(|n| *n < active && !with_index.contains(n))
        .collect();
    if !unindexed.is_empty() {
        w.notes.push(format!(
            "{} without an index file ({}): a store written before index files, or a \
             writer stopped before writing them; the next writable open writes them",
            plural(unindexed.len() as u64, "sealed segment"),
            numbers(&unindexed)
        ));
    }
    Ok(w)
}

/// The one wording of a bad index file.
fn bad_index(number: u64, index: &Path, problem: &str) -> String {
    format!(
        "index {number} ({}): {problem} ({DERIVED})",
        index.display()
    )
}

/// Segment numbers for people: `3, 5, 6`, or the first few of many.
fn numbers(list: &[u64]) -> String {
    const SHOWN: usize = 8;
    let mut text: Vec<String> = list.iter().take(SHOWN).map(u64::to_string).collect();
    if list.len() > SHOWN {
        text.push(format!("and {} more", list.len() - SHOWN));
    }
    text.join(", ")
}
