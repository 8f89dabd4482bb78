//! Appends batches with fresh ids to a fresh store of one version, for
//! callgrind: `append_profile now|before DIR BATCH COUNT`. Prints the
//! appends' latency p50, p99, max and mean (the max is the seal's).
use std::path::Path;

fn mix(mut h: u64) -> u64 {
    h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

macro_rules! run {
    ($krate:ident, $dir:expr, $batch:expr, $count:expr) => {{
        let store = $krate::Store::open($dir).expect("open");
        let payload: Vec<u8> = (0..256).map(|i| b'a' + (i % 26) as u8).collect();
        let mut versions = vec![None::<u64>; 1000];
        let mut n = 0u64;
        let mut times = Vec::with_capacity($count);
        for k in 0..$count {
            let i = k % 1000;
            let events: Vec<$krate::EventData> = (0..$batch)
                .map(|_| {
                    n += 1;
                    $krate::EventData::new("OrderPlaced", payload.clone())
                        .with_id(uuid::Uuid::from_u64_pair(mix(n), n))
                })
                .collect();
            let expected = match versions[i] {
                None => $krate::ExpectedVersion::NoStream,
                Some(v) => $krate::ExpectedVersion::Exact(v),
            };
            let started = std::time::Instant::now();
            let r = store
                .append(&format!("order-{i:05}"), expected, &events)
                .expect("append");
            times.push(started.elapsed());
            versions[i] = Some(r.versions.end - 1);
        }
        let mean = times.iter().sum::<std::time::Duration>() / times.len().max(1) as u32;
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!(
            "{} appends: p50 {:?} p99 {:?} max {:?} mean {:?}",
            times.len(),
            at(0.5),
            at(0.99),
            at(1.0),
            mean
        );
    }};
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[2]);
    let _ = std::fs::remove_dir_all(dir);
    let batch: usize = args[3].parse().unwrap();
    let count: usize = args[4].parse().unwrap();
    match args[1].as_str() {
        "now" => run!(annals, dir, batch, count),
        _ => run!(annals_before, dir, batch, count),
    }
}
