//! Shipping and mirroring a log with gaps, against a real nats-server: an
//! origin with soft deletes, a tombstone, a truncation, limits (set,
//! scavenged into a truncation, lifted) and a scavenge that removed a
//! stretch of more than one read's worth of events. A replica mirrored
//! from a stream shipped as the origin went (across a shipper restart and
//! a mirror restart) and one from a stream shipped after the scavenge
//! (so full of gaps) both read exactly as the origin: `read_all`, every
//! stream with its errors, `stream_version`, `global_position`. And a
//! message removed from JetStream is found and refused, not taken as a
//! gap.

mod common;

use std::time::Instant;

use annals::replication::READ_LOG_SCAN_POSITIONS;
use annals::{Error as StoreError, EventData, ExpectedVersion, Store, StreamLimits};
use annals_nats::{Error, MirrorOptions};
use async_nats::jetstream;
use futures_util::StreamExt as _;

const STREAMS: [&str; 12] = [
    "a-0",
    "a-1",
    "a-2",
    "del",
    "tomb",
    "trunc",
    "lim",
    "gone",
    "ünï del.x",
    "bulk",
    "new",
    "never",
];

fn add(store: &Store, stream: &str, n: usize) {
    for i in 0..n {
        store
            .append(
                stream,
                ExpectedVersion::Any,
                &[EventData::new("E", format!("{stream}-{i}").into_bytes())
                    .with_metadata(vec![0, 255, i as u8])],
            )
            .unwrap();
    }
}

/// The events every later step works on; all shipped before any of
/// them is removed.
fn first_part(s: &Store) {
    for a in ["a-0", "a-1", "a-2"] {
        add(s, a, 15);
    }
    add(s, "del", 5);
    add(s, "tomb", 4);
    add(s, "trunc", 6);
    add(s, "lim", 8);
    add(s, "gone", 3);
    add(s, "ünï del.x", 2);
}

/// Every kind of removal, a scavenge, and more after it. The bulk stream
/// is appended and deleted while no shipper runs, so that its events are
/// gaps by the time one reads them: more of them than one read of the log
/// examines, which ships a gap message.
fn removals(s: &Store) {
    s.delete_stream("del", ExpectedVersion::Any).unwrap();
    add(s, "del", 2);
    s.tombstone_stream("tomb", ExpectedVersion::Any).unwrap();
    s.truncate_stream_before("trunc", 3).unwrap();
    s.set_stream_limits("lim", StreamLimits::default().max_count(3))
        .unwrap();
    s.delete_stream("gone", ExpectedVersion::Any).unwrap();
    s.tombstone_stream("ünï del.x", ExpectedVersion::Any)
        .unwrap();
    let bulk = (READ_LOG_SCAN_POSITIONS as usize).div_ceil(1000) * 1000 + 2000;
    for _ in 0..bulk / 1000 {
        let events: Vec<EventData> = (0..1000).map(|_| EventData::new("B", vec![7])).collect();
        s.append("bulk", ExpectedVersion::Any, &events).unwrap();
    }
    s.delete_stream("bulk", ExpectedVersion::Any).unwrap();
    let report = s.scavenge().unwrap();
    assert!(report.events_removed as usize > bulk, "{report:?}");
}

/// What comes after the scavenge, shipped live.
fn after_scavenge(s: &Store) {
    add(s, "del", 1);
    s.delete_stream("a-1", ExpectedVersion::Any).unwrap();
    s.set_stream_limits("a-2", StreamLimits::default().max_count(1))
        .unwrap();
    s.set_stream_limits("a-2", StreamLimits::default()).unwrap();
    add(s, "a-2", 2);
    add(s, "new", 3);
}

/// Everything a reader can ask both stores, compared.
fn assert_reads_as(origin: &Store, replica_dir: &std::path::Path) {
    let replica = Store::open_read_only(replica_dir).unwrap();
    assert_eq!(replica.global_position(), origin.global_position());
    assert_eq!(
        replica.read_all(0, usize::MAX).unwrap(),
        origin.read_all(0, usize::MAX).unwrap()
    );
    for stream in STREAMS {
        assert_eq!(
            replica.stream_version(stream),
            origin.stream_version(stream),
            "{stream}"
        );
        let (o, r) = (
            origin.read_stream(stream, 0, usize::MAX),
            replica.read_stream(stream, 0, usize::MAX),
        );
        match (&o, &r) {
            (Ok(o), Ok(r)) => assert_eq!(o, r, "{stream}"),
            (Err(o), Err(r)) => assert_eq!(o.to_string(), r.to_string(), "{stream}"),
            _ => panic!("{stream}: origin {o:?}, replica {r:?}"),
        }
    }
    assert!(matches!(
        replica.read_stream("tomb", 0, 10),
        Err(StoreError::StreamDeleted { .. })
    ));
    assert!(matches!(
        replica.read_stream("gone", 0, 10),
        Err(StoreError::StreamNotFound { .. })
    ));
}

