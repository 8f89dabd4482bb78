//! Reads, annals against the `floor` (copies out of a memory map) and
//! `sqlite` (WAL, synchronous=FULL) baselines, in one run on one disk, over
//! the same 1,000,000 events: 10,000 streams of 100 events, 256 B each.
//!
//! - (c) `read_stream` of a whole stream chosen at random: events/s and
//!   per-call latency;
//! - (d) `read_all` scan in pages of 1,000: events/s and MB/s of payload;
//! - (e) reopen of the store: time to the first successful read (a
//!   `read_stream` of a random stream), with the files in the page cache.
//!
//! The stores are built once per run, before the first benchmark that needs
//! them. After criterion's runs of each workload a paired side measurement
//! interleaves the systems call by call (see [`common::paired`]), and
//! the run ends with two tables of figures, ratios and the targets:
//! the paired one, and criterion's.

mod common;

use std::cell::{OnceCell, RefCell};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use annals::{ExpectedVersion, Store};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use rusqlite::Connection;

use common::{
    EVENT_TYPE, FloorReader, Layout, PAYLOAD_LEN, Recorder, Rng, events, fmt_duration, fmt_rate,
    fresh_dir, paired, payload, pick, remove_dir, sqlite_open, sqlite_read_all, sqlite_read_stream,
    stream_names, verdict,
};

/// Streams in the preloaded stores.
const STREAMS: usize = 10_000;
/// Events per stream.
const PER_STREAM: usize = 100;
/// Events in the preloaded stores.
const EVENTS: usize = STREAMS * PER_STREAM;
/// Events per `read_all` page in (d).
const PAGE: usize = 1_000;
/// Rows per SQLite transaction while preloading.
const SQLITE_ROWS_PER_TX: usize = 10_000;
/// Threads appending to annals while preloading, so that group commit
/// shares the syncs.
const PRELOAD_THREADS: usize = 8;

const C: &str = "c_read_stream_100";
const D: &str = "d_read_all_page_1000";
const E: &str = "e_reopen_first_read";
/// The systems measured: annals' owned reads, the baselines, and annals'
/// borrowed reads (`read_stream_with`, `read_all_with`), whose closure
/// passes each event's payload to `black_box` and keeps nothing. The
/// reopen (e) measures the first three.
const SYSTEMS: [&str; 4] = ["annals", "floor", "sqlite", "annals_with"];

/// The systems the reopen (e) measures.
const REOPENED: [&str; 3] = ["annals", "floor", "sqlite"];

/// The three preloaded stores. The open handles live in `RefCell`s so that
/// (e) can close them before it reopens the files.
struct Fixture {
    names: Vec<String>,
    layout: Layout,
    annals_dir: PathBuf,
    floor_path: PathBuf,
    sqlite_path: PathBuf,
    annals: RefCell<Option<Store>>,
    floor: RefCell<Option<FloorReader>>,
    sqlite: RefCell<Option<Connection>>,
}

