//! Consistency beyond one stream (issue 16), in one run on one disk:
//!
//! - (a) `append_if` with a selective condition against a plain `append`
//!   of the same event, on a big store (10 M events by default): latency
//!   p50, the ratio of the two, interleaved operation by operation. Two
//!   conditions: by stream prefix (`SeatReserved`/`SeatReleased` of
//!   `seat-0042`, which has one event, long ago), checked through the
//!   stream table; and by event type alone (`SeatReleased`, which never
//!   occurs), checked through the per-segment type summaries. Both pass, with
//!   `after` 1,000 events back.
//! - (b) `append_multi` of 10 streams × 10 events against 10 separate
//!   appends of 10 events: events per second, and the ratio.
//!
//! The big store is built once under `target/multi-bench/annals-<N>` (or
//! `ANNALS_MULTI_DIR`) and reused; a marker file written after a complete
//! build tells a finished store from an interrupted one.
//! `ANNALS_MULTI_EVENTS` sets N (default 10,000,000).
//!
//! Criterion times each operation alone; the paired side measurement
//! interleaves them, and the table at the end is from it.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use annals::{AppendCondition, EventData, ExpectedVersion, Filter, Store, StreamAppend};
use criterion::Criterion;

use common::{EVENT_TYPE, events, fmt_duration, fresh_dir, mount_of, payload, remove_dir};

/// Streams of the big store's bulk.
const STREAMS: usize = 10_000;
/// Events per append while building.
const BUILD_BATCH: usize = 1_000;
/// Seat streams, each with one `SeatReserved` event near the start.
const SEATS: usize = 1_000;
/// Operations of each kind in the paired measurement.
const PAIRED_OPS: usize = 300;
/// How far back the conditions' `after` lies.
const AFTER_BACK: u64 = 1_000;

fn size() -> usize {
    std::env::var("ANNALS_MULTI_EVENTS")
        .ok()
        .and_then(|s| s.trim().replace('_', "").parse().ok())
        .unwrap_or(10_000_000)
}

fn root() -> PathBuf {
    let root = match std::env::var_os("ANNALS_MULTI_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/multi-bench"),
    };
    std::fs::create_dir_all(&root).expect("create the bench directory");
    let mount = mount_of(&root);
    assert!(
        !matches!(mount.fstype.as_str(), "tmpfs" | "ramfs"),
        "{} is on {}: fsync is free there; set ANNALS_MULTI_DIR to a real disk",
        root.display(),
        mount.fstype
    );
    println!(
        "multi bench: big store in {} ({} on {})",
        root.display(),
        mount.fstype,
        mount.source
    );
    root
}

/// The big store of `n` events, built unless a complete build is there.
fn big_store(n: usize) -> Store {
    let dir = root().join(format!("annals-{n}"));
    let marker = dir.with_extension("done");
    if !(marker.exists() && dir.exists()) {
        let _ = std::fs::remove_file(&marker);
        let _ = std::fs::remove_dir_all(&dir);
        build(&dir, n);
        let mut f = std::fs::File::create(&marker).expect("marker");
        f.write_all(b"done").expect("marker");
        f.sync_all().expect("marker");
    }
    Store::open(&dir).expect("open the big store")
}

fn build(dir: &Path, n: usize) {
    let started = Instant::now();
    let store = Store::open(dir).expect("create the big store");
    for s in 0..SEATS {
        store
            .append(
                &format!("seat-{s:04}"),
                ExpectedVersion::NoStream,
                &[EventData::new("SeatReserved", payload())],
            )
            .expect("build");
    }
    let batch = events(BUILD_BATCH);
    let names = common::stream_names(STREAMS);
    let rounds = n.saturating_sub(SEATS) / BUILD_BATCH;
    std::thread::scope(|scope| {
        for t in 0..2 {
            let (store, batch, names) = (&store, &batch, &names);
            scope.spawn(move || {
                for r in (t..rounds).step_by(2) {
                    store
                        .append(&names[r % STREAMS], ExpectedVersion::Any, batch)
                        .expect("build");
                }
            });
        }
    });
    println!(
        "  built {} events in {}",
        store.global_position(),
        fmt_duration(started.elapsed())
    );
    store.close().expect("close");
}

fn one() -> Vec<EventData> {
    vec![EventData::new(EVENT_TYPE, payload())]
}

fn by_prefix() -> Filter {
    Filter::event_types(["SeatReserved", "SeatReleased"]).and(Filter::stream_prefix("seat-0042"))
}

