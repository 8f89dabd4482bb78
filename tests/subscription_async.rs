//! Guards `Subscription` as a `futures_core::Stream` (the `async`
//! feature) under tokio: a thousand concurrent subscriptions, each a task
//! and none a thread, are woken by the commits of an appender and each
//! delivers every event once, in order, with `CaughtUp` where it belongs;
//! dropping the store ends every stream. Run with
//! `cargo test --features async --test subscription_async`.

#![cfg(feature = "async")]

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use annals::{
    Error, EventData, ExpectedVersion, Store, SubscribeFrom, Subscription, SubscriptionItem,
};
use futures_core::Stream;

const SUBSCRIBERS: usize = 1_000;
const BEFORE: u64 = 20;
const LIVE: u64 = 200;

async fn next(sub: &mut Subscription) -> Option<Result<SubscriptionItem, Error>> {
    std::future::poll_fn(|cx| Pin::new(&mut *sub).poll_next(cx)).await
}

/// The threads of this process, from /proc.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscriptions_are_woken_by_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(tmp.path()).unwrap());
    let one = |i: u64| [EventData::new("T", i.to_le_bytes().to_vec())];
    for i in 0..BEFORE {
        store.append("s", ExpectedVersion::Any, &one(i)).unwrap();
    }
    let threads_before = threads();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(SUBSCRIBERS);
    let tasks: Vec<_> = (0..SUBSCRIBERS)
        .map(|k| {
            // Half from the start, half after a checkpoint.
            let (from, first) = if k % 2 == 0 {
                (SubscribeFrom::Start, 0)
            } else {
                (SubscribeFrom::After(BEFORE / 2), BEFORE / 2 + 1)
            };
            let want = BEFORE + LIVE - first;
            let mut sub = store.subscribe_all(from, None).unwrap();
            let ready = ready_tx.clone();
            tokio::spawn(async move {
                let mut positions = Vec::new();
                let mut caught_up_at = None;
                while (positions.len() as u64) < want {
                    match next(&mut sub).await.expect("the store is open").unwrap() {
                        SubscriptionItem::Event(e) => positions.push(e.position),
                        SubscriptionItem::CaughtUp { position } => {
                            assert!(caught_up_at.is_none(), "CaughtUp once");
                            assert_eq!(position, BEFORE);
                            caught_up_at = Some(positions.len());
                            ready.send(()).await.unwrap();
                        }
                        SubscriptionItem::Checkpoint { .. } => panic!("no filter, no checkpoint"),
                    }
                }
                (k, positions, caught_up_at, sub)
            })
        })
        .collect();
    drop(ready_tx);
    // Every subscription has caught up and waits for live events.
    for _ in 0..SUBSCRIBERS {
        ready_rx.recv().await.unwrap();
    }
    // A thousand waiting subscriptions cost no thread each.
    assert!(
        threads() < threads_before + 16,
        "{} threads with {SUBSCRIBERS} subscriptions waiting (from {threads_before})",
        threads()
    );
    let appender = Arc::clone(&store);
    tokio::task::spawn_blocking(move || {
        for i in BEFORE..BEFORE + LIVE {
            appender.append("s", ExpectedVersion::Any, &one(i)).unwrap();
        }
    })
    .await
    .unwrap();
    let mut subs = Vec::new();
    for task in tasks {
        let (k, positions, caught_up_at, sub) = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("woken")
            .unwrap();
        let first = if k % 2 == 0 { 0 } else { BEFORE / 2 + 1 };
        assert_eq!(
            positions,
            (first..BEFORE + LIVE).collect::<Vec<_>>(),
            "subscriber {k}"
        );
        assert_eq!(
            caught_up_at,
            Some((BEFORE - first) as usize),
            "subscriber {k}"
        );
        subs.push(sub);
    }
    // Dropping the store ends every stream, after what was committed.
    drop(store);
    for mut sub in subs {
        assert!(next(&mut sub).await.is_none());
    }
}
