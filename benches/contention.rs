//! Readers and the writer side by side (issue 18): does either ever wait
//! for the other? Three systems on one disk, in one run: annals, the
//! `floor` (pwrite + fdatasync; reads copy records out of a map) and
//! `sqlite` (WAL, synchronous=FULL), each over 1,000 streams of 100 events
//! of 256 B.
//!
//! - `publish`: annals' publish step, from its `fdatasync` returning to
//!   `append` returning, for single-event appends, with no reader and with
//!   two readers flat out (each alternating a 100-event `read_stream` and a
//!   1,000-event `read_all` page). Timed through the file-I/O seam: a
//!   wrapper around the real I/O notes when the appending thread's sync
//!   returned.
//! - `append_2_readers`: single-event appends per second for each system
//!   while two of its own readers read 100-event streams flat out.
//! - `read_stream_1_writer`: the latency of a 100-event `read_stream` of a
//!   random stream, with no writer and with one thread appending single
//!   events flat out; and the floor's read of a stream's records, with no
//!   writer and with its own writer appending flat out, as the machine's
//!   share of that ratio.
//!
//! The run ends with a table of medians, p99s, ratios and the issue's
//! targets. The data lives under `ANNALS_BENCH_DIR` (never tmpfs).

mod common;

use std::cell::Cell;
use std::fs::File;
use std::hint::black_box;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use annals::io::{FileIo, RealIo};
use annals::{ExpectedVersion, Options, Store};
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};

use common::{
    Floor, FloorReader, Layout, Recorder, Rng, events, fmt_duration, fmt_rate, fresh_dir, payload,
    remove_dir, sqlite_append, sqlite_open, sqlite_read_stream, stream_names, verdict,
};

const STREAMS: usize = 1_000;
const PER_STREAM: usize = 100;
const PAGE: usize = 1_000;
const READERS: usize = 2;
const SYSTEMS: [&str; 3] = ["annals", "floor", "sqlite"];
const SAMPLES: usize = 10;

thread_local! {
    /// When the last `fdatasync` this thread made through [`TimedIo`]
    /// returned.
    static SYNC_RETURNED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The real file I/O, noting when each sync returns on the calling thread.
#[derive(Debug)]
struct TimedIo;

impl FileIo for TimedIo {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        RealIo.create_new(path)
    }
    fn write_at(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        RealIo.write_at(file, path, buf, offset)
    }
    fn sync_data(&self, file: &File, path: &Path) -> io::Result<()> {
        let result = RealIo.sync_data(file, path);
        SYNC_RETURNED.with(|t| t.set(Some(Instant::now())));
        result
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealIo.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealIo.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        RealIo.sync_dir(dir)
    }
}

/// The three stores, preloaded with the same events.
struct Fixture {
    dir: PathBuf,
    names: Vec<String>,
    layout: Layout,
    annals: Store,
    floor: Floor,
    floor_reader: FloorReader,
    sqlite_path: PathBuf,
}

impl Fixture {
    fn build() -> Fixture {
        let dir = fresh_dir("contention");
        let names = stream_names(STREAMS);
        let layout = Layout::measure(&dir.join("layout"));
        let options = Options::default().file_io(Arc::new(TimedIo));
        let annals = Store::open_with(dir.join("annals"), options).expect("open annals");
        for name in &names {
            annals
                .append(name, ExpectedVersion::NoStream, &events(PER_STREAM))
                .expect("preload annals");
        }
        let floor_path = dir.join("floor-read");
        FloorReader::create(&floor_path, layout, STREAMS, PER_STREAM);
        let floor_reader = FloorReader::open(&floor_path, layout, STREAMS, PER_STREAM);
        let floor = Floor::create(&dir.join("floor-append"), 64 << 20);
        let sqlite_path = dir.join("sqlite.db");
        let mut conn = sqlite_open(&sqlite_path);
        for name in &names {
            assert!(sqlite_append(&mut conn, name, None, PER_STREAM, &payload()));
        }
        println!(
            "preloaded {} events in {STREAMS} streams into each system",
            STREAMS * PER_STREAM
        );
        Fixture {
            dir,
            names,
            layout,
            annals,
            floor,
            floor_reader,
            sqlite_path,
        }
    }

    /// One read of `system` as its readers do it: a whole random stream
    /// (and, for annals' publish bench, a page of the log every other
    /// time).
    fn read(&self, system: &str, rng: &mut Rng, conn: Option<&rusqlite::Connection>, pages: bool) {
        let i = rng.below(STREAMS);
        match system {
            "annals" if pages && rng.below(2) == 0 => {
                let from = rng.below(STREAMS * PER_STREAM - PAGE) as u64;
                black_box(self.annals.read_all(from, PAGE).expect("read_all"));
            }
            "annals" => {
                let events = self.annals.read_stream(&self.names[i], 0, PER_STREAM);
                assert_eq!(events.expect("read_stream").len(), PER_STREAM);
            }
            "floor" => {
                black_box(self.floor_reader.read_stream(i));
            }
            "sqlite" => {
                let conn = conn.expect("a reader connection");
                black_box(sqlite_read_stream(conn, &self.names[i], 0, PER_STREAM));
            }
            _ => unreachable!("unknown system {system}"),
        }
    }

