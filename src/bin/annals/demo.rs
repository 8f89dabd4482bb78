//! `annals demo`: the main job. Fills a fresh store from several threads,
//! reopens it, reads every event back two ways, checks each against what
//! was written, and reports the figures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Options, Stats, Store};
use indicatif::ProgressBar;

use crate::demo_data::{self, Plan};
use crate::demo_read::{ALL_PAGE, Problems, STREAM_PAGE, read_all, read_streams};
use crate::exit::{Code, Failure, out};
use crate::fmt::{Table, bytes, count, duration, progress_bar, rate};

/// Run the main job on a fresh store: append from several threads in
/// batches, reopen, read everything back and verify it, print the figures.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals demo                                   # 1,000,000 events, 10,000 streams
  annals demo --events 2000 --streams 50        # a quick run
  annals demo --dir ./demo-data --keep          # keep the store to inspect it

Each thread owns a disjoint set of streams and appends to them in batches
with an exact expected version (no-stream for the first), so every append
must succeed. Every event's content follows from its stream and version, so
both read passes check every byte. Exits 5 if anything read back differs.

The store is removed at the end unless --keep. A demo interrupted (Ctrl-C)
or killed before then leaves it behind; the demo says where when it starts."))]
pub struct Args {
    /// Where to build the store: a new or empty directory. Default: a new
    /// directory under the system temp dir.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How many events to append (about 256 bytes of JSON each).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,
    /// How many streams to spread them over (at most --events).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub streams: u64,
    /// Events per append.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch: u64,
    /// Appending threads. Default: the available parallelism, at least 4,
    /// so that concurrent appends share syncs (group commit).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: Option<u64>,
    /// The size of each segment file in bytes: a multiple of 4096 from 4 KiB
    /// to 1 GiB. Small segments make the store roll over often.
    #[arg(long, default_value_t = 64 << 20)]
    pub segment_size: u64,
    /// Keep the store at the end instead of removing it.
    #[arg(long)]
    pub keep: bool,
}

/// The figures the demo reports.
struct Report {
    threads: u64,
    appends: u64,
    append_time: Duration,
    latencies_us: Vec<u64>,
    stats: Stats,
    reopen_time: Duration,
    read_stream_time: Duration,
    read_all_time: Duration,
    total_time: Duration,
}

/// Runs `annals demo`.
pub fn run(args: &Args) -> Result<(), Failure> {
    if args.streams > args.events {
        return Err(Failure::new(
            Code::Usage,
            format!(
                "--streams {} is more than --events {}: every stream needs an event",
                args.streams, args.events
            ),
        ));
    }
    let threads = args.threads.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        cores.max(4)
    });
    let (dir, created) = prepare_dir(args.dir.as_deref())?;
    if !args.keep {
        // Nothing can clean up after a demo that is interrupted or killed
        // (std has no signal handler, and a handler would cover Ctrl-C but
        // not a kill or a crash), so say where the store is before there is
        // anything in it. Standard error, and before the path on standard
        // output, so that whoever reads that line has been told already.
        eprintln!(
            "annals: the demo removes its store when it ends; if it is interrupted \
             (Ctrl-C) or killed first, the store stays in {} for you to remove",
            dir.display()
        );
    }
    out(writeln!(std::io::stdout(), "store: {}", dir.display()))?;
    let plan = Plan {
        events: args.events,
        streams: args.streams,
    };
    let options = Options::default().segment_size(args.segment_size);
    match phases(&dir, &options, plan, args.batch, threads) {
        Ok(report) => {
            let kept = if args.keep {
                "kept"
            } else {
                remove(&dir, created)?;
                "removed"
            };
            let mut stdout = std::io::stdout().lock();
            out(print_report(
                &mut stdout,
                &dir,
                kept,
                plan,
                args.batch,
                &report,
            ))
        }
        Err(failure) if failure.code == Code::Usage => {
            // Refused before anything was written (bad options): nothing to
            // inspect.
            let _ = remove(&dir, created);
            Err(failure)
        }
        Err(failure) => {
            eprintln!(
                "annals: the store is kept at {} for inspection",
                dir.display()
            );
            Err(failure)
        }
    }
}

