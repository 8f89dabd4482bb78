//! Measures a scavenge against the disk it runs on, in one run: fills a
//! store with `EVENTS` events over `STREAMS` streams, deletes every other
//! stream, then times (1) a sequential write of as many bytes as the
//! scavenge will write, with one `fdatasync` at the end, and (2) the
//! scavenge; and the p50 of single-event appends with no scavenge running
//! and while one runs (from a second thread).
//!
//! `cargo run --release --example scavenge_throughput -- DIR [EVENTS]`

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Options, Store, StreamAppend};

const STREAMS: u64 = 10_000;
const DATA_BYTES: usize = 200;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: DIR [EVENTS]")?);
    let events: u64 = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    std::fs::create_dir_all(&dir)?;
    let store_dir = dir.join("store");
    let _ = std::fs::remove_dir_all(&store_dir);
    let store = Arc::new(Store::open_with(&store_dir, Options::default())?);
    let started = Instant::now();
    // Batches of 100 events over 100 streams, so that every segment holds
    // events of kept and of deleted streams.
    let per_batch = 100u64;
    let mut i = 0u64;
    while i < events {
        let parts: Vec<StreamAppend> = (0..per_batch.min(events - i))
            .map(|k| {
                let n = i + k;
                StreamAppend::new(
                    format!("s-{}", n % STREAMS),
                    ExpectedVersion::Any,
                    vec![EventData::new("Filled", vec![(n % 251) as u8; DATA_BYTES])],
                )
            })
            .collect();
        store.append_multi(&parts)?;
        i += per_batch;
    }
    println!(
        "filled {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for s in (0..STREAMS).step_by(2) {
        store.delete_stream(&format!("s-{s}"), ExpectedVersion::Any)?;
    }
    let bytes_before = store.stats().bytes_used;
    let p50_idle = append_p50(&store, 2_000, None);

    // The disk, sequentially: as many bytes as the scavenge writes (half the
    // log), one fdatasync at the end, in the same directory.
    let probe = dir.join("seq-write-probe");
    let len = bytes_before / 2;
    let t = Instant::now();
    {
        let mut f = std::fs::File::create(&probe)?;
        let chunk = vec![0x5au8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        f.sync_data()?;
    }
    let disk_secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(&probe)?;
    let disk_mbps = len as f64 / disk_secs / 1e6;

    // The scavenge, with appends running beside it.
    let running = Arc::new(AtomicBool::new(true));
    let appender = {
        let (store, running) = (Arc::clone(&store), Arc::clone(&running));
        std::thread::spawn(move || append_p50(&store, usize::MAX, Some(&running)))
    };
    let t = Instant::now();
    let report = store.scavenge()?;
    let scavenge_secs = t.elapsed().as_secs_f64();
    running.store(false, Ordering::Relaxed);
    let p50_busy = appender.join().map_err(|_| "appender panicked")?;
    let written = bytes_before.saturating_sub(report.bytes_reclaimed);
    let scavenge_mbps = written as f64 / scavenge_secs / 1e6;
    println!("{report:?}");
    println!(
        "disk sequential write: {:.0} MB in {disk_secs:.2} s = {disk_mbps:.0} MB/s",
        len as f64 / 1e6
    );
    println!(
        "scavenge: {:.0} MB of log rewritten to {:.0} MB in {scavenge_secs:.2} s = {scavenge_mbps:.0} MB/s written ({:.2}x the disk)",
        bytes_before as f64 / 1e6,
        written as f64 / 1e6,
        scavenge_mbps / disk_mbps
    );
    println!(
        "append p50: {:.0} us idle, {:.0} us during the scavenge ({:.2}x)",
        p50_idle.as_secs_f64() * 1e6,
        p50_busy.as_secs_f64() * 1e6,
        p50_busy.as_secs_f64() / p50_idle.as_secs_f64()
    );
    Ok(())
}

/// The median latency of single-event appends: `count` of them, or as many
/// as run while `running` holds.
fn append_p50(store: &Store, count: usize, running: Option<&AtomicBool>) -> Duration {
    let mut times = Vec::new();
    while times.len() < count && running.is_none_or(|r| r.load(Ordering::Relaxed)) {
        let t = Instant::now();
        if store
            .append(
                "probe",
                ExpectedVersion::Any,
                &[EventData::new("P", vec![1; 100])],
            )
            .is_err()
        {
            break;
        }
        times.push(t.elapsed());
    }
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}