    /// Runs `body` while `readers` threads read `system` flat out.
    fn with_readers<T>(
        &self,
        system: &str,
        readers: usize,
        pages: bool,
        body: impl FnOnce() -> T,
    ) -> T {
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for r in 0..readers {
                let stop = &stop;
                scope.spawn(move || {
                    let conn = (system == "sqlite").then(|| sqlite_open(&self.sqlite_path));
                    let mut rng = Rng::new(common::seed() ^ r as u64);
                    while !stop.load(Ordering::Relaxed) {
                        self.read(system, &mut rng, conn.as_ref(), pages);
                    }
                });
            }
            let out = body();
            stop.store(true, Ordering::Relaxed);
            out
        })
    }
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// `publish`: annals alone, with and without readers.
fn bench_publish(c: &mut Criterion, fx: &Fixture, rec: &Recorder) {
    let mut group = c.benchmark_group("publish");
    configure(&mut group);
    for (label, readers) in [("quiet", 0), ("2_readers", READERS)] {
        let key = format!("publish/{label}");
        rec.expect(&key, SAMPLES);
        let one = events(1);
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                fx.with_readers("annals", readers, true, || {
                    let mut publish = Vec::with_capacity(iters as usize);
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        fx.annals
                            .append("writer", ExpectedVersion::Any, &one)
                            .expect("append");
                        let returned = Instant::now();
                        total += returned - t;
                        let synced = SYNC_RETURNED.with(Cell::get).expect("a sync was timed");
                        publish.push(returned.saturating_duration_since(synced));
                    }
                    rec.record_ops(&key, publish);
                    total
                })
            })
        });
    }
    group.finish();
}

/// `append_2_readers`: each system's single-event appends under its own
/// read load.
fn bench_append(c: &mut Criterion, fx: &Fixture, rec: &Recorder) {
    let mut group = c.benchmark_group("append_2_readers");
    configure(&mut group);
    let one = events(1);
    let floor_bytes = fx.layout.commit_bytes(1);
    let mut conn = sqlite_open(&fx.sqlite_path);
    let mut sqlite_version: Option<u64> = None;
    for system in SYSTEMS {
        let key = format!("append_2_readers/{system}");
        rec.expect(&key, SAMPLES);
        group.bench_function(system, |b| {
            b.iter_custom(|iters| {
                fx.with_readers(system, READERS, false, || {
                    let mut ops = Vec::with_capacity(iters as usize);
                    for _ in 0..iters {
                        let t = Instant::now();
                        match system {
                            "annals" => {
                                fx.annals
                                    .append("writer", ExpectedVersion::Any, &one)
                                    .expect("append");
                            }
                            "floor" => fx.floor.append(&floor_bytes),
                            _ => {
                                assert!(sqlite_append(
                                    &mut conn,
                                    "writer",
                                    sqlite_version,
                                    1,
                                    &payload()
                                ));
                                sqlite_version = Some(sqlite_version.map_or(0, |v| v + 1));
                            }
                        }
                        ops.push(t.elapsed());
                    }
                    rec.record_ops(&key, ops)
                })
            })
        });
    }
    group.finish();
}

/// `read_stream_1_writer`: annals' stream reads with and without a writer,
/// and the floor's beside them (its reads of a map while its own writer
/// appends and syncs flat out): how much of a reader's tail under a
/// writer is the machine's (the writer's thread, its sync's kernel work,
/// two cores), not annals'.
fn bench_read(c: &mut Criterion, fx: &Fixture, rec: &Recorder) {
    let mut group = c.benchmark_group("read_stream_1_writer");
    configure(&mut group);
    let floor_bytes = fx.layout.commit_bytes(1);
    let cases = [
        ("quiet", "annals", false),
        ("1_writer", "annals", true),
        ("floor_quiet", "floor", false),
        ("floor_1_writer", "floor", true),
    ];
    for (label, system, writing) in cases {
        let key = format!("read_stream_1_writer/{label}");
        rec.expect(&key, SAMPLES);
        let mut rng = Rng::new(common::seed() ^ 0x18);
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let stop = AtomicBool::new(false);
                std::thread::scope(|scope| {
                    if writing {
                        scope.spawn(|| {
                            let one = events(1);
                            while !stop.load(Ordering::Relaxed) {
                                if system == "annals" {
                                    fx.annals
                                        .append("writer", ExpectedVersion::Any, &one)
                                        .expect("append");
                                } else {
                                    fx.floor.append(&floor_bytes);
                                }
                            }
                        });
                    }
                    let mut ops = Vec::with_capacity(iters as usize);
                    for _ in 0..iters {
                        let t = Instant::now();
                        fx.read(system, &mut rng, None, false);
                        ops.push(t.elapsed());
                    }
                    stop.store(true, Ordering::Relaxed);
                    rec.record_ops(&key, ops)
                })
            })
        });
    }
    group.finish();
}