fn by_type() -> Filter {
    Filter::event_types(["SeatReleased"])
}

fn plain(store: &Store) {
    store
        .append("bench-plain", ExpectedVersion::Any, &one())
        .expect("append");
}

fn conditional(store: &Store, filter: &Filter) {
    let after = store.global_position().saturating_sub(AFTER_BACK);
    let cond = AppendCondition::new(filter.clone(), Some(after));
    store
        .append_if(&cond, "bench-if", &one())
        .expect("append_if passes");
}

fn multi_parts(names: &[String], batch: &[EventData]) -> Vec<StreamAppend> {
    names
        .iter()
        .map(|s| StreamAppend::new(s.clone(), ExpectedVersion::Any, batch.to_vec()))
        .collect()
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let n = size();
    let store = big_store(n);
    println!("big store: {} events", store.global_position());
    // Warm the condition paths once (sorted names; the active segment's
    // type summary), as a running application would have.
    conditional(&store, &by_prefix());
    conditional(&store, &by_type());

    let mut g = c.benchmark_group("a_append_if");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function("plain_append", |b| b.iter(|| plain(&store)));
    g.bench_function("append_if_prefix", |b| {
        b.iter(|| conditional(&store, &by_prefix()))
    });
    g.bench_function("append_if_type", |b| {
        b.iter(|| conditional(&store, &by_type()))
    });
    g.finish();

    let small_dir = fresh_dir("multi");
    let small = Store::open(&small_dir).expect("open");
    let names: Vec<String> = (0..10).map(|i| format!("multi-{i}")).collect();
    let ten = events(10);
    let mut g = c.benchmark_group("b_multi_10x10");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(8))
        .throughput(criterion::Throughput::Elements(100));
    g.bench_function("append_multi", |b| {
        b.iter(|| {
            small
                .append_multi(&multi_parts(&names, &ten))
                .expect("multi")
        })
    });
    g.bench_function("ten_appends", |b| {
        b.iter(|| {
            for s in &names {
                small.append(s, ExpectedVersion::Any, &ten).expect("append");
            }
        })
    });
    g.finish();
    c.final_summary();

    // Paired: each kind in turn, operation by operation.
    let (mut pl, mut pf, mut ty, mut mu, mut se) = (vec![], vec![], vec![], vec![], vec![]);
    let (filter_p, filter_t) = (by_prefix(), by_type());
    for _ in 0..PAIRED_OPS {
        let t = Instant::now();
        plain(&store);
        pl.push(t.elapsed());
        let t = Instant::now();
        conditional(&store, &filter_p);
        pf.push(t.elapsed());
        let t = Instant::now();
        conditional(&store, &filter_t);
        ty.push(t.elapsed());
    }
    for _ in 0..PAIRED_OPS / 3 {
        let parts = multi_parts(&names, &ten);
        let t = Instant::now();
        small.append_multi(&parts).expect("multi");
        mu.push(t.elapsed());
        let t = Instant::now();
        for s in &names {
            small.append(s, ExpectedVersion::Any, &ten).expect("append");
        }
        se.push(t.elapsed());
    }
    let (pl, pf, ty) = (p50(pl), p50(pf), p50(ty));
    let (mu, se) = (p50(mu), p50(se));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!();
    println!("paired, {PAIRED_OPS} operations each, on a {n}-event store:");
    println!("| what | p50 | vs plain append | target |");
    println!("| --- | ---: | ---: | --- |");
    println!(
        "| plain append (1 event) | {} | 1.00× | |",
        fmt_duration(pl)
    );
    println!(
        "| append_if, stream-prefix condition | {} | {:.2}× | ≤ 1.2× |",
        fmt_duration(pf),
        ratio(pf, pl)
    );
    println!(
        "| append_if, event-type condition | {} | {:.2}× | ≤ 1.2× |",
        fmt_duration(ty),
        ratio(ty, pl)
    );
    println!();
    println!(
        "| 100 events to 10 streams | p50 per call | events/s | ratio |\n| --- | ---: | ---: | ---: |\n| append_multi (1 call) | {} | {:.0} | {:.2}× |\n| 10 appends | {} | {:.0} | 1.00× |",
        fmt_duration(mu),
        100.0 / mu.as_secs_f64(),
        ratio(se, mu),
        fmt_duration(se),
        100.0 / se.as_secs_f64()
    );
    drop(small);
    remove_dir(&small_dir);
}