impl Fixture {
    fn build() -> Fixture {
        let names = stream_names(STREAMS);
        let layout = Layout::measure(&fresh_dir("read/layout"));

        let started = Instant::now();
        let annals_dir = fresh_dir("read/annals");
        let annals = Store::open(&annals_dir).expect("open annals");
        let batch = events(PER_STREAM);
        std::thread::scope(|s| {
            for t in 0..PRELOAD_THREADS {
                let (annals, names, batch) = (&annals, &names, &batch);
                s.spawn(move || {
                    for name in names.iter().skip(t).step_by(PRELOAD_THREADS) {
                        annals
                            .append(name, ExpectedVersion::NoStream, batch)
                            .expect("preload annals");
                    }
                });
            }
        });
        assert_eq!(annals.global_position(), EVENTS as u64);
        let stats = annals.stats();
        println!(
            "preload: annals, {EVENTS} events in {} ({} batches of {PER_STREAM} from \
             {PRELOAD_THREADS} threads; {} segments, {} MB)",
            fmt_duration(started.elapsed()),
            STREAMS,
            stats.segments,
            stats.bytes_used / 1_000_000
        );

        let started = Instant::now();
        let floor_path = fresh_dir("read/floor").join("log");
        FloorReader::create(&floor_path, layout, STREAMS, PER_STREAM);
        let floor = FloorReader::open(&floor_path, layout, STREAMS, PER_STREAM);
        println!(
            "preload: floor, {EVENTS} events in {}",
            fmt_duration(started.elapsed())
        );

        let started = Instant::now();
        let sqlite_path = fresh_dir("read/sqlite").join("events.db");
        let mut sqlite = sqlite_open(&sqlite_path);
        let data = payload();
        let streams_per_tx = SQLITE_ROWS_PER_TX / PER_STREAM;
        for chunk in names.chunks(streams_per_tx).enumerate() {
            let (c, chunk) = chunk;
            let tx = sqlite.transaction().expect("begin");
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO events (pos, stream, version, type, data) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .expect("prepare");
                for (s, name) in chunk.iter().enumerate() {
                    let first = ((c * streams_per_tx + s) * PER_STREAM) as i64;
                    for v in 0..PER_STREAM as i64 {
                        insert
                            .execute(rusqlite::params![first + v, name, v, EVENT_TYPE, data])
                            .expect("preload sqlite");
                    }
                }
            }
            tx.commit().expect("commit");
        }
        // Leave the database at rest, as annals is: everything in the main
        // file, an empty log.
        sqlite
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        println!(
            "preload: sqlite, {EVENTS} events in {} (transactions of {SQLITE_ROWS_PER_TX} rows)",
            fmt_duration(started.elapsed())
        );

        Fixture {
            names,
            layout,
            annals_dir,
            floor_path,
            sqlite_path,
            annals: RefCell::new(Some(annals)),
            floor: RefCell::new(Some(floor)),
            sqlite: RefCell::new(Some(sqlite)),
        }
    }

    /// `read_stream` of the whole stream `i` on `system`; returns the count.
    fn read_stream(&self, system: &str, i: usize) -> usize {
        let name = &self.names[i];
        match system {
            "annals" => {
                let store = self.annals.borrow();
                let store = store.as_ref().expect("annals is open");
                black_box(store.read_stream(name, 0, PER_STREAM).expect("read_stream")).len()
            }
            "annals_with" => {
                let store = self.annals.borrow();
                let store = store.as_ref().expect("annals is open");
                store
                    .read_stream_with(name, 0, PER_STREAM, |e| {
                        black_box(e.data);
                    })
                    .expect("read_stream_with")
            }
            "floor" => {
                let floor = self.floor.borrow();
                let floor = floor.as_ref().expect("floor is open");
                black_box(floor.read_stream(i)).len()
            }
            "sqlite" => {
                let conn = self.sqlite.borrow();
                let conn = conn.as_ref().expect("sqlite is open");
                black_box(sqlite_read_stream(conn, name, 0, PER_STREAM)).len()
            }
            _ => unreachable!("unknown system {system}"),
        }
    }

    /// `read_all` of one page from `from` on `system`; returns the count.
    fn read_page(&self, system: &str, from: usize) -> usize {
        match system {
            "annals" => {
                let store = self.annals.borrow();
                let store = store.as_ref().expect("annals is open");
                black_box(store.read_all(from as u64, PAGE).expect("read_all")).len()
            }
            "annals_with" => {
                let store = self.annals.borrow();
                let store = store.as_ref().expect("annals is open");
                store
                    .read_all_with(from as u64, PAGE, |e| {
                        black_box(e.data);
                    })
                    .expect("read_all_with")
            }
            "floor" => {
                let floor = self.floor.borrow();
                let floor = floor.as_ref().expect("floor is open");
                black_box(floor.read_all(from, PAGE)).len()
            }
            "sqlite" => {
                let conn = self.sqlite.borrow();
                let conn = conn.as_ref().expect("sqlite is open");
                black_box(sqlite_read_all(conn, from as u64, PAGE)).len()
            }
            _ => unreachable!("unknown system {system}"),
        }
    }

    /// Closes the open handles, for (e).
    fn close(&self) {
        if let Some(store) = self.annals.borrow_mut().take() {
            store.close().expect("close annals");
        }
        self.floor.borrow_mut().take();
        self.sqlite.borrow_mut().take();
    }

    /// Opens `system` from its files and reads stream `i` whole; returns
    /// the handle, to be dropped outside the timed part.
    fn reopen(&self, system: &str, i: usize) -> Box<dyn std::any::Any> {
        let name = &self.names[i];
        match system {
            "annals" => {
                let store = Store::open(&self.annals_dir).expect("reopen annals");
                let events = store.read_stream(name, 0, PER_STREAM).expect("first read");
                assert_eq!(events.len(), PER_STREAM);
                Box::new((store, events))
            }
            "floor" => {
                let floor = FloorReader::open(&self.floor_path, self.layout, STREAMS, PER_STREAM);
                let events = floor.read_stream(i);
                assert_eq!(events.len(), PER_STREAM);
                Box::new((floor, events))
            }
            "sqlite" => {
                let conn = sqlite_open(&self.sqlite_path);
                let events = sqlite_read_stream(&conn, name, 0, PER_STREAM);
                assert_eq!(events.len(), PER_STREAM);
                Box::new((events, conn))
            }
            _ => unreachable!("unknown system {system}"),
        }
    }
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize, measure_s: u64) {
    group
        .sample_size(samples)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(measure_s));
}

