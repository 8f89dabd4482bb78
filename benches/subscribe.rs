//! Subscriptions (issue 10), each beside what a user would do instead, in
//! one run on one disk:
//!
//! - (f) live wake-up: the time from `append` returning to a subscriber in
//!   the same process (a thread blocked in `Subscription::next`) having the
//!   event, p50 and p99; beside it, a subscriber that polls `read_all`
//!   every millisecond. Target: p50 ≤ 50 µs.
//! - (g) catch-up: `subscribe_all(Start)` over 1,000,000 events (256 B
//!   each) until `CaughtUp`, in events/s, against `read_all` paging through
//!   the same log 1,000 at a time. Target: ≥ 0.9× `read_all`.
//!
//! After criterion's runs of (g), a paired side measurement interleaves the
//! two ways round by round (see [`common::paired`]); the run ends with a
//! table of medians, ratios and the targets.

mod common;

use std::cell::OnceCell;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store, SubscribeFrom, SubscriptionItem};
use criterion::{Criterion, SamplingMode, Throughput};

use common::{Recorder, events, fmt_duration, fmt_rate, fresh_dir, paired, remove_dir, verdict};

/// Events in the catch-up store.
const EVENTS: u64 = 1_000_000;
/// Events per preload append, and per `read_all` page.
const PAGE: usize = 1_000;
/// How often the polling subscriber of (f) looks.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

const F_SUB: &str = "f_live_wakeup/subscription";
const F_POLL: &str = "f_live_wakeup/poll_read_all_1ms";
const G_SUB: &str = "g_catch_up_1m/subscribe_all";
const G_READ: &str = "g_catch_up_1m/read_all_pages";

/// The preloaded store of (g).
struct Fixture {
    dir: PathBuf,
    store: Store,
}

impl Fixture {
    fn build() -> Fixture {
        let started = Instant::now();
        let dir = fresh_dir("subscribe/catch_up");
        let store = Store::open(&dir).expect("open annals");
        let batch = events(PAGE);
        for i in 0..EVENTS as usize / PAGE {
            store
                .append(
                    &format!("stream-{}", i % 1_000),
                    ExpectedVersion::Any,
                    &batch,
                )
                .expect("preload");
        }
        assert_eq!(store.global_position(), EVENTS);
        println!(
            "preload: {EVENTS} events in {} ({} segments)",
            fmt_duration(started.elapsed()),
            store.stats().segments
        );
        Fixture { dir, store }
    }

    /// A subscription from the start until `CaughtUp`; returns the count.
    fn catch_up(&self) -> u64 {
        let mut sub = self
            .store
            .subscribe_all(SubscribeFrom::Start, None)
            .expect("subscribe");
        let mut n = 0;
        loop {
            match sub.next().expect("open").expect("item") {
                SubscriptionItem::Event(e) => {
                    black_box(&e);
                    n += 1;
                }
                SubscriptionItem::CaughtUp { .. } => return n,
                SubscriptionItem::Checkpoint { .. } => {}
            }
        }
    }

    /// `read_all` from 0 to the end, a page at a time; returns the count.
    fn read_pages(&self) -> u64 {
        let mut from = 0;
        loop {
            let page = self.store.read_all(from, PAGE).expect("read_all");
            let Some(last) = page.last() else {
                return from;
            };
            from = last.position + 1;
            black_box(&page);
        }
    }
}

/// A subscriber thread that sends the time it got each event; for the
/// polling kind, it looks every [`POLL_INTERVAL`] instead of waiting.
fn subscriber(
    store: &Arc<Store>,
    poll: bool,
) -> (mpsc::Receiver<Instant>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let store = Arc::clone(store);
    // Both start at the end now, before the bench's first append.
    let mut next = store.global_position();
    let sub = (!poll).then(|| {
        store
            .subscribe_all(SubscribeFrom::End, None)
            .expect("subscribe")
    });
    // Each ends when the bench drops the receiver (at the next event).
    let handle = std::thread::spawn(move || match sub {
        Some(sub) => {
            for item in sub {
                if let SubscriptionItem::Event(_) = item.expect("item")
                    && tx.send(Instant::now()).is_err()
                {
                    return;
                }
            }
        }
        None => loop {
            let page = store.read_all(next, PAGE).expect("read_all");
            if page.is_empty() {
                std::thread::sleep(POLL_INTERVAL);
                continue;
            }
            let now = Instant::now();
            next += page.len() as u64;
            if tx.send(now).is_err() {
                return;
            }
        },
    });
    (rx, handle)
}

