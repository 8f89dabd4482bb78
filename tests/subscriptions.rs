//! Guards the subscription promises in one process: a resume from any
//! checkpoint repeats and skips nothing; catch-up racing eight appenders
//! delivers exactly `read_all`; `CaughtUp` comes once, right after what
//! existed at subscribe time; a filtered subscription delivers what a model
//! filter keeps and checkpoints often enough; a checkpoint ahead of the log
//! is refused with both numbers; a dropped store ends every subscription
//! after what was committed; and a subscriber that never reads holds
//! nothing while the log grows.

mod common;

use std::sync::Arc;
use std::time::Duration;

use annals::{
    CHECKPOINT_EVENTS, Error, EventData, ExpectedVersion, Filter, Options, RecordedEvent,
    SUBSCRIPTION_PAGE_EVENTS, Store, SubscribeFrom, Subscription, SubscriptionItem,
};
use common::{Rng, Workload, seed};

/// How long a test waits for an item that must come; a failure, not a
/// pacing device.
const MUST_COME: Duration = Duration::from_secs(30);

fn next(sub: &mut Subscription) -> SubscriptionItem {
    sub.next_timeout(MUST_COME)
        .expect("subscription error")
        .expect("an item must come")
}

fn event(item: SubscriptionItem) -> RecordedEvent {
    match item {
        SubscriptionItem::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Takes events until `CaughtUp`, and returns them with its position.
fn until_caught_up(sub: &mut Subscription) -> (Vec<RecordedEvent>, u64) {
    let mut events = Vec::new();
    loop {
        match next(sub) {
            SubscriptionItem::Event(e) => events.push(e),
            SubscriptionItem::CaughtUp { position } => return (events, position),
            SubscriptionItem::Checkpoint { .. } => {}
        }
    }
}

fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}

/// A 10k-event log over 64 KiB segments, in batches of 1 to 20.
fn ten_k(dir: &std::path::Path) -> Store {
    let store = Store::open_with(dir, Options::default().segment_size(64 << 10)).unwrap();
    let mut rng = Rng::new(7);
    let mut n = 0u64;
    while n < 10_000 {
        let len = rng.between(1, 20).min(10_000 - n);
        let stream = format!("s-{}", rng.below(9));
        let batch: Vec<_> = (0..len)
            .map(|i| EventData::new("T", (n + i).to_le_bytes().to_vec()))
            .collect();
        store.append(&stream, ExpectedVersion::Any, &batch).unwrap();
        n += len;
    }
    assert!(store.stats().segments > 3);
    store
}

#[test]
fn a_resume_at_every_position_repeats_and_skips_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ten_k(tmp.path());
    let all = store.read_all(0, usize::MAX).unwrap();
    let n = all.len() as u64;
    let (from_start, end) =
        until_caught_up(&mut store.subscribe_all(SubscribeFrom::Start, None).unwrap());
    assert_eq!(end, n);
    assert_eq!(from_start, all);
    for p in 0..n {
        let mut sub = store.subscribe_all(SubscribeFrom::After(p), None).unwrap();
        if p + 1 == n {
            assert_eq!(next(&mut sub), SubscriptionItem::CaughtUp { position: n });
            continue;
        }
        let first = event(next(&mut sub));
        assert_eq!(first, all[p as usize + 1], "resume after {p}");
        // A run that stopped at p and one resumed after p make the log,
        // checked whole at every 500th position.
        if p % 500 == 0 {
            let (rest, at) = until_caught_up(&mut sub);
            assert_eq!(at, n);
            let joined: Vec<_> = from_start[..=p as usize]
                .iter()
                .chain([&first])
                .chain(&rest)
                .cloned()
                .collect();
            assert_eq!(joined, all, "resume after {p}");
        }
    }
}

#[test]
fn a_stream_subscription_resumes_by_version() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ten_k(tmp.path());
    let stream = "s-3";
    let all = store.read_stream(stream, 0, usize::MAX).unwrap();
    let count = all.len() as u64;
    for v in [0, 1, count / 2, count - 2] {
        let mut sub = store
            .subscribe_stream(stream, SubscribeFrom::After(v))
            .unwrap();
        let (rest, at) = until_caught_up(&mut sub);
        assert_eq!(at, count);
        assert_eq!(rest, all[v as usize + 1..], "after version {v}");
    }
    let (from_start, _) = until_caught_up(
        &mut store
            .subscribe_stream(stream, SubscribeFrom::Start)
            .unwrap(),
    );
    assert_eq!(from_start, all);
}

