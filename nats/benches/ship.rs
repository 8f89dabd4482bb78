//! Issue 14's benchmark: shipping throughput of an annals store to a local
//! nats-server against the same server's raw async publish throughput of
//! the same messages (same subjects, headers and payloads, the same
//! number of acks in flight, no store and no expected-sequence check), in
//! one run, with the ratio; then the end-to-end lag from `append`
//! returning to the event readable in a mirror.
//!
//! It starts its own `nats-server -js` (storage under the target
//! directory, on the host disk) unless `NATS_URL` names one, and skips
//! with a message when neither is possible. `ANNALS_NATS_BENCH_EVENTS`
//! sets the size (default 1 000 000); PERFORMANCE.md has the figures.
//!
//! ```sh
//! cargo bench -p annals-nats --bench ship
//! ```

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Options, Store, SubscribeFrom, SubscriptionItem};
use annals_nats::{MirrorOptions, ShipOptions};
use async_nats::jetstream::{self, stream};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;

/// Acks in flight for both sides: the shipper's default.
const IN_FLIGHT: usize = 2048;

/// Ship and raw runs back to back, after criterion's.
const PAIRS: usize = 5;

/// Events whose lag is measured, one append each.
const LAG_EVENTS: usize = 2_000;

struct Server {
    url: String,
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn server(dir: &Path) -> Option<Server> {
    if let Ok(url) = std::env::var("NATS_URL") {
        return Some(Server { url, child: None });
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server {
        url: format!("nats://127.0.0.1:{port}"),
        child: Some(child),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

/// An order-like event of about 100 bytes of JSON and 24 of metadata,
/// over 10 000 streams.
fn fill(store: &Store, n: usize) {
    let mut written = 0;
    let mut batch = 0u64;
    while written < n {
        let k = 1_000.min(n - written);
        let events: Vec<EventData> = (0..k)
            .map(|i| {
                let data = format!(
                    r#"{{"order":{},"line":{i},"sku":"SKU-{:06}","qty":3,"price_cents":1299,"note":"x"}}"#,
                    batch,
                    (batch * 7 + i as u64) % 1_000_000
                );
                EventData::new("OrderLineAdded", data.into_bytes()).with_metadata(br#"{"user":"bench-000001"}"#.to_vec())
            })
            .collect();
        store
            .append(
                &format!("order-{}", batch % 10_000),
                ExpectedVersion::Any,
                &events,
            )
            .expect("append");
        written += k;
        batch += 1;
    }
}

async fn stream_count(js: &jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// Ships the whole store to a new stream; the time until JetStream holds
/// every event.
async fn ship_once(
    store_dir: &Path,
    url: &str,
    js: &jetstream::Context,
    n: u64,
    round: u64,
) -> Duration {
    let name = format!("BENCH_SHIP_{round}");
    let _ = js.delete_stream(&name).await;
    let options = ShipOptions::new(store_dir, url, &name).subject_prefix(&name);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let task = tokio::spawn(async move {
        annals_nats::ship(&options, async {
            stop_rx.await.ok();
        })
        .await
    });
    // Polling the stream's state every 5 ms adds at most that to a run
    // of seconds.
    while stream_count(js, &name).await < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    stop_tx.send(()).ok();
    task.await.expect("join").expect("ship");
    js.delete_stream(&name).await.expect("delete the stream");
    took
}

/// Publishes the same messages as fast as JetStream takes them, with the
/// same acks in flight.
async fn raw_once(
    messages: Arc<Vec<(String, async_nats::HeaderMap, bytes::Bytes)>>,
    js: jetstream::Context,
    round: u64,
) -> Duration {
    let name = format!("BENCH_RAW_{round}");
    let _ = js.delete_stream(&name).await;
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec!["bench.>".into()],
        ..Default::default()
    })
    .await
    .expect("create the stream");
    let start = Instant::now();
    let mut acks = FuturesOrdered::new();
    for (subject, headers, payload) in messages.iter() {
        if acks.len() >= IN_FLIGHT {
            let ack: Result<_, _> = acks.next().await.expect("an ack");
            ack.expect("acknowledged");
        }
        let subject = subject.replacen("annals", "bench", 1);
        let ack = js
            .publish_with_headers(subject, headers.clone(), payload.clone())
            .await
            .expect("publish");
        acks.push_back(ack.into_future());
    }
    while let Some(ack) = acks.next().await {
        ack.expect("acknowledged");
    }
    let took = start.elapsed();
    js.delete_stream(&name).await.expect("delete the stream");
    took
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Appends one event at a time to a live origin that is shipped and
/// mirrored, and measures when each becomes readable in the replica.
fn lag(
    root: &Path,
    url: &str,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    pace: Option<Duration>,
) -> Lags {
    let origin_dir = root.join(format!("{name}-origin"));
    let replica_dir = root.join(format!("{name}-replica"));
    let _ = std::fs::remove_dir_all(&origin_dir);
    let _ = std::fs::remove_dir_all(&replica_dir);
    let origin = Store::open(&origin_dir).expect("origin");
    Store::open(&replica_dir)
        .expect("replica")
        .close()
        .expect("close");
    // One event first, so that the stream and the replica exist.
    origin
        .append(
            "lag",
            ExpectedVersion::Any,
            &[EventData::new("Tick", b"warm".to_vec())],
        )
        .expect("append");
    runtime.block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.expect("connect"));
        let _ = js.delete_stream(name).await;
    });
    // A core NATS subscriber on the stream's subjects sees each message
    // as JetStream receives it: the first half of the way.
    let (client, mut messages) = runtime.block_on(async {
        let client = async_nats::connect(url).await.expect("connect");
        let messages = client
            .subscribe(format!("{name}.>"))
            .await
            .expect("subscribe");
        client.flush().await.expect("flush");
        (client, messages)
    });
    let on_nats = runtime.spawn(async move {
        let mut arrived = vec![None; LAG_EVENTS];
        let mut count = 0;
        while count < LAG_EVENTS {
            let Some(m) = messages.next().await else {
                break;
            };
            let at = Instant::now();
            let (position, _) =
                annals_nats::wire::position_and_id(m.headers.as_ref()).expect("headers");
            if let Some(slot) = position
                .checked_sub(1)
                .and_then(|i| arrived.get_mut(i as usize))
            {
                *slot = Some(at);
                count += 1;
            }
        }
        drop(client);
        arrived
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ship_opts = ShipOptions::new(&origin_dir, url, name).subject_prefix(name);
    let mirror_opts = MirrorOptions::new(&replica_dir, url, name);
    let mut rx1 = stop_rx.clone();
    let mut rx2 = stop_rx;
    let shipper = runtime.spawn(async move {
        annals_nats::ship(&ship_opts, async move {
            rx1.changed().await.ok();
        })
        .await
    });
    let mirror = runtime.spawn(async move {
        annals_nats::mirror(&mirror_opts, async move {
            rx2.changed().await.ok();
        })
        .await
    });
    // A reader of the replica, as another process would be: read-only,
    // looking for new events every millisecond.
    let replica = Store::open_read_only_with(
        &replica_dir,
        Options::default().follow_interval(Duration::from_millis(1)),
    )
    .expect("replica read-only");
    let mut sub = replica
        .subscribe_all(SubscribeFrom::Start, None)
        .expect("subscribe");
    let reader = std::thread::spawn({
        move || {
            let mut arrived = vec![None; LAG_EVENTS];
            let mut count = 0;
            while count < LAG_EVENTS {
                match sub
                    .next_timeout(Duration::from_secs(60))
                    .expect("subscription")
                {
                    Some(SubscriptionItem::Event(e)) if e.position > 0 => {
                        arrived[(e.position - 1) as usize] = Some(Instant::now());
                        count += 1;
                    }
                    Some(_) => {}
                    None => panic!("no event in the replica for 60 s"),
                }
            }
            arrived
        }
    });
    let mut appended = Vec::with_capacity(LAG_EVENTS);
    let begin = Instant::now();
    for i in 0..LAG_EVENTS {
        if let Some(pace) = pace {
            // A steady writer: the i-th append is due i paces after the
            // first, whatever the earlier ones took.
            let due = begin + pace * i as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let start = Instant::now();
        origin
            .append(
                "lag",
                ExpectedVersion::Any,
                &[EventData::new("Tick", format!("{i}").into_bytes())],
            )
            .expect("append");
        appended.push((start, Instant::now()));
    }
    let arrived = reader.join().expect("reader");
    stop_tx.send(true).ok();
    let on_nats = runtime.block_on(async {
        shipper.await.expect("join").expect("ship");
        mirror.await.expect("join").expect("mirror");
        on_nats.await.expect("join")
    });
    let since_append = |seen: &[Option<Instant>]| {
        let mut lags: Vec<Duration> = seen
            .iter()
            .zip(&appended)
            .map(|(a, (_, done))| a.expect("arrived").saturating_duration_since(*done))
            .collect();
        lags.sort();
        lags
    };
    let mut append: Vec<Duration> = appended
        .iter()
        .map(|(start, done)| *done - *start)
        .collect();
    append.sort();
    Lags {
        append,
        to_nats: since_append(&on_nats),
        to_mirror: since_append(&arrived),
    }
}

/// Sorted durations of the lag run.
struct Lags {
    /// How long each `append` took (its fsync, mostly).
    append: Vec<Duration>,
    /// From `append` returning to the message reaching NATS.
    to_nats: Vec<Duration>,
    /// From `append` returning to the event readable in the mirror.
    to_mirror: Vec<Duration>,
}

fn summary(sorted: &[Duration]) -> String {
    format!(
        "p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        percentile(sorted, 0.5),
        percentile(sorted, 0.9),
        percentile(sorted, 0.99),
        percentile(sorted, 1.0)
    )
}

fn bench(c: &mut Criterion) {
    let n: u64 = std::env::var("ANNALS_NATS_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("annals-nats-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("nats")).expect("bench dir");
    let Some(server) = server(&root.join("nats")) else {
        eprintln!("annals-nats bench: SKIPPED: no NATS_URL and no nats-server on PATH");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The lag first, while the disk is quiet: the throughput runs leave
    // gigabytes of deleted JetStream files behind them.
    for (name, pace, what) in [
        (
            "BENCH_LAG_PACED",
            Some(Duration::from_millis(1)),
            "one append each millisecond",
        ),
        (
            "BENCH_LAG_FULL",
            None,
            "appends back to back, at the writer's full speed",
        ),
    ] {
        let lags = lag(&root, &server.url, &runtime, name, pace);
        eprintln!("annals-nats bench: lag of {LAG_EVENTS} events of one each, {what}:");
        eprintln!(
            "annals-nats bench:   append itself:             {}",
            summary(&lags.append)
        );
        eprintln!(
            "annals-nats bench:   append to NATS:            {}",
            summary(&lags.to_nats)
        );
        eprintln!(
            "annals-nats bench:   append to mirror readable: {}",
            summary(&lags.to_mirror)
        );
    }
    let store_dir = root.join("store");
    let store = Store::open(&store_dir).expect("store");
    let t = Instant::now();
    fill(&store, n as usize);
    eprintln!(
        "annals-nats bench: {n} events written in {:.1?}",
        t.elapsed()
    );
    let messages: Arc<Vec<_>> = store
        .read_all(0, n as usize)
        .expect("read_all")
        .iter()
        .map(|e| annals_nats::wire::encode("annals", e).expect("encode"))
        .collect::<Vec<_>>()
        .into();
    store.close().expect("close");
    let js = runtime.block_on(async {
        jetstream::new(async_nats::connect(&server.url).await.expect("connect"))
    });

    let mut ship_rates = Vec::new();
    let mut raw_rates = Vec::new();
    let mut round = 0;
    let mut group = c.benchmark_group("issue14");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(n));
    group.bench_function("annals-nats ship", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let took = runtime.block_on(ship_once(&store_dir, &server.url, &js, n, round));
                ship_rates.push(n as f64 / took.as_secs_f64());
                total += took;
            }
            total
        });
    });
    group.bench_function("raw async publish", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                // On a worker thread, as the shipper's task is.
                let task = runtime.spawn(raw_once(Arc::clone(&messages), js.clone(), round));
                let took = runtime.block_on(task).expect("join");
                raw_rates.push(n as f64 / took.as_secs_f64());
                total += took;
            }
            total
        });
    });
    group.finish();
    let ship = median(&mut ship_rates);
    let raw = median(&mut raw_rates);
    eprintln!(
        "annals-nats bench: {n} events; ship {ship:.0} events/s, raw async publish {raw:.0} events/s \
         (medians of {} and {} runs); ratio {:.2}",
        ship_rates.len(),
        raw_rates.len(),
        ship / raw
    );
    // Criterion runs one side after the other, minutes apart, and this
    // machine's load changes over minutes; pairs run back to back share
    // their moment, so their ratios are what to judge by.
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        round += 1;
        let ship = runtime.block_on(ship_once(&store_dir, &server.url, &js, n, round));
        round += 1;
        let task = runtime.spawn(raw_once(Arc::clone(&messages), js.clone(), round));
        let raw = runtime.block_on(task).expect("join");
        let (ship, raw) = (n as f64 / ship.as_secs_f64(), n as f64 / raw.as_secs_f64());
        eprintln!(
            "annals-nats bench: pair: ship {ship:.0} events/s, raw {raw:.0} events/s, ratio {:.2}",
            ship / raw
        );
        pairs.push(ship / raw);
    }
    eprintln!(
        "annals-nats bench: {n} events; paired ratio ship/raw, median of {PAIRS} pairs: {:.2}",
        median(&mut pairs)
    );
    drop(messages);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, bench);
criterion_main!(benches);