fn bench_f(c: &mut Criterion, rec: &Recorder) {
    let dir = fresh_dir("subscribe/live");
    let store = Arc::new(Store::open(&dir).expect("open"));
    let event = [EventData::new("Live", vec![0u8; 256])];
    let mut group = c.benchmark_group("f_live_wakeup");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (key, poll) in [(F_SUB, false), (F_POLL, true)] {
        let name = key.rsplit('/').next().unwrap_or(key);
        rec.expect(key, 10);
        let (received, handle) = subscriber(&store, poll);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut ops = Vec::with_capacity(iters as usize);
                for _ in 0..iters {
                    store
                        .append("live", ExpectedVersion::Any, &event)
                        .expect("append");
                    let returned = Instant::now();
                    let got = received.recv().expect("subscriber");
                    // The subscriber may have the event before `append`
                    // has returned: that counts as no wait at all.
                    ops.push(got.saturating_duration_since(returned));
                }
                rec.record_ops(key, ops)
            })
        });
        // One more event, which the subscriber cannot send: it stops, and
        // does not run beside the benchmarks after this one.
        drop(received);
        store
            .append("live", ExpectedVersion::Any, &event)
            .expect("append");
        handle.join().expect("subscriber thread");
    }
    group.finish();
    drop(store);
    remove_dir(&dir);
}

fn bench_g(c: &mut Criterion, fixture: &OnceCell<Fixture>, rec: &Recorder) {
    let f = fixture.get_or_init(Fixture::build);
    let mut group = c.benchmark_group("g_catch_up_1m");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(EVENTS));
    for (key, sub) in [(G_SUB, true), (G_READ, false)] {
        let name = key.rsplit('/').next().unwrap_or(key);
        rec.expect(key, 10);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    let n = if sub { f.catch_up() } else { f.read_pages() };
                    assert_eq!(n, EVENTS);
                }
                let elapsed = started.elapsed();
                rec.record(key, iters, elapsed);
                elapsed
            })
        });
    }
    group.finish();
    if rec.should_pair("g_catch_up_1m", &["subscribe_all", "read_all_pages"]) {
        let times = paired(2, Duration::from_secs(30), 6, 40, |_, s| {
            let started = Instant::now();
            let n = if s == 0 { f.catch_up() } else { f.read_pages() };
            assert_eq!(n, EVENTS);
            started.elapsed()
        });
        rec.record_paired(G_SUB, times[0].clone());
        rec.record_paired(G_READ, times[1].clone());
    }
}

fn summary(rec: &Recorder) {
    if !common::measuring() {
        return;
    }
    let mount = common::mount_of(&common::bench_root());
    println!();
    println!(
        "== annals subscription benchmarks: summary (data on {} {})",
        mount.fstype, mount.source
    );
    println!();
    println!(
        "| live wake-up, append returned → subscriber has it | p50 | p99 | samples | target |"
    );
    println!("| --- | ---: | ---: | ---: | --- |");
    for key in [F_SUB, F_POLL] {
        let (Some((p50, n)), Some((p99, _))) =
            (rec.percentile(key, 50.0), rec.percentile(key, 99.0))
        else {
            continue;
        };
        let target = if key == F_SUB {
            format!("p50 ≤ 50 µs: {}", verdict(p50 <= Duration::from_micros(50)))
        } else {
            "(what polling costs)".to_owned()
        };
        println!(
            "| {key} | {} | {} | {n} | {target} |",
            fmt_duration(p50),
            fmt_duration(p99)
        );
    }
    println!();
    println!("| catch-up over {EVENTS} events | median | events/s | ratio to read_all | target |");
    println!("| --- | ---: | ---: | ---: | --- |");
    for (label, paired) in [("paired", true), ("criterion", false)] {
        let med = |key: &str| {
            if paired {
                rec.paired_median(key)
            } else {
                rec.median(key)
            }
        };
        let (Some(sub), Some(read)) = (med(G_SUB), med(G_READ)) else {
            continue;
        };
        let rate = |d: Duration| fmt_rate(EVENTS as f64 / d.as_secs_f64());
        let ratio = read.as_secs_f64() / sub.as_secs_f64();
        println!(
            "| subscribe_all ({label}) | {} | {} | {ratio:.2}× | ≥ 0.9×: {} |",
            fmt_duration(sub),
            rate(sub),
            verdict(ratio >= 0.9)
        );
        println!(
            "| read_all pages of {PAGE} ({label}) | {} | {} | 1.00× | |",
            fmt_duration(read),
            rate(read)
        );
    }
}

fn main() {
    let seed = common::seed();
    common::print_setup(seed);
    let mut c = Criterion::default().configure_from_args();
    let rec = Recorder::default();
    let fixture = OnceCell::new();
    bench_f(&mut c, &rec);
    bench_g(&mut c, &fixture, &rec);
    c.final_summary();
    summary(&rec);
    if let Some(f) = fixture.into_inner() {
        let dir = f.dir.clone();
        drop(f.store);
        remove_dir(&dir);
    }
    remove_dir(&common::bench_root().join("subscribe"));
}