#[test]
fn catch_up_racing_eight_appenders_equals_read_all() {
    let seed = seed("catch_up_racing_eight_appenders");
    let tmp = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open_with(tmp.path(), Options::default().segment_size(256 << 10)).unwrap());
    for i in 0..200 {
        let w = Workload {
            seed,
            ..Workload::FIXED
        };
        w.append_next(&store, i).unwrap();
    }
    let initial = store.global_position();
    let threads = 8;
    let per_thread = 150;
    let start = std::sync::Barrier::new(threads + 1);
    let total = std::thread::scope(|scope| {
        let appenders: Vec<_> = (0..threads)
            .map(|t| {
                let (store, start) = (&store, &start);
                scope.spawn(move || {
                    let mut rng = Rng::new(seed ^ t as u64);
                    let mut written = 0u64;
                    start.wait();
                    for i in 0..per_thread {
                        let len = rng.between(1, 5);
                        let batch: Vec<_> = (0..len)
                            .map(|k| EventData::new("Raced", format!("{t}/{i}/{k}").into_bytes()))
                            .collect();
                        store
                            .append(&format!("race-{t}"), ExpectedVersion::Any, &batch)
                            .unwrap();
                        written += len;
                    }
                    written
                })
            })
            .collect();
        // The subscription is made while the appenders run.
        start.wait();
        let mut sub = store.subscribe_all(SubscribeFrom::Start, None).unwrap();
        let written: u64 = appenders.into_iter().map(|h| h.join().unwrap()).sum();
        let total = store.global_position();
        assert_eq!(
            total,
            initial + written,
            "every acknowledged event is in the log"
        );
        let mut got = Vec::new();
        let mut caught_up = 0;
        while (got.len() as u64) < total {
            match next(&mut sub) {
                SubscriptionItem::Event(e) => got.push(e),
                SubscriptionItem::CaughtUp { position } => {
                    caught_up += 1;
                    assert_eq!(
                        position,
                        got.len() as u64,
                        "CaughtUp right after the events before it"
                    );
                }
                other => panic!("unfiltered subscriptions send no {other:?}"),
            }
        }
        assert_eq!(caught_up, 1, "CaughtUp exactly once (seed {seed})");
        assert_eq!(got, store.read_all(0, usize::MAX).unwrap(), "seed {seed}");
        assert_eq!(sub.next_timeout(Duration::ZERO).unwrap(), None);
        total
    });
    assert!(total >= 200 + (threads * per_thread) as u64);
}

#[test]
fn caught_up_comes_once_after_what_existed_at_subscribe_time() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let one = |s: &str| [EventData::new("T", s.as_bytes().to_vec())];

    // An empty store: CaughtUp at once, from Start and from End.
    for from in [SubscribeFrom::Start, SubscribeFrom::End] {
        let mut sub = store.subscribe_all(from, None).unwrap();
        assert_eq!(next(&mut sub), SubscriptionItem::CaughtUp { position: 0 });
        assert_eq!(sub.next_timeout(Duration::ZERO).unwrap(), None);
    }
    let mut early = store.subscribe_all(SubscribeFrom::Start, None).unwrap();
    for i in 0..5 {
        store
            .append("a", ExpectedVersion::Any, &one(&i.to_string()))
            .unwrap();
    }
    let mut start = store.subscribe_all(SubscribeFrom::Start, None).unwrap();
    let mut end = store.subscribe_all(SubscribeFrom::End, None).unwrap();
    let mut after = store.subscribe_all(SubscribeFrom::After(2), None).unwrap();
    let mut stream = store.subscribe_stream("a", SubscribeFrom::Start).unwrap();
    let mut fresh_stream = store.subscribe_stream("b", SubscribeFrom::Start).unwrap();
    // Appended after the subscriptions were made, before anything is read:
    // it comes after CaughtUp.
    store
        .append("a", ExpectedVersion::Any, &one("late"))
        .unwrap();
    store.append("b", ExpectedVersion::Any, &one("b")).unwrap();

    let order = |sub: &mut Subscription, n: usize| -> Vec<String> {
        (0..n)
            .map(|_| match next(sub) {
                SubscriptionItem::Event(e) => format!("#{}", e.position),
                SubscriptionItem::CaughtUp { position } => format!("up{position}"),
                SubscriptionItem::Checkpoint { position } => format!("cp{position}"),
            })
            .collect()
    };
    assert_eq!(
        order(&mut early, 8),
        ["up0", "#0", "#1", "#2", "#3", "#4", "#5", "#6"]
    );
    assert_eq!(
        order(&mut start, 8),
        ["#0", "#1", "#2", "#3", "#4", "up5", "#5", "#6"]
    );
    assert_eq!(order(&mut end, 3), ["up5", "#5", "#6"]);
    assert_eq!(order(&mut after, 5), ["#3", "#4", "up5", "#5", "#6"]);
    assert_eq!(
        order(&mut stream, 7),
        ["#0", "#1", "#2", "#3", "#4", "up5", "#5"]
    );
    assert_eq!(order(&mut fresh_stream, 2), ["up0", "#6"]);
    for sub in [
        &mut early,
        &mut start,
        &mut end,
        &mut after,
        &mut stream,
        &mut fresh_stream,
    ] {
        assert_eq!(sub.next_timeout(Duration::from_millis(1)).unwrap(), None);
    }
}

