//! What `Store::metrics` shows after some appends and reads: run with
//! `cargo run --release --example metrics [DIR]` (a temporary store by
//! default; give a directory on a real disk, where `fdatasync` costs what
//! it costs).

use std::sync::Arc;

use annals::{EventData, ExpectedVersion, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| temp.path().to_path_buf(), Into::into);
    let store = Arc::new(Store::open(&dir)?);
    // Four threads appending at once: group commit shares their syncs.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..250 {
                    let e = EventData::new("OrderPlaced", format!("{{\"n\":{i}}}").into_bytes());
                    store.append(&format!("order-{t}-{}", i % 10), ExpectedVersion::Any, &[e])?;
                }
                Ok::<(), annals::Error>(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "an appender panicked")??;
    }
    store.read_all(0, 1000)?;
    let m = store.metrics();
    println!(
        "appends {} ({} events, {} bytes), commits {}, fsyncs {}",
        m.appends, m.events_appended, m.bytes_appended, m.commits, m.fsyncs
    );
    println!(
        "fsync latency p50 {} µs, p99 {} µs, max {} µs; events per commit p50 {}, max {}",
        m.fsync_latency_us.p50,
        m.fsync_latency_us.p99,
        m.fsync_latency_us.max,
        m.events_per_commit.p50,
        m.events_per_commit.max
    );
    println!(
        "reads {} ({} events), segments {}, {} bytes on disk",
        m.reads, m.events_read, m.segments, m.bytes_on_disk
    );
    Ok(())
}