/// The store directory: `dir` if given (it must be new or empty), else a
/// new one under the temp dir. Also says whether the directory was created.
fn prepare_dir(dir: Option<&Path>) -> Result<(PathBuf, bool), Failure> {
    let Some(dir) = dir else {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let dir = base.join(format!("annals-demo-{}-{attempt}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok((dir, true)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_failure("create", &dir, &e)),
            }
        }
        return Err(Failure::new(
            Code::Failure,
            format!("cannot find a free directory name under {}", base.display()),
        ));
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Failure::new(
                    Code::Usage,
                    format!(
                        "--dir {} is not empty; the demo needs a new or empty directory",
                        dir.display()
                    ),
                ));
            }
            Ok((dir.to_path_buf(), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| io_failure("create", dir, &e))?;
            Ok((dir.to_path_buf(), true))
        }
        Err(e) => Err(io_failure("open", dir, &e)),
    }
}

/// Removes the demo's store: the directory if the demo created it, else
/// only what it put there.
fn remove(dir: &Path, created: bool) -> Result<(), Failure> {
    if created {
        return std::fs::remove_dir_all(dir).map_err(|e| io_failure("remove", dir, &e));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io_failure("list", dir, &e))?;
    for entry in entries {
        let path = entry.map_err(|e| io_failure("list", dir, &e))?.path();
        std::fs::remove_file(&path).map_err(|e| io_failure("remove", &path, &e))?;
    }
    Ok(())
}

fn io_failure(what: &str, path: &Path, e: &std::io::Error) -> Failure {
    Failure::new(
        Code::Failure,
        format!("cannot {what} {}: {e}", path.display()),
    )
}

/// Append, close, reopen, read back, verify.
fn phases(
    dir: &Path,
    options: &Options,
    plan: Plan,
    batch: u64,
    threads: u64,
) -> Result<Report, Failure> {
    let started = Instant::now();

    let store = Store::open_with(dir, options.clone())?;
    let bar = progress_bar(plan.events, "appending");
    let append_start = Instant::now();
    let shares: Vec<Result<Vec<u64>, Failure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, bar) = (&store, bar.clone());
                scope.spawn(move || append_share(store, plan, batch, t, threads, &bar))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Failure::new(Code::Failure, "an append thread panicked"))
                })
            })
            .collect()
    });
    let append_time = append_start.elapsed();
    bar.finish_and_clear();
    let mut latencies_us = Vec::new();
    for share in shares {
        latencies_us.extend(share?);
    }
    latencies_us.sort_unstable();
    let stats = store.stats();
    store.close()?;

    let reopen_start = Instant::now();
    let store = Store::open_with(dir, options.clone())?;
    let reopen_time = reopen_start.elapsed();
    let mut problems = Problems::default();
    if store.global_position() != plan.events {
        problems.add(format!(
            "after reopening, the store holds {} events where {} were appended",
            store.global_position(),
            plan.events
        ));
    }
    let read_stream_time = read_streams(&store, plan, &mut problems)?;
    let read_all_time = read_all(&store, plan, &mut problems)?;
    store.close()?;

    if problems.count > 0 {
        for p in &problems.shown {
            eprintln!("annals: verification: {p}");
        }
        return Err(Failure::new(
            Code::Corrupt,
            format!(
                "verification failed: {} problems in what was read back",
                problems.count
            ),
        ));
    }
    Ok(Report {
        threads,
        appends: latencies_us.len() as u64,
        append_time,
        latencies_us,
        stats,
        reopen_time,
        read_stream_time,
        read_all_time,
        total_time: started.elapsed(),
    })
}