#[test]
fn filtered_subscriptions_equal_a_model_filter_and_checkpoint_often() {
    let seed = seed("filtered_subscriptions");
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_with(tmp.path(), Options::default().segment_size(64 << 10)).unwrap();
    let mut rng = Rng::new(seed);
    let mut append_random = |store: &Store, n: u64| {
        for _ in 0..n {
            // Rare streams are 1 in 400, so runs of non-matches pass 1,000.
            let stream = if rng.below(400) == 0 {
                "rare-1".to_owned()
            } else {
                format!("common-{}", rng.below(5))
            };
            let ty = format!("Type{}", rng.below(3));
            store
                .append(
                    &stream,
                    ExpectedVersion::Any,
                    &[EventData::new(ty, Vec::new())],
                )
                .unwrap();
        }
    };
    append_random(&store, 4_000);
    type Model = fn(&RecordedEvent) -> bool;
    let cases: Vec<(Filter, Model)> = vec![
        (Filter::stream_prefix("rare-"), |e| {
            e.stream_id.starts_with("rare-")
        }),
        (Filter::event_types(["Type1"]), |e| {
            &*e.event_type == "Type1"
        }),
        (
            Filter::stream_prefixes(["common-1", "rare-"]).and(Filter::event_types(["Type2"])),
            |e| {
                (e.stream_id.starts_with("common-1") || e.stream_id.starts_with("rare-"))
                    && &*e.event_type == "Type2"
            },
        ),
        (Filter::event_types(["Never"]), |_| false),
    ];
    let mut subs: Vec<_> = cases
        .iter()
        .map(|(f, _)| {
            store
                .subscribe_all(SubscribeFrom::Start, Some(f.clone()))
                .unwrap()
        })
        .collect();
    let live_from = store.global_position();
    append_random(&store, 2_500);
    let end = store.global_position();
    let everything = store.read_all(0, usize::MAX).unwrap();
    for ((filter, model), sub) in cases.iter().zip(&mut subs) {
        let want: Vec<_> = everything.iter().filter(|e| model(e)).cloned().collect();
        let mut got = Vec::new();
        // Every delivered position (event or checkpoint), to measure gaps.
        let mut marks = vec![];
        let mut caught_up = false;
        let mut last_checkpoint = None;
        while !caught_up || got.len() < want.len() {
            match next(sub) {
                SubscriptionItem::Event(e) => {
                    assert!(model(&e), "{filter:?} delivered {e:?}");
                    marks.push(e.position);
                    got.push(e);
                }
                SubscriptionItem::Checkpoint { position } => {
                    assert!(marks.last().is_none_or(|m| *m < position));
                    marks.push(position);
                    last_checkpoint = Some(position);
                }
                SubscriptionItem::CaughtUp { position } => {
                    assert!(!caught_up);
                    caught_up = true;
                    assert_eq!(position, live_from);
                    // A checkpoint (or a match) right before CaughtUp.
                    assert_eq!(
                        marks.last(),
                        Some(&(live_from - 1)),
                        "{filter:?} (seed {seed})"
                    );
                }
            }
        }
        assert!(caught_up);
        assert_eq!(got, want, "{filter:?} (seed {seed})");
        // Past the last mark, fewer unmatched events than a checkpoint is
        // due after, and nothing more comes.
        while let Some(item) = sub.next_timeout(Duration::ZERO).unwrap() {
            let SubscriptionItem::Checkpoint { position } = item else {
                panic!("{filter:?}: only checkpoints may follow, got {item:?} (seed {seed})");
            };
            marks.push(position);
            last_checkpoint = Some(position);
        }
        assert!(end - 1 - marks.last().copied().unwrap_or(0) < CHECKPOINT_EVENTS);
        let mut at = None;
        for m in &marks {
            let gap = m - at.map_or(0, |a: u64| a + 1);
            assert!(
                gap < CHECKPOINT_EVENTS,
                "{filter:?}: {gap} unmatched events without a checkpoint (seed {seed})"
            );
            at = Some(*m);
        }
        // A stored checkpoint resumes exactly there.
        if let Some(cp) = last_checkpoint {
            let mut resumed = store
                .subscribe_all(SubscribeFrom::After(cp), Some(filter.clone()))
                .unwrap();
            let (rest, _) = until_caught_up(&mut resumed);
            let tail: Vec<_> = want.iter().filter(|e| e.position > cp).cloned().collect();
            assert_eq!(rest, tail, "{filter:?} after checkpoint {cp} (seed {seed})");
        }
    }
}