/// Keeps each system's times of a paired side measurement of `workload`.
fn record_paired(rec: &Recorder, workload: &str, times: Vec<Vec<Duration>>) {
    for (s, times) in times.into_iter().enumerate() {
        rec.record_paired(&format!("{workload}/{}", SYSTEMS[s]), times);
    }
}

/// (c): whole streams, chosen at random.
fn bench_c(c: &mut Criterion, fx: &OnceCell<Fixture>, rec: &Recorder) {
    let samples = 20;
    let mut group = c.benchmark_group(C);
    configure(&mut group, samples, 4);
    group.throughput(Throughput::Elements(PER_STREAM as u64));
    for system in SYSTEMS {
        let key = format!("{C}/{system}");
        rec.expect(&key, samples);
        let mut rng = Rng::new(common::seed() ^ 0xC);
        group.bench_function(system, |b| {
            let fx = fx.get_or_init(Fixture::build);
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    let n = fx.read_stream(system, rng.below(STREAMS));
                    assert_eq!(n, PER_STREAM);
                }
                let elapsed = t.elapsed();
                rec.record(&key, iters, elapsed);
                elapsed
            })
        });
    }
    group.finish();

    if !rec.should_pair(C, &SYSTEMS) {
        return;
    }

    let fx = fx.get_or_init(Fixture::build);
    let seed = common::seed() ^ 0xC0;
    let times = paired(
        SYSTEMS.len(),
        Duration::from_secs(4),
        1_000,
        200_000,
        |round, s| {
            let i = pick(seed, round, STREAMS);
            let t = Instant::now();
            let n = fx.read_stream(SYSTEMS[s], i);
            let elapsed = t.elapsed();
            assert_eq!(n, PER_STREAM);
            elapsed
        },
    );
    record_paired(rec, C, times);
}

