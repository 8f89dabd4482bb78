//! A replica mirrored from a shipped stream, while the origin's writer
//! appends and its shipper ships, holds the origin's events with every
//! field equal: positions, versions, ids, types, recorded-at times, data
//! and metadata bytes. The replica's files are read back through a fresh
//! read-only open, as another reader would, and a subscription on the
//! replica sees the same log.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use annals::{Store, SubscribeFrom, SubscriptionItem};
use annals_nats::MirrorOptions;

/// Held by both tests: one may fork a nats-server of its own while the
/// other closes a replica and a mirror reopens it at once, and a forked
/// child holds a copy of the replica's lock descriptor until it execs (see
/// the annals crate docs on the lock).
static TURNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_mirror_equals_its_origin() {
    let _turn = turn();
    let Some(server) = common::Server::any() else {
        return;
    };
    let mut rng = common::Rng::from_env("a_mirror_equals_its_origin");
    let origin = tempfile::tempdir().unwrap();
    let replica = tempfile::tempdir().unwrap();
    // An empty replica, so that it can be watched read-only from the start.
    Store::open(replica.path()).unwrap().close().unwrap();
    let store = Arc::new(Store::open(origin.path()).unwrap());
    common::append_events(&store, 5_000, 50, &mut rng);
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writer = common::spawn_writer(
        Arc::clone(&store),
        Arc::clone(&stop_writer),
        20_000,
        rng.fork(),
    );
    let name = common::stream_name("mirror");
    common::runtime().block_on(async {
        let js = common::jetstream(&server.url).await;
        let (stop_ship, shipper) =
            common::spawn_shipper(common::ship_options(origin.path(), &server.url, &name));
        let (stop_mirror, mirror) =
            common::spawn_mirror(MirrorOptions::new(replica.path(), &server.url, &name));
        common::wait_for_store(
            replica.path(),
            5_000,
            "mirroring while the origin is written",
        )
        .await;
        stop_writer.store(true, Ordering::Release);
        writer.join().unwrap();
        let total = store.global_position();
        common::wait_for_messages(&js, &name, total, "shipping the rest").await;
        common::wait_for_store(replica.path(), total, "mirroring the rest").await;
        stop_mirror.send(()).unwrap();
        let summary = mirror.await.unwrap().unwrap();
        assert_eq!(summary.next_position, total);
        stop_ship.send(()).unwrap();
        shipper.await.unwrap().unwrap();
    });
    let origin_events = common::read_store(origin.path());
    let replica_events = common::read_store(replica.path());
    assert_eq!(replica_events.len(), origin_events.len());
    for (r, o) in replica_events.iter().zip(&origin_events) {
        assert_eq!(
            r, o,
            "the replica's event at position {} differs",
            o.position
        );
    }
    for stream in ["order-1", "user.7", "ünïcode 3 *>"] {
        let o = store.read_stream(stream, 0, 100_000).ok();
        let replica = Store::open_read_only(replica.path()).unwrap();
        assert_eq!(
            replica.read_stream(stream, 0, 100_000).ok(),
            o,
            "stream {stream}"
        );
    }
    let replica = Store::open_read_only(replica.path()).unwrap();
    let mut sub = replica.subscribe_all(SubscribeFrom::Start, None).unwrap();
    let mut seen = 0;
    loop {
        match sub.next_timeout(Duration::from_secs(10)).unwrap() {
            Some(SubscriptionItem::Event(e)) => {
                assert_eq!(e, origin_events[seen]);
                seen += 1;
            }
            Some(SubscriptionItem::CaughtUp { .. }) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, origin_events.len());
}

/// A stream whose sequences do not start at 1 (it was purged before the
/// first event was shipped): the shipper starts after the purged
/// sequences, and a mirror that restarts finds the message holding its
/// last position by bisection rather than by `position + 1`.
#[test]
fn a_mirror_finds_its_place_when_sequences_are_offset() {
    let _turn = turn();
    let Some(server) = common::Server::any() else {
        return;
    };
    let mut rng = common::Rng::from_env("a_mirror_finds_its_place");
    let origin = tempfile::tempdir().unwrap();
    let replica = tempfile::tempdir().unwrap();
    Store::open(replica.path()).unwrap().close().unwrap();
    let store = Store::open(origin.path()).unwrap();
    common::append_events(&store, 300, 10, &mut rng);
    let name = common::stream_name("offset");
    common::runtime().block_on(async {
        let js = common::jetstream(&server.url).await;
        let stream = js
            .create_stream(async_nats::jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![format!("{name}.>")],
                ..Default::default()
            })
            .await
            .unwrap();
        for _ in 0..7 {
            js.publish(format!("{name}.junk"), "x".into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        stream.purge().await.unwrap();
        let (stop_ship, shipper) =
            common::spawn_shipper(common::ship_options(origin.path(), &server.url, &name));
        common::wait_for_messages(&js, &name, 300, "shipping after the purge").await;
        let (stop, mirror) =
            common::spawn_mirror(MirrorOptions::new(replica.path(), &server.url, &name));
        common::wait_for_store(replica.path(), 300, "the first mirror").await;
        stop.send(()).unwrap();
        mirror.await.unwrap().unwrap();
        common::append_events(&store, 200, 10, &mut rng);
        common::wait_for_messages(&js, &name, 500, "shipping the rest").await;
        let (stop, mirror) =
            common::spawn_mirror(MirrorOptions::new(replica.path(), &server.url, &name));
        common::wait_for_store(replica.path(), 500, "the second mirror").await;
        stop.send(()).unwrap();
        let summary = mirror.await.unwrap().unwrap();
        assert_eq!(
            summary.imported, 200,
            "the second mirror resumed where the first stopped"
        );
        stop_ship.send(()).unwrap();
        shipper.await.unwrap().unwrap();
        let shipped = common::read_jetstream(&js, &name).await;
        assert_eq!(shipped.first().map(|(seq, _)| *seq), Some(8));
    });
    assert_eq!(
        common::read_store(replica.path()),
        common::read_store(origin.path())
    );
}