#[test]
fn a_checkpoint_ahead_of_the_log_is_refused_with_both_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let refused = store.subscribe_all(SubscribeFrom::After(0), None);
    assert!(matches!(
        refused,
        Err(Error::CheckpointAhead {
            checkpoint: 0,
            end: 0,
            stream: None
        })
    ));
    for _ in 0..3 {
        store
            .append("s", ExpectedVersion::Any, &[EventData::new("T", vec![])])
            .unwrap();
    }
    for checkpoint in [3, 4, u64::MAX] {
        let Err(e) = store.subscribe_all(SubscribeFrom::After(checkpoint), None) else {
            panic!("checkpoint {checkpoint} must be refused");
        };
        assert!(matches!(e, Error::CheckpointAhead { end: 3, .. }));
        let text = e.to_string();
        assert!(
            text.contains(&checkpoint.to_string()) && text.contains("3 events"),
            "{text}"
        );
    }
    let e = store
        .subscribe_stream("s", SubscribeFrom::After(3))
        .unwrap_err();
    assert!(
        matches!(&e, Error::CheckpointAhead { checkpoint: 3, end: 3, stream: Some(s) } if s == "s"),
        "{e}"
    );
    let e = store
        .subscribe_stream("new", SubscribeFrom::After(0))
        .unwrap_err();
    assert!(matches!(
        e,
        Error::CheckpointAhead {
            checkpoint: 0,
            end: 0,
            ..
        }
    ));
    // The last event is a valid checkpoint.
    let mut sub = store.subscribe_all(SubscribeFrom::After(2), None).unwrap();
    assert_eq!(next(&mut sub), SubscriptionItem::CaughtUp { position: 3 });
    let bad = store.subscribe_stream("", SubscribeFrom::Start);
    assert!(matches!(bad, Err(Error::InvalidStreamId { .. })));
    let bad = store.subscribe_stream("a\nb", SubscribeFrom::Start);
    assert!(matches!(bad, Err(Error::InvalidStreamId { .. })));
    assert_eq!(store.global_position(), 3);
}