/// Waits until JetStream stream `name`'s last message stands at
/// `position`.
async fn wait_shipped(js: &jetstream::Context, name: &str, position: u64) {
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        if let Ok(mut stream) = js.get_stream(name).await {
            let info = stream.info().await.unwrap().clone();
            if info.state.messages > 0 {
                let m = stream
                    .get_raw_message(info.state.last_sequence)
                    .await
                    .unwrap();
                let (at, _) = annals_nats::wire::position_and_id(Some(&m.headers)).unwrap();
                if at >= position {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not reach position {position}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Every message of JetStream stream `name`, decoded.
async fn messages(js: &jetstream::Context, name: &str) -> Vec<annals_nats::wire::Shipped> {
    let mut stream = js.get_stream(name).await.unwrap();
    let total = stream.info().await.unwrap().state.messages;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        let m = tokio::time::timeout(common::DEADLINE, messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        out.push(
            annals_nats::wire::decode_message(
                m.subject.as_str(),
                m.headers.as_ref(),
                m.payload.clone(),
            )
            .unwrap(),
        );
    }
    out
}

#[test]
fn replicas_of_a_log_with_gaps_read_as_the_origin() {
    let Some(server) = common::Server::any() else {
        return;
    };
    let origin_dir = tempfile::tempdir().unwrap();
    let live = tempfile::tempdir().unwrap();
    let late = tempfile::tempdir().unwrap();
    // Empty replicas, so that they can be watched read-only from the start.
    for dir in [&live, &late] {
        Store::open(dir.path()).unwrap().close().unwrap();
    }
    let origin = Store::open_with(
        origin_dir.path(),
        annals::Options::default().segment_size(1 << 20),
    )
    .unwrap();
    let live_name = common::stream_name("gaps_live");
    let late_name = common::stream_name("gaps_late");
    common::runtime().block_on(async {
        let js = common::jetstream(&server.url).await;
        // Shipped as the origin goes: the first part, then (the shipper
        // stopped) the removals and the scavenge, then (a new shipper,
        // resuming after JetStream's last message) what follows.
        let ship_live = || common::ship_options(origin_dir.path(), &server.url, &live_name);
        let (stop, shipper) = common::spawn_shipper(ship_live());
        first_part(&origin);
        wait_shipped(&js, &live_name, origin.global_position() - 1).await;
        stop.send(()).unwrap();
        shipper.await.unwrap().unwrap();
        removals(&origin);
        let (stop, shipper) = common::spawn_shipper(ship_live());
        after_scavenge(&origin);
        let last = origin.global_position() - 1;
        wait_shipped(&js, &live_name, last).await;
        stop.send(()).unwrap();
        let summary = shipper.await.unwrap().unwrap();
        assert_eq!(summary.last_position, Some(last));

        // Shipped from scratch after the scavenge: gaps where events
        // were removed, a gap message for the long stretch.
        let (stop, shipper) = common::spawn_shipper(common::ship_options(
            origin_dir.path(),
            &server.url,
            &late_name,
        ));
        wait_shipped(&js, &late_name, last).await;
        stop.send(()).unwrap();
        shipper.await.unwrap().unwrap();
        let shipped = messages(&js, &late_name).await;
        assert!(
            shipped.iter().any(|m| m.record.is_none()),
            "no gap message was shipped"
        );
        assert!(
            shipped
                .iter()
                .any(|m| m.record.as_ref().is_some_and(|r| r.is_control()))
        );
        assert!((shipped.len() as u64) < origin.global_position() / 2);
        for pair in shipped.windows(2) {
            assert_eq!(pair[1].follows, Some(pair[0].position));
        }

        // The live stream's replica, stopped part way and mirrored again.
        let mut options = MirrorOptions::new(live.path(), &server.url, &live_name);
        options.max_batch_events = 7;
        let (stop, mirror) = common::spawn_mirror(options.clone());
        common::wait_for_store(live.path(), 40, "the first mirror's part").await;
        stop.send(()).unwrap();
        let first = mirror.await.unwrap().unwrap();
        assert!(first.next_position < origin.global_position(), "{first:?}");
        let (stop, mirror) = common::spawn_mirror(options);
        common::wait_for_store(live.path(), origin.global_position(), "the live replica").await;
        stop.send(()).unwrap();
        let second = mirror.await.unwrap().unwrap();
        assert!(
            second.imported > 0 && first.imported > 0,
            "{first:?} {second:?}"
        );

        let (stop, mirror) =
            common::spawn_mirror(MirrorOptions::new(late.path(), &server.url, &late_name));
        common::wait_for_store(late.path(), origin.global_position(), "the late replica").await;
        stop.send(()).unwrap();
        mirror.await.unwrap().unwrap();
    });
    assert_reads_as(&origin, live.path());
    assert_reads_as(&origin, late.path());
}

#[test]
fn a_message_removed_from_jetstream_is_refused_not_taken_as_a_gap() {
    let Some(server) = common::Server::any() else {
        return;
    };
    let origin_dir = tempfile::tempdir().unwrap();
    let replica = tempfile::tempdir().unwrap();
    let origin = Store::open(origin_dir.path()).unwrap();
    add(&origin, "s", 4);
    origin.delete_stream("s", ExpectedVersion::Any).unwrap();
    add(&origin, "t", 3);
    let name = common::stream_name("gaps_lost");
    common::runtime().block_on(async {
        let js = common::jetstream(&server.url).await;
        let (stop, shipper) =
            common::spawn_shipper(common::ship_options(origin_dir.path(), &server.url, &name));
        wait_shipped(&js, &name, origin.global_position() - 1).await;
        stop.send(()).unwrap();
        shipper.await.unwrap().unwrap();
        // Position 3 (sequence 4) is gone from JetStream.
        let stream = js.get_stream(&name).await.unwrap();
        assert!(stream.delete_message(4).await.unwrap());
        let (_stop, mirror) =
            common::spawn_mirror(MirrorOptions::new(replica.path(), &server.url, &name));
        let err = mirror.await.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Lost {
                    position: 4,
                    follows: Some(3),
                    ..
                }
            ),
            "{err}"
        );
    });
    let replica = Store::open_read_only(replica.path()).unwrap();
    assert_eq!(replica.global_position(), 3);
    let log = |s: &Store| annals::replication::read_log(s, 0, 100).unwrap().records;
    assert_eq!(log(&replica), log(&origin)[..3].to_vec());
}
