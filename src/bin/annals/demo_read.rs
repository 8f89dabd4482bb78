//! The demo's read-back: every stream through `read_stream`, then the
//! global log through `read_all`, each event checked against what the demo
//! must have written. Only the time inside the read calls is counted.

use std::time::{Duration, Instant};

use annals::Store;

use crate::demo_data::{self, Plan};
use crate::exit::Failure;
use crate::fmt::progress_bar;

/// How many events one `read_stream` call asks for.
pub const STREAM_PAGE: usize = 1_000;
/// How many events one `read_all` call asks for.
pub const ALL_PAGE: usize = 10_000;
/// How many verification failures are described before the rest are only
/// counted.
const PROBLEMS_SHOWN: usize = 10;

/// Verification failures: counted, the first few described.
#[derive(Default)]
pub struct Problems {
    /// How many problems were found.
    pub count: u64,
    /// The first few, described.
    pub shown: Vec<String>,
}

impl Problems {
    /// Records a problem.
    pub fn add(&mut self, what: String) {
        self.count += 1;
        if self.shown.len() < PROBLEMS_SHOWN {
            self.shown.push(what);
        }
    }
}

/// Reads every stream back in pages and checks every event; returns the
/// time spent inside `read_stream`.
pub fn read_streams(
    store: &Store,
    plan: Plan,
    problems: &mut Problems,
) -> Result<Duration, Failure> {
    let bar = progress_bar(plan.events, "read_stream");
    let mut in_reads = Duration::ZERO;
    let mut scratch = Vec::new();
    for s in 0..plan.streams {
        let name = demo_data::stream_name(s);
        let len = plan.stream_len(s);
        let mut version = 0u64;
        loop {
            let t0 = Instant::now();
            let page = store.read_stream(&name, version, STREAM_PAGE)?;
            in_reads += t0.elapsed();
            if page.is_empty() {
                break;
            }
            for e in &page {
                if let Err(p) = demo_data::check(e, s, version, &mut scratch) {
                    problems.add(p);
                }
                version += 1;
            }
            bar.inc(page.len() as u64);
        }
        if version != len || store.stream_version(&name) != Some(len - 1) {
            problems.add(format!(
                "{name}: read {version} events and last version {:?} where {len} were appended",
                store.stream_version(&name)
            ));
        }
    }
    bar.finish_and_clear();
    Ok(in_reads)
}

/// Scans the global log in pages and checks that positions are dense and
/// that every stream's events come in version order with the right content;
/// returns the time spent inside `read_all`.
pub fn read_all(store: &Store, plan: Plan, problems: &mut Problems) -> Result<Duration, Failure> {
    let bar = progress_bar(plan.events, "read_all");
    let mut in_reads = Duration::ZERO;
    let mut scratch = Vec::new();
    let mut next_version = vec![0u64; plan.streams as usize];
    let mut position = 0u64;
    loop {
        let t0 = Instant::now();
        let page = store.read_all(position, ALL_PAGE)?;
        in_reads += t0.elapsed();
        if page.is_empty() {
            break;
        }
        for e in &page {
            if e.position != position {
                problems.add(format!(
                    "read_all gave position {} where {position} was expected",
                    e.position
                ));
            }
            position = e.position + 1;
            let Some(s) = demo_data::stream_number(&e.stream_id) else {
                problems.add(format!(
                    "position {}: unknown stream {}",
                    e.position, e.stream_id
                ));
                continue;
            };
            let Some(next) = next_version.get_mut(s as usize) else {
                problems.add(format!(
                    "position {}: stream {} is not one of the demo's",
                    e.position, e.stream_id
                ));
                continue;
            };
            if let Err(p) = demo_data::check(e, s, *next, &mut scratch) {
                problems.add(p);
            }
            *next = e.version + 1;
        }
        bar.inc(page.len() as u64);
    }
    bar.finish_and_clear();
    if position != plan.events {
        problems.add(format!(
            "read_all ended at position {position} where {} events were appended",
            plan.events
        ));
    }
    for (s, next) in next_version.iter().enumerate() {
        if *next != plan.stream_len(s as u64) {
            problems.add(format!(
                "read_all saw {} versions of {} where {} were appended",
                next,
                demo_data::stream_name(s as u64),
                plan.stream_len(s as u64)
            ));
        }
    }
    Ok(in_reads)
}