/// One thread's appends: streams `t`, `t + threads`, ... in rounds of one
/// batch per stream, so that streams interleave in the global log. Returns
/// the latency of each append in microseconds.
fn append_share(
    store: &Store,
    plan: Plan,
    batch: u64,
    t: u64,
    threads: u64,
    bar: &ProgressBar,
) -> Result<Vec<u64>, Failure> {
    let owned: Vec<u64> = (t..plan.streams).step_by(threads as usize).collect();
    let names: Vec<String> = owned.iter().map(|s| demo_data::stream_name(*s)).collect();
    let mut written = vec![0u64; owned.len()];
    let mut latencies_us = Vec::new();
    let mut events = Vec::with_capacity(batch as usize);
    let mut payload = Vec::new();
    loop {
        let mut progressed = false;
        for ((&s, name), done) in owned.iter().zip(&names).zip(written.iter_mut()) {
            let from = *done;
            let n = batch.min(plan.stream_len(s) - from);
            if n == 0 {
                continue;
            }
            events.clear();
            for v in from..from + n {
                demo_data::payload(s, v, &mut payload);
                events.push(EventData::new(demo_data::event_type(s, v), payload.clone()));
            }
            let expected = match from {
                0 => ExpectedVersion::NoStream,
                _ => ExpectedVersion::Exact(from - 1),
            };
            let t0 = Instant::now();
            let result = store.append(name, expected, &events)?;
            latencies_us.push(t0.elapsed().as_micros() as u64);
            if result.first_version() != from || result.len() as u64 != n {
                return Err(Failure::new(
                    Code::Corrupt,
                    format!(
                        "append to {name} at version {from} of {n} events returned versions \
                         from {} for {} events",
                        result.first_version(),
                        result.len()
                    ),
                ));
            }
            *done += n;
            bar.inc(n);
            progressed = true;
        }
        if !progressed {
            return Ok(latencies_us);
        }
    }
}

/// The nearest-rank percentile `p` (0 to 100) of sorted `values`.
fn percentile(sorted: &[u64], p: u64) -> u64 {
    let n = sorted.len() as u64;
    if n == 0 {
        return 0;
    }
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get((rank - 1) as usize).copied().unwrap_or(0)
}

fn print_report(
    out: &mut impl Write,
    dir: &Path,
    kept: &str,
    plan: Plan,
    batch: u64,
    r: &Report,
) -> std::io::Result<()> {
    let us = |v: u64| duration(Duration::from_micros(v));
    let mut t = Table::new(&[]);
    let mut row = |name: &str, value: String| t.row(vec![name.to_owned(), value]);
    row("store", format!("{} ({kept})", dir.display()));
    row(
        "events",
        format!(
            "{} in {} streams, every one verified by read_stream and by read_all",
            count(r.stats.events),
            count(r.stats.streams)
        ),
    );
    row(
        "bytes",
        format!(
            "{} committed ({} bytes)",
            bytes(r.stats.bytes_used),
            count(r.stats.bytes_used)
        ),
    );
    row(
        "segments",
        format!(
            "{} of {} holding events",
            r.stats.segments,
            bytes(r.stats.segment_size)
        ),
    );
    row(
        "append",
        format!(
            "{}: {} appends of up to {batch} events from {} threads in {}",
            rate(plan.events, r.append_time),
            count(r.appends),
            r.threads,
            duration(r.append_time)
        ),
    );
    row(
        "append latency",
        format!(
            "p50 {}, p99 {}, max {} (each append waits for its fdatasync)",
            us(percentile(&r.latencies_us, 50)),
            us(percentile(&r.latencies_us, 99)),
            us(r.latencies_us.last().copied().unwrap_or(0))
        ),
    );
    row(
        "reopen",
        format!(
            "{} (recovery: every segment checked, index rebuilt)",
            duration(r.reopen_time)
        ),
    );
    row(
        "read_stream",
        format!(
            "{}: 1 thread, pages of {}, {} in reads",
            rate(plan.events, r.read_stream_time),
            count(STREAM_PAGE as u64),
            duration(r.read_stream_time)
        ),
    );
    row(
        "read_all",
        format!(
            "{}: 1 thread, pages of {}, {} in reads",
            rate(plan.events, r.read_all_time),
            count(ALL_PAGE as u64),
            duration(r.read_all_time)
        ),
    );
    row("total", duration(r.total_time));
    t.write(out)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&v, 100), 100);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[], 50), 0);
    }
}