/// (d): the whole log in pages of 1,000, wrapping to the start at the end.
fn bench_d(c: &mut Criterion, fx: &OnceCell<Fixture>, rec: &Recorder) {
    let samples = 20;
    let mut group = c.benchmark_group(D);
    configure(&mut group, samples, 4);
    group.throughput(Throughput::Elements(PAGE as u64));
    for system in SYSTEMS {
        let key = format!("{D}/{system}");
        rec.expect(&key, samples);
        let mut from = 0usize;
        group.bench_function(system, |b| {
            let fx = fx.get_or_init(Fixture::build);
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    let n = fx.read_page(system, from);
                    assert_eq!(n, PAGE);
                    from = (from + PAGE) % EVENTS;
                }
                let elapsed = t.elapsed();
                rec.record(&key, iters, elapsed);
                elapsed
            })
        });
    }
    group.finish();

    if !rec.should_pair(D, &SYSTEMS) {
        return;
    }

    // Each system scans the log from the start, page by page, in step.
    let fx = fx.get_or_init(Fixture::build);
    let times = paired(
        SYSTEMS.len(),
        Duration::from_secs(4),
        100,
        EVENTS / PAGE,
        |round, s| {
            let t = Instant::now();
            let n = fx.read_page(SYSTEMS[s], round * PAGE);
            let elapsed = t.elapsed();
            assert_eq!(n, PAGE);
            elapsed
        },
    );
    record_paired(rec, D, times);
}

/// (e): open the store from its files and read one stream.
fn bench_e(c: &mut Criterion, fx: &OnceCell<Fixture>, rec: &Recorder) {
    let samples = 10;
    let mut group = c.benchmark_group(E);
    configure(&mut group, samples, 3);
    group.sampling_mode(SamplingMode::Flat);
    for system in REOPENED {
        let key = format!("{E}/{system}");
        rec.expect(&key, samples);
        let mut rng = Rng::new(common::seed() ^ 0xE);
        group.bench_function(system, |b| {
            let fx = fx.get_or_init(Fixture::build);
            fx.close();
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let i = rng.below(STREAMS);
                    let t = Instant::now();
                    let open = fx.reopen(system, i);
                    elapsed += t.elapsed();
                    drop(open);
                }
                rec.record(&key, iters, elapsed);
                elapsed
            })
        });
    }
    group.finish();

    if !rec.should_pair(E, &REOPENED) {
        return;
    }

    let fx = fx.get_or_init(Fixture::build);
    fx.close();
    let seed = common::seed() ^ 0xE0;
    let times = paired(REOPENED.len(), Duration::from_secs(5), 5, 30, |round, s| {
        let i = pick(seed, round, STREAMS);
        let t = Instant::now();
        let open = fx.reopen(REOPENED[s], i);
        let elapsed = t.elapsed();
        drop(open);
        elapsed
    });
    record_paired(rec, E, times);
}

/// One row of the summary: a figure for each system, how annals compares
/// with each baseline, and the target's verdict.
fn row(label: &str, figures: [String; 3], ratios: [String; 2], target: &str) {
    let [a, f, s] = figures;
    let [af, sf] = ratios;
    println!("| {label} | {a} | {f} | {s} | {af} | {sf} | {target} |");
}