/// The table of figures, ratios and targets.
fn summary(rec: &Recorder) {
    let p = |key: &str, q: f64| rec.percentile(key, q).map(|(d, _)| d);
    let show = |d: Option<Duration>| d.map_or("-".to_owned(), fmt_duration);
    let ratio = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => Some(a.as_secs_f64() / b.as_secs_f64()),
        _ => None,
    };
    let fmt_ratio = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.2}×"));
    println!("\n== issue 18: readers and the writer");

    let (pq, pl) = (p("publish/quiet", 99.0), p("publish/2_readers", 99.0));
    println!(
        "publish step (fsync returned → append returned): no readers p50 {} p99 {}; \
         2 readers p50 {} p99 {} ({} of quiet) — target p99 ≤ 20 µs with readers: {}",
        show(p("publish/quiet", 50.0)),
        show(pq),
        show(p("publish/2_readers", 50.0)),
        show(pl),
        fmt_ratio(ratio(pl, pq)),
        verdict(pl.is_some_and(|d| d <= Duration::from_micros(20)))
    );

    let rate = |system: &str| {
        rec.median(&format!("append_2_readers/{system}"))
            .map(|d| 1.0 / d.as_secs_f64())
    };
    let (a, f, s) = (rate("annals"), rate("floor"), rate("sqlite"));
    let show_rate = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{}/s", fmt_rate(r)));
    let vs = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| x / y);
    println!(
        "appends with 2 readers flat out (median of samples): annals {}, floor {}, sqlite {}; \
         annals/floor {} (target ≥ 0.9: {}), annals/sqlite {} (target ≥ 1: {})",
        show_rate(a),
        show_rate(f),
        show_rate(s),
        fmt_ratio(vs(a, f)),
        verdict(vs(a, f).is_some_and(|r| r >= 0.9)),
        fmt_ratio(vs(a, s)),
        verdict(vs(a, s).is_some_and(|r| r >= 1.0)),
    );

    println!(
        "append latency with 2 readers flat out, p50 / p99: annals {} / {}, floor {} / {}, sqlite {} / {}",
        show(p("append_2_readers/annals", 50.0)),
        show(p("append_2_readers/annals", 99.0)),
        show(p("append_2_readers/floor", 50.0)),
        show(p("append_2_readers/floor", 99.0)),
        show(p("append_2_readers/sqlite", 50.0)),
        show(p("append_2_readers/sqlite", 99.0)),
    );

    let (rq, rw) = (
        p("read_stream_1_writer/quiet", 99.0),
        p("read_stream_1_writer/1_writer", 99.0),
    );
    println!(
        "read_stream of 100 events: no writer p50 {} p99 {}; 1 writer p50 {} p99 {}; \
         p99 ratio {} (target ≤ 1.5: {})",
        show(p("read_stream_1_writer/quiet", 50.0)),
        show(rq),
        show(p("read_stream_1_writer/1_writer", 50.0)),
        show(rw),
        fmt_ratio(ratio(rw, rq)),
        verdict(ratio(rw, rq).is_some_and(|r| r <= 1.5))
    );
    let (fq, fw) = (
        p("read_stream_1_writer/floor_quiet", 99.0),
        p("read_stream_1_writer/floor_1_writer", 99.0),
    );
    println!(
        "the floor's read of 100 records beside it: no writer p50 {} p99 {}; its own writer \
         p50 {} p99 {}; p99 ratio {} (the machine's share of the ratio above)",
        show(p("read_stream_1_writer/floor_quiet", 50.0)),
        show(fq),
        show(p("read_stream_1_writer/floor_1_writer", 50.0)),
        show(fw),
        fmt_ratio(ratio(fw, fq)),
    );
}

fn main() {
    common::print_setup(common::seed());
    let mut c = Criterion::default().configure_from_args();
    let rec = Recorder::default();
    let fx = Fixture::build();
    bench_publish(&mut c, &fx, &rec);
    bench_append(&mut c, &fx, &rec);
    bench_read(&mut c, &fx, &rec);
    c.final_summary();
    if common::measuring() {
        summary(&rec);
    }
    let dir = fx.dir.clone();
    drop(fx);
    remove_dir(&dir);
}
