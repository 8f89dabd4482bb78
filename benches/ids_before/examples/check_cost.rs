//! The id check alone, without the disk: `check_cost DIR ROUNDS [PREFILL]`.
//! After PREFILL untimed batches of 100 to each version (64 MiB segments,
//! so 2,500 batches seal about one), each round offers both versions a
//! batch of 100 fresh ids with a wrong expected version. The id check runs
//! before the expected-version check (issue 11's rule 3), so this version
//! pays validation, encoding and the whole id check, the version before
//! only validation and encoding, and neither writes or syncs. The
//! difference of the medians is what the check costs a batch of 100 in
//! CPU and cache misses, free of the shared disk's noise.
use std::path::Path;
use std::time::{Duration, Instant};

fn mix(mut h: u64) -> u64 {
    h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

macro_rules! sys {
    ($name:ident, $krate:ident, $space:literal) => {
        struct $name {
            store: $krate::Store,
            versions: Vec<u64>,
            next: u64,
            payload: Vec<u8>,
        }
        impl $name {
            fn new(dir: &Path) -> Self {
                if std::env::var_os("CHECK_COST_REUSE").is_some() && dir.exists() {
                    let store = $krate::Store::open(dir).expect("open");
                    let payload: Vec<u8> = (0..256).map(|i| b'a' + (i % 26) as u8).collect();
                    let versions = (0..1000)
                        .map(|i| store.stream_version(&format!("order-{i:05}")).expect("stream"))
                        .collect();
                    let next = store.global_position() + (1 << 40);
                    return $name { store, versions, next, payload };
                }
                let _ = std::fs::remove_dir_all(dir);
                let store = $krate::Store::open(dir).expect("open");
                let payload: Vec<u8> = (0..256).map(|i| b'a' + (i % 26) as u8).collect();
                for i in 0..1000 {
                    let e = $krate::EventData::new("OrderPlaced", payload.clone());
                    store.append(&format!("order-{i:05}"), $krate::ExpectedVersion::NoStream, &[e]).expect("seed");
                }
                $name { store, versions: vec![0; 1000], next: 0, payload }
            }
            fn events(&mut self, n: usize) -> Vec<$krate::EventData> {
                (0..n)
                    .map(|_| {
                        self.next += 1;
                        $krate::EventData::new("OrderPlaced", self.payload.clone())
                            .with_id(uuid::Uuid::from_u64_pair(mix(self.next ^ ($space << 60)), self.next))
                    })
                    .collect()
            }
            fn append(&mut self, i: usize, n: usize) {
                let events = self.events(n);
                self.store
                    .append(&format!("order-{i:05}"), $krate::ExpectedVersion::Exact(self.versions[i]), &events)
                    .expect("append");
                self.versions[i] += n as u64;
            }
            fn refused(&mut self, i: usize, n: usize) -> Duration {
                let events = self.events(n);
                let stream = format!("order-{i:05}");
                let started = Instant::now();
                let r = self.store.append(&stream, $krate::ExpectedVersion::Exact(self.versions[i] + 7), &events);
                let took = started.elapsed();
                assert!(matches!(r, Err($krate::Error::WrongExpectedVersion { .. })), "{r:?}");
                took
            }
        }
    };
}
sys!(Now, annals, 1);
sys!(Before, annals_before, 2);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let rounds: usize = args[2].parse().unwrap();
    let prefill: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut now = Now::new(&dir.join("now"));
    let mut before = Before::new(&dir.join("before"));
    let only_now = std::env::var_os("CHECK_COST_ONLY_NOW").is_some();
    for r in 0..prefill {
        let i = (mix(r as u64 ^ 0xfeed) % 1000) as usize;
        now.append(i, 100);
        before.append(i, 100);
    }
    // The store-wide filter is built off the writer's thread after a
    // seal; a few real appends after a pause let it be installed.
    std::thread::sleep(Duration::from_secs(3));
    for i in 0..10 {
        now.append(i, 100);
        before.append(i, 100);
    }
    eprintln!("measuring");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let i = (mix(r as u64) % 1000) as usize;
        if only_now {
            a.push(now.refused(i, 100));
            b.push(Duration::ZERO);
        } else if r % 2 == 0 {
            a.push(now.refused(i, 100));
            b.push(before.refused(i, 100));
        } else {
            b.push(before.refused(i, 100));
            a.push(now.refused(i, 100));
        }
    }
    a.sort_unstable();
    b.sort_unstable();
    let (ma, mb) = (a[a.len() / 2], b[b.len() / 2]);
    println!(
        "refused batches of 100 after {prefill} prefilled, {rounds} rounds: now p50 {ma:?}, before p50 {mb:?}, now - before {:.2} µs",
        (ma.as_secs_f64() - mb.as_secs_f64()) * 1e6
    );
}