/// The summary table of one kind of measurement: `paired` (interleaved,
/// the one to judge by) or criterion's medians.
fn table(rec: &Recorder, paired: bool) {
    let med = |w: &str, s: &str| {
        let key = format!("{w}/{s}");
        if paired {
            rec.paired_median(&key)
        } else {
            rec.median(&key)
        }
    };
    let all = |w: &str| -> Option<[Duration; 3]> {
        Some([
            med(w, SYSTEMS[0])?,
            med(w, SYSTEMS[1])?,
            med(w, SYSTEMS[2])?,
        ])
    };
    let faster = |base: Duration, a: Duration| base.as_secs_f64() / a.as_secs_f64();
    let x = |v: f64| format!("{v:.2}×");
    let slower = |a: Duration, base: Duration| {
        format!("{}× slower", fmt_rate(a.as_secs_f64() / base.as_secs_f64()))
    };

    println!(
        "| workload | annals | floor | sqlite | annals speed vs floor | annals speed vs sqlite | target |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    if let Some([a, f, s]) = all(C) {
        let (vf, vs) = (faster(f, a), faster(s, a));
        row(
            "(c) read_stream of 100 events, latency per call",
            [fmt_duration(a), fmt_duration(f), fmt_duration(s)],
            [x(vf), x(vs)],
            "—",
        );
        let rate = |d: Duration| fmt_rate(PER_STREAM as f64 / d.as_secs_f64());
        if let Some(w) = med(C, SYSTEMS[3]) {
            row(
                "(c) read_stream_with (borrowed), latency per call",
                [fmt_duration(w), fmt_duration(f), fmt_duration(s)],
                [x(faster(f, w)), x(faster(s, w))],
                &format!(
                    "≥ 10× sqlite: **{}**; faster than floor: **{}**",
                    verdict(faster(s, w) >= 10.0),
                    verdict(faster(f, w) > 1.0)
                ),
            );
        }
        row(
            "(c) read_stream, events/s",
            [rate(a), rate(f), rate(s)],
            [x(vf), x(vs)],
            &format!(
                "≥ 10× sqlite: **{}**; faster than floor: **{}**",
                verdict(vs >= 10.0),
                verdict(vf > 1.0)
            ),
        );
    }
    if let Some([a, f, s]) = all(D) {
        let (vf, vs) = (faster(f, a), faster(s, a));
        let rate = |d: Duration| fmt_rate(PAGE as f64 / d.as_secs_f64());
        let mbps =
            |d: Duration| format!("{:.0}", (PAGE * PAYLOAD_LEN) as f64 / d.as_secs_f64() / 1e6);
        row(
            "(d) read_all in pages of 1,000, events/s",
            [rate(a), rate(f), rate(s)],
            [x(vf), x(vs)],
            &format!(
                "≥ 8× sqlite: **{}**; faster than floor: **{}**",
                verdict(vs >= 8.0),
                verdict(vf > 1.0)
            ),
        );
        if let Some(w) = med(D, SYSTEMS[3]) {
            row(
                "(d) read_all_with (borrowed), events/s",
                [rate(w), rate(f), rate(s)],
                [x(faster(f, w)), x(faster(s, w))],
                &format!(
                    "≥ 8× sqlite: **{}**; faster than floor: **{}**",
                    verdict(faster(s, w) >= 8.0),
                    verdict(faster(f, w) > 1.0)
                ),
            );
            row(
                "(d) read_all_with (borrowed), latency per page",
                [fmt_duration(w), fmt_duration(f), fmt_duration(s)],
                [x(faster(f, w)), x(faster(s, w))],
                "—",
            );
        }
        row(
            "(d) read_all, MB/s of payload",
            [mbps(a), mbps(f), mbps(s)],
            [x(vf), x(vs)],
            "—",
        );
        row(
            "(d) read_all, latency per page",
            [fmt_duration(a), fmt_duration(f), fmt_duration(s)],
            [x(vf), x(vs)],
            "—",
        );
    }
    if let Some([a, f, s]) = all(E) {
        row(
            "(e) reopen 1 M events, time to first read",
            [fmt_duration(a), fmt_duration(f), fmt_duration(s)],
            [slower(a, f), slower(a, s)],
            &format!("≤ 0.1 s: **{}**", verdict(a.as_secs_f64() <= 0.1)),
        );
    }
    println!();
}

fn summary(rec: &Recorder) {
    if !common::measuring() {
        return;
    }
    println!();
    println!("== annals read benchmarks: summary");
    println!();
    println!(
        "Paired side measurement: the systems interleaved call by call, medians of \
         every call. Judge the targets by this table. The annals column is the owned \
         read; the borrowed rows put read_stream_with and read_all_with in it."
    );
    println!();
    table(rec, true);
    println!(
        "Criterion's runs: each system in its own time window; medians of criterion's samples."
    );
    println!();
    table(rec, false);
}

fn main() {
    let seed = common::seed();
    common::print_setup(seed);
    let mut c = Criterion::default().configure_from_args();
    let rec = Recorder::default();
    let fixture = OnceCell::new();
    bench_c(&mut c, &fixture, &rec);
    bench_d(&mut c, &fixture, &rec);
    bench_e(&mut c, &fixture, &rec);
    c.final_summary();
    summary(&rec);
    drop(fixture);
    remove_dir(&common::bench_root().join("read"));
}
