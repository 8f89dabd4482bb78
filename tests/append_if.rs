//! Guards conditional appends (`append_if`, `append_multi_if`): a condition
//! refuses the append, writing nothing, exactly when an event passing its
//! filter lies after its position, and the refusal names the first such
//! event. Checked against a naive model (a scan of the whole log) over
//! random logs, filters and positions, across segment rotations and
//! reopens, through both ways the check finds candidates (by streams and by
//! event types); and from 8 threads reserving seats, where no seat may be
//! reserved twice.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use annals::{
    AppendCondition, Error, EventData, ExpectedVersion, Filter, Limit, MAX_FILTER_TERMS, Options,
    Store, StreamAppend,
};
use common::{Rng, seed};
use proptest::prelude::*;

fn ev(t: &str) -> EventData {
    EventData::new(t, b"{}".to_vec())
}

/// The first event of the whole log after `after` that passes `filter`: the
/// model the check is held to.
fn naive_first_match(store: &Store, filter: &Filter, after: Option<u64>) -> Option<u64> {
    let from = after.map_or(0, |a| a + 1);
    store
        .read_all(from, usize::MAX)
        .unwrap()
        .into_iter()
        .find(|e| filter.matches_event(e))
        .map(|e| e.position)
}

#[test]
fn refusal_names_the_first_matching_event_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("seat-1", ExpectedVersion::Any, &[ev("SeatReserved")])
        .unwrap(); // 0
    store
        .append("seat-2", ExpectedVersion::Any, &[ev("SeatReserved")])
        .unwrap(); // 1
    store
        .append("other", ExpectedVersion::Any, &[ev("SeatReserved")])
        .unwrap(); // 2
    store
        .append("seat-1", ExpectedVersion::Any, &[ev("Cleaned")])
        .unwrap(); // 3
    store
        .append("seat-1", ExpectedVersion::Any, &[ev("SeatReleased")])
        .unwrap(); // 4
    let seat1 = || {
        Filter::event_types(["SeatReserved", "SeatReleased"]).and(Filter::stream_prefix("seat-1"))
    };
    let cases: [(Filter, Option<u64>, Option<u64>); 7] = [
        (seat1(), None, Some(0)),
        (seat1(), Some(0), Some(4)),
        (seat1(), Some(4), None),
        (Filter::event_types(["SeatReserved"]), Some(0), Some(1)),
        (Filter::event_types(["SeatReserved"]), Some(2), None),
        (Filter::stream_prefix("oth"), Some(1), Some(2)),
        (Filter::event_types(["Nope"]), None, None),
    ];
    for (filter, after, want) in cases {
        let before = store.global_position();
        let cond = AppendCondition::new(filter.clone(), after);
        let r = store.append_if(&cond, "log", &[ev("Tried")]);
        match want {
            Some(position) => {
                assert!(
                    matches!(r, Err(Error::AppendConditionFailed { position: p }) if p == position),
                    "{filter:?} after {after:?}: {r:?}"
                );
                assert_eq!(store.global_position(), before, "a refused append wrote");
            }
            None => {
                let r = r.unwrap();
                assert_eq!(r.first_position(), before);
            }
        }
    }
}

