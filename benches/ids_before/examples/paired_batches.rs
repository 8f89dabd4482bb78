//! Batches of 100 fresh ids, the two versions interleaved append by
//! append on fresh stores (as benches/ids.rs pairs them), without the
//! criterion phase: `paired_batches DIR ROUNDS [N [PREFILL]]`, after PREFILL
//! untimed batches of 100 to each. Prints each version's
//! median and the time spent in `fdatasync`-free work is not separated:
//! this is for telling a systematic gap from the shared disk's noise.
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
                let _ = std::fs::remove_dir_all(dir);
                let store = $krate::Store::open(dir).expect("open");
                let payload: Vec<u8> = (0..256).map(|i| b'a' + (i % 26) as u8).collect();
                for i in 0..1000 {
                    let e = $krate::EventData::new("OrderPlaced", payload.clone());
                    store.append(&format!("order-{i:05}"), $krate::ExpectedVersion::NoStream, &[e]).expect("seed");
                }
                $name { store, versions: vec![0; 1000], next: 0, payload }
            }
            fn append(&mut self, i: usize, n: usize) -> Duration {
                let started = Instant::now();
                let events: Vec<$krate::EventData> = (0..n)
                    .map(|_| {
                        self.next += 1;
                        $krate::EventData::new("OrderPlaced", self.payload.clone())
                            .with_id(uuid::Uuid::from_u64_pair(mix(self.next ^ ($space << 60)), self.next))
                    })
                    .collect();
                self.store
                    .append(&format!("order-{i:05}"), $krate::ExpectedVersion::Exact(self.versions[i]), &events)
                    .expect("append");
                self.versions[i] += n as u64;
                started.elapsed()
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
    let n: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut now = Now::new(&dir.join("now"));
    let mut before = Before::new(&dir.join("before"));
    let prefill: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0);
    for r in 0..prefill {
        let i = (mix(r as u64 ^ 0xfeed) % 1000) as usize;
        now.append(i, 100);
        before.append(i, 100);
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let i = (mix(r as u64) % 1000) as usize;
        if r % 2 == 0 {
            a.push(now.append(i, n));
            b.push(before.append(i, n));
        } else {
            b.push(before.append(i, n));
            a.push(now.append(i, n));
        }
    }
    a.sort_unstable();
    b.sort_unstable();
    let (ma, mb) = (a[a.len() / 2], b[b.len() / 2]);
    println!(
        "batches of {n}, {rounds} rounds: now p50 {ma:?}, before p50 {mb:?}, now/before time {:.3}",
        ma.as_secs_f64() / mb.as_secs_f64()
    );
}