#[test]
fn a_dropped_store_ends_subscriptions_after_what_was_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut unread = store.subscribe_all(SubscribeFrom::Start, None).unwrap();
    let mut stream = store.subscribe_stream("s", SubscribeFrom::Start).unwrap();
    let mut timed = store.subscribe_all(SubscribeFrom::End, None).unwrap();
    let mut blocked = store.subscribe_all(SubscribeFrom::End, None).unwrap();
    assert_eq!(
        next(&mut blocked),
        SubscriptionItem::CaughtUp { position: 0 }
    );
    let (tx, rx) = std::sync::mpsc::channel();
    // A subscriber blocked in `next` when the store goes.
    let waiter = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for item in blocked.by_ref() {
            let e = event(item.unwrap());
            tx.send(e.position).unwrap();
            seen.push(e.position);
        }
        (seen, blocked.next_timeout(Duration::ZERO).map(|_| ()))
    });
    let batch: Vec<_> = (0..1_500)
        .map(|i| EventData::new("T", vec![i as u8]))
        .collect();
    store.append("s", ExpectedVersion::Any, &batch).unwrap();
    // The waiter has the first event before the drop, so it was blocked.
    assert_eq!(rx.recv_timeout(MUST_COME).unwrap(), 0);
    drop(store);
    let (seen, after) = waiter.join().unwrap();
    assert_eq!(seen, (0..1_500).collect::<Vec<_>>());
    assert!(matches!(after, Err(Error::StoreClosed)));

    // Nothing was read before the drop: everything committed still comes.
    let (events, at) = until_caught_up(&mut unread);
    assert_eq!((positions(&events).len(), at), (0, 0));
    let rest: Vec<_> = unread
        .by_ref()
        .map(|i| event(i.unwrap()).position)
        .collect();
    assert_eq!(rest, (0..1_500).collect::<Vec<_>>());
    assert!(unread.next().is_none(), "ended for good");
    let (_, _) = until_caught_up(&mut stream);
    assert_eq!(stream.by_ref().count(), 1_500);
    assert_eq!(next(&mut timed), SubscriptionItem::CaughtUp { position: 0 });
    for _ in 0..1_500 {
        event(next(&mut timed));
    }
    assert!(matches!(
        timed.next_timeout(MUST_COME),
        Err(Error::StoreClosed)
    ));
}

#[test]
fn close_ends_subscriptions_too() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[EventData::new("T", vec![])])
        .unwrap();
    let sub = store.subscribe_all(SubscribeFrom::Start, None).unwrap();
    store.close().unwrap();
    let items: Vec<_> = sub.map(Result::unwrap).collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1], SubscriptionItem::CaughtUp { position: 1 });
}

#[test]
fn a_subscriber_that_never_reads_holds_nothing_while_the_log_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut idle = store.subscribe_all(SubscribeFrom::Start, None).unwrap();
    assert_eq!(next(&mut idle), SubscriptionItem::CaughtUp { position: 0 });
    let batch: Vec<_> = (0..1_000)
        .map(|_| EventData::new("T", vec![0; 16]))
        .collect();
    for _ in 0..100 {
        store.append("s", ExpectedVersion::Any, &batch).unwrap();
        assert_eq!(
            idle.buffered(),
            0,
            "a subscription holds nothing it was not asked for"
        );
    }
    assert_eq!(store.global_position(), 100_000);
    // Reading holds one page at most, and delivers everything in order.
    let mut expect = 0;
    while expect < 100_000 {
        let e = event(next(&mut idle));
        assert_eq!(e.position, expect);
        assert!(idle.buffered() < SUBSCRIPTION_PAGE_EVENTS);
        expect += 1;
    }
    assert_eq!(idle.next_timeout(Duration::ZERO).unwrap(), None);
}

#[test]
fn a_follow_interval_out_of_bounds_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    Store::open(tmp.path()).unwrap().close().unwrap();
    for bad in [
        Duration::ZERO,
        Duration::from_micros(999),
        Duration::from_secs(61),
    ] {
        let options = Options::default().follow_interval(bad);
        let refused = Store::open_read_only_with(tmp.path(), options.clone());
        assert!(
            matches!(&refused, Err(Error::InvalidOptions { reason }) if reason.contains("follow_interval")),
            "{bad:?}: {refused:?}"
        );
        assert!(matches!(
            Store::open_with(tmp.path(), options),
            Err(Error::InvalidOptions { .. })
        ));
    }
    let ok = Options::default().follow_interval(Duration::from_millis(1));
    assert!(Store::open_read_only_with(tmp.path(), ok).is_ok());
    let long = "x".repeat(257);
    let store = Store::open(tmp.path()).unwrap();
    let refused = store.subscribe_stream(&long, SubscribeFrom::Start);
    assert!(matches!(refused, Err(Error::InvalidStreamId { .. })));
}