#[test]
fn a_position_past_the_end_is_refused_and_bad_filters_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cond = AppendCondition::new(Filter::stream_prefix("a"), Some(0));
    let r = store.append_if(&cond, "a", &[ev("T")]);
    assert!(
        matches!(
            r,
            Err(Error::CheckpointAhead {
                checkpoint: 0,
                end: 0,
                ..
            })
        ),
        "{r:?}"
    );
    // With nothing in the log, `None` passes.
    let cond = AppendCondition::new(Filter::stream_prefix("a"), None);
    store.append_if(&cond, "a", &[ev("T")]).unwrap();
    let too_many = Filter::event_types((0..=MAX_FILTER_TERMS).map(|i| i.to_string()));
    let r = store.append_if(&AppendCondition::new(too_many, None), "a", &[ev("T")]);
    assert!(
        matches!(
            r,
            Err(Error::LimitExceeded {
                limit: Limit::FilterTerms,
                ..
            })
        ),
        "{r:?}"
    );
    let r = store.append_if(
        &AppendCondition::new(Filter::stream_prefix("z"), Some(5)),
        "a",
        &[ev("T")],
    );
    assert!(
        matches!(
            r,
            Err(Error::CheckpointAhead {
                checkpoint: 5,
                end: 1,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(store.global_position(), 1);
}

#[test]
fn append_multi_if_checks_the_condition_then_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("order-1", ExpectedVersion::Any, &[ev("OrderPlaced")])
        .unwrap();
    let parts = |expected| {
        vec![
            StreamAppend::new("order-1", expected, vec![ev("OrderShipped")]),
            StreamAppend::new("stock-1", ExpectedVersion::Any, vec![ev("StockReserved")]),
        ]
    };
    let cond = AppendCondition::new(Filter::event_types(["StockReserved"]), None);
    // The condition passes, a part does not: refused, naming the part.
    let r = store.append_multi_if(&cond, &parts(ExpectedVersion::Exact(3)));
    assert!(
        matches!(r, Err(Error::WrongExpectedVersion { ref stream, .. }) if stream == "order-1"),
        "{r:?}"
    );
    let rs = store
        .append_multi_if(&cond, &parts(ExpectedVersion::Exact(0)))
        .unwrap();
    assert_eq!(rs[1].positions, 2..3);
    // Now a StockReserved exists: the same condition fails, naming it.
    let r = store.append_multi_if(&cond, &parts(ExpectedVersion::Exact(1)));
    assert!(
        matches!(r, Err(Error::AppendConditionFailed { position: 2 })),
        "{r:?}"
    );
    assert_eq!(store.global_position(), 3);
}

/// Random logs over a few streams and types, across rotations of small
/// segments and reopens; random filters (prefixes, types, both; with
/// enough streams that the check goes by types) and positions. Each
/// conditional append must pass or fail exactly as the naive model says.
#[test]
fn conditions_agree_with_a_scan_of_the_whole_log() {
    let seed = seed("append_if_model");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::default().segment_size(8 << 10);
    let mut store = Store::open_with(dir.path(), options()).unwrap();
    let (mut passed, mut refused) = (0u64, 0u64);
    let prefixes = ["a-", "a-1", "b-", "ab", "", "c-9"];
    let types = ["X", "Y", "Z", "W"];
    let stream = |rng: &mut Rng| -> String {
        match rng.below(4) {
            0 => format!("a-{}", rng.below(3)),
            1 => format!("b-{}", rng.below(3)),
            2 => format!("ab{}", rng.below(2)),
            // Many streams: a prefix of "c-" matches more than the check's
            // cap, so filters with types go by the type summaries.
            _ => format!("c-{}", rng.below(1_500)),
        }
    };
    for round in 0..1_200u64 {
        if round % 400 == 399 {
            drop(store);
            store = Store::open_with(dir.path(), options()).unwrap();
        }
        let s = stream(&mut rng);
        let t = types[rng.below(types.len() as u64) as usize];
        if rng.percent(60) {
            let n = rng.between(1, 3);
            let events: Vec<EventData> = (0..n).map(|_| ev(t)).collect();
            store.append(&s, ExpectedVersion::Any, &events).unwrap();
            continue;
        }
        let mut filter = match rng.below(3) {
            0 => Filter::stream_prefix(prefixes[rng.below(prefixes.len() as u64) as usize]),
            1 => Filter::event_types([types[rng.below(4) as usize], types[rng.below(4) as usize]]),
            _ => Filter::event_types([types[rng.below(4) as usize]]).and(Filter::stream_prefix(
                prefixes[rng.below(prefixes.len() as u64) as usize],
            )),
        };
        if rng.percent(10) {
            filter = filter.and(Filter::stream_prefix("c-"));
        }
        let end = store.global_position();
        let after = match end {
            0 => None,
            _ if rng.percent(10) => None,
            _ if rng.percent(50) => Some(end - 1 - rng.below(end.min(20))),
            _ => Some(rng.below(end)),
        };
        let want = naive_first_match(&store, &filter, after);
        let cond = AppendCondition::new(filter.clone(), after);
        let got = store.append_if(&cond, &s, &[ev(t)]);
        match (want, got) {
            (Some(p), Err(Error::AppendConditionFailed { position })) => {
                assert_eq!(
                    position, p,
                    "round {round}: {filter:?} after {after:?} (seed {seed})"
                );
                refused += 1;
            }
            (None, Ok(r)) => {
                assert_eq!(r.first_position(), end);
                passed += 1;
            }
            (want, got) => panic!(
                "round {round}: {filter:?} after {after:?}: model {want:?}, store {got:?} (seed {seed})"
            ),
        }
    }
    eprintln!("{passed} conditions passed, {refused} refused");
    assert!(
        passed > 20 && refused > 20,
        "the model test exercised too little"
    );
}

/// One seat-reservation run: `threads` threads each try `attempts` times to
/// reserve a random seat of `seats`, deciding on what they read and
/// appending on the condition that nothing about the seat was appended
/// since. Returns the log.
fn reserve_seats(seed: u64, threads: usize, seats: u64, attempts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let types = || Filter::event_types(["SeatReserved", "SeatReleased"]);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let store = Arc::clone(&store);
            scope.spawn(move || {
                let mut rng = Rng::new(common::mix(seed, t as u64));
                for _ in 0..attempts {
                    let seat = format!("seat-{}", rng.below(seats));
                    // The decision: is the seat free, as of `end`?
                    let end = store.global_position();
                    let filter = types().and(Filter::stream_prefix(seat.clone()));
                    let seen = store.read_all_filtered(0, usize::MAX, &filter).unwrap();
                    let taken = seen
                        .events
                        .iter()
                        .any(|e| e.position < end && &*e.event_type == "SeatReserved");
                    if taken {
                        continue;
                    }
                    let after = end.checked_sub(1);
                    let cond = AppendCondition::new(filter.clone(), after);
                    let data = format!("{t}").into_bytes();
                    match store.append_if(&cond, &seat, &[EventData::new("SeatReserved", data)]) {
                        Ok(_) => {}
                        Err(Error::AppendConditionFailed { position }) => {
                            // The refusal names an event that really matched,
                            // after the position the decision saw.
                            assert!(after.is_none_or(|a| position > a));
                            let named = store.read_all(position, 1).unwrap();
                            assert_eq!(named.len(), 1, "seed {seed}");
                            assert!(
                                filter.matches_event(&named[0]),
                                "seed {seed}: {:?}",
                                named[0]
                            );
                            // And the first one: nothing matched between.
                            let from = after.map_or(0, |a| a + 1);
                            let between = store.read_all(from, (position - from) as usize).unwrap();
                            assert!(
                                between.iter().all(|e| !filter.matches_event(e)),
                                "seed {seed}"
                            );
                        }
                        Err(e) => panic!("seed {seed}: {e}"),
                    }
                }
            });
        }
    });
    let mut reserved: HashMap<String, u64> = HashMap::new();
    for e in store.read_all(0, usize::MAX).unwrap() {
        assert_eq!(&*e.event_type, "SeatReserved");
        let before = reserved.insert(e.stream_id.to_string(), e.position);
        assert!(
            before.is_none(),
            "seed {seed}: {} reserved twice, at {before:?} and {}",
            e.stream_id,
            e.position
        );
    }
    assert!(!reserved.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    /// 8 threads race for few seats: no seat is ever reserved twice, and
    /// every refusal names an event that really matched.
    #[test]
    fn eight_threads_never_reserve_a_seat_twice(seats in 1u64..12, attempts in 5usize..30, salt in any::<u64>()) {
        let seed = common::mix(seed("seat_reservation"), salt);
        reserve_seats(seed, 8, seats, attempts);
    }
}
