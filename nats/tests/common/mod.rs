//! What the tests against a real nats-server share: finding or starting
//! the server, writing varied events, reading a JetStream stream back,
//! comparing, and a seeded random source.
//!
//! A server comes from `NATS_URL` (CI starts one) or is spawned here as
//! `nats-server -js` on a free port of 127.0.0.1 with a temporary storage
//! directory, when the binary is on PATH. Without either, a test skips
//! with a loud message, except under `CI=true`, where it fails.

#![allow(dead_code, reason = "each test file uses a part of this module")]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, RecordedEvent, Store};
use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt as _;

/// How long a condition may take before a test gives up on it. Generous:
/// CI shares two cores among three suites' worth of work.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// A nats-server for a test: shared (from `NATS_URL`) or its own child.
pub struct Server {
    /// Where clients connect.
    pub url: String,
    port: u16,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

fn missing(why: &str) -> Option<Server> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no nats-server for the JetStream tests under CI: {why}");
    }
    eprintln!();
    eprintln!("!!!!!!!! SKIPPING: {why}.");
    eprintln!(
        "!!!!!!!! Install nats-server (apt-get install nats-server) or set NATS_URL to run this test."
    );
    eprintln!();
    None
}

fn binary_on_path() -> bool {
    Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Server {
    /// The shared server if `NATS_URL` is set, else one of this test's own.
    pub fn any() -> Option<Server> {
        match std::env::var("NATS_URL") {
            Ok(url) if !url.is_empty() => Some(Server {
                url,
                port: 0,
                child: None,
                dir: None,
            }),
            _ => Server::own(),
        }
    }

    /// A server of this test's own, which it may stop and restart.
    pub fn own() -> Option<Server> {
        if !binary_on_path() {
            return missing("nats-server is not on PATH");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Server {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            child: None,
            dir: Some(tempfile::tempdir().expect("a storage directory")),
        };
        server.start();
        Some(server)
    }

    fn start(&mut self) {
        let dir = self
            .dir
            .as_ref()
            .expect("an own server has a directory")
            .path();
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGKILL when `hard`, else SIGTERM and a wait) and
    /// starts it again on the same port and storage.
    pub fn restart(&mut self, hard: bool) {
        self.restart_after(hard, Duration::ZERO);
    }

    /// As [`Server::restart`], with the server away for `down` between.
    pub fn restart_after(&mut self, hard: bool, down: Duration) {
        let mut child = self.child.take().expect("only an own server restarts");
        let signal = if hard { "-KILL" } else { "-TERM" };
        let _ = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status();
        child.wait().expect("nats-server exits");
        std::thread::sleep(down);
        self.start();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A multi-threaded runtime for a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A JetStream stream name no other test (or earlier run against the
/// shared server) uses.
pub fn stream_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("T_{tag}_{}_{nanos}", std::process::id())
}

/// Ship options for a test's stream, with the stream's name as the
/// subject prefix too: a shared server holds many tests' streams, and two
/// streams may not take the same subjects.
pub fn ship_options(dir: &Path, url: &str, name: &str) -> annals_nats::ShipOptions {
    annals_nats::ShipOptions::new(dir, url, name).subject_prefix(name)
}

/// A small, seeded random source (splitmix64); tests print the seed and
/// take it from `ANNALS_NATS_SEED` to replay.
pub struct Rng(u64);

impl Rng {
    /// Seeds from `ANNALS_NATS_SEED`, or from the clock; prints the seed.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("ANNALS_NATS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: seed {seed} (replay with ANNALS_NATS_SEED={seed})");
        Rng(seed)
    }

    /// A second source, drawn from this one, for another thread: the
    /// printed seed replays both.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next())
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Appends `n` events in batches of up to `batch`, spread over streams
/// whose ids need escaping too, with varied types, data and metadata
/// (binary, sometimes none).
pub fn append_events(store: &Store, n: usize, batch: usize, rng: &mut Rng) {
    let mut written = 0;
    while written < n {
        let stream = match rng.below(4) {
            0 => format!("order-{}", rng.below(500)),
            1 => format!("user.{}", rng.below(100)),
            2 => format!("ünïcode {} *>", rng.below(50)),
            _ => format!("s_{}", rng.below(2000)),
        };
        let k = (1 + rng.below(batch as u64) as usize).min(n - written);
        let events: Vec<EventData> = (0..k)
            .map(|i| {
                let len = rng.below(200) as usize;
                let data: Vec<u8> = (0..len).map(|j| (j as u8) ^ (i as u8)).collect();
                let event = EventData::new(
                    if rng.below(2) == 0 {
                        "Placed"
                    } else {
                        "Line Added %é"
                    },
                    data,
                );
                match rng.below(3) {
                    0 => event,
                    1 => event.with_metadata(br#"{"by":"test"}"#.to_vec()),
                    _ => event.with_metadata(vec![0, 255, 10, 13, rng.below(256) as u8]),
                }
            })
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, &events)
            .expect("append");
        written += k;
    }
}

/// Every event of a store, in position order.
pub fn read_store(dir: &Path) -> Vec<RecordedEvent> {
    let store = Store::open_read_only(dir).expect("open the store read-only");
    let mut all = Vec::new();
    loop {
        let page = store
            .read_all(
                all.last().map_or(0, |e: &RecordedEvent| e.position + 1),
                10_000,
            )
            .expect("read_all");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Connects a JetStream context to `url`.
pub async fn jetstream(url: &str) -> jetstream::Context {
    let client = async_nats::connect(url)
        .await
        .expect("connect to nats-server");
    jetstream::new(client)
}

/// The number of messages in JetStream stream `name`, 0 while it does not
/// exist.
pub async fn message_count(js: &jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// Waits until JetStream stream `name` holds `n` messages, polling the
/// stream's state until [`DEADLINE`]; panics with `what` then.
pub async fn wait_for_messages(js: &jetstream::Context, name: &str, n: u64, what: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let have = message_count(js, name).await;
        if have >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: JetStream has {have} of {n} messages after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every message of JetStream stream `name` as (sequence, event), in
/// sequence order, read with an ordered consumer and decoded as the
/// mirror decodes them.
pub async fn read_jetstream(js: &jetstream::Context, name: &str) -> Vec<(u64, RecordedEvent)> {
    let mut stream = js.get_stream(name).await.expect("the stream exists");
    let total = stream.info().await.expect("stream info").state.messages;
    let consumer = stream
        .create_consumer(pull::OrderedConfig::default())
        .await
        .expect("an ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::with_capacity(total as usize);
    while (out.len() as u64) < total {
        let message = tokio::time::timeout(DEADLINE, messages.next())
            .await
            .expect("a message within the deadline")
            .expect("the consumer goes on")
            .expect("a message");
        let sequence = message.info().expect("message info").stream_sequence;
        let event = annals_nats::wire::decode(
            message.subject.as_str(),
            message.headers.as_ref(),
            message.payload.clone(),
        )
        .expect("an annals message");
        out.push((sequence, event));
    }
    out
}

/// Asserts that JetStream holds exactly the store's events, each once, in
/// position order, at sequences 1, 2, 3...
pub fn assert_same(store: &[RecordedEvent], shipped: &[(u64, RecordedEvent)]) {
    for (i, (sequence, event)) in shipped.iter().enumerate() {
        assert_eq!(
            *sequence,
            i as u64 + 1,
            "JetStream sequences have a gap before index {i}"
        );
        let Some(original) = store.get(i) else {
            panic!(
                "JetStream holds {} messages, the store only {} events",
                shipped.len(),
                store.len()
            );
        };
        assert_eq!(
            event, original,
            "message {sequence} differs from the store's event at index {i}"
        );
    }
    assert_eq!(
        shipped.len(),
        store.len(),
        "JetStream holds fewer messages than the store events"
    );
}

/// Waits until the store in `dir` (opened read-only, so a mirror may hold
/// it) has `n` events, until [`DEADLINE`]; panics with `what` then.
pub async fn wait_for_store(dir: &Path, n: u64, what: &str) {
    let store = Store::open_read_only(dir).expect("open the replica read-only");
    let deadline = Instant::now() + DEADLINE;
    loop {
        store.refresh().expect("refresh the replica");
        let have = store.global_position();
        if have >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the store has {have} of {n} events after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A writer thread that appends small batches to `store` until `stop` is
/// set or the store holds `max` events.
pub fn spawn_writer(
    store: std::sync::Arc<Store>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    max: u64,
    mut rng: Rng,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Acquire) && store.global_position() < max {
            append_events(&store, 1 + rng.below(20) as usize, 20, &mut rng);
        }
    })
}

/// A library shipper running on the current runtime until the returned
/// sender is used or dropped.
pub fn spawn_shipper(
    options: annals_nats::ShipOptions,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<annals_nats::ShipSummary, annals_nats::Error>>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        annals_nats::ship(&options, async {
            stop_rx.await.ok();
        })
        .await
    });
    (stop_tx, task)
}

/// A library mirror running on the current runtime until the returned
/// sender is used or dropped.
pub fn spawn_mirror(
    options: annals_nats::MirrorOptions,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<annals_nats::MirrorSummary, annals_nats::Error>>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        annals_nats::mirror(&options, async {
            stop_rx.await.ok();
        })
        .await
    });
    (stop_tx, task)
}
