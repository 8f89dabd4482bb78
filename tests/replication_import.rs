//! `annals::replication::import`: a replica built from another store's
//! recorded events holds the same events (positions, versions, ids, times,
//! bytes), and events that do not follow on are refused without a write.

use annals::{Error, EventData, ExpectedVersion, Options, Store, replication};

/// An origin with interleaved streams and a few multi-event batches.
fn origin(dir: &std::path::Path) -> Store {
    let store = Store::open_with(dir, Options::default().segment_size(64 << 10)).unwrap();
    for i in 0..600u64 {
        let stream = format!("s-{}", i % 7);
        let events: Vec<EventData> = (0..1 + i % 3)
            .map(|j| {
                EventData::new(format!("T{j}"), vec![i as u8; (i % 200) as usize])
                    .with_metadata(format!("m{i}").into_bytes())
            })
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, &events)
            .unwrap();
    }
    store
}

#[test]
fn import_copies_every_field_across_segments_in_pieces() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let origin = origin(a.path());
    let all = origin.read_all(0, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, origin.global_position());
    // A small segment size on the replica: imports roll segments.
    let replica = Store::open_with(b.path(), Options::default().segment_size(16 << 10)).unwrap();
    let mut next = 0;
    for piece in all.chunks(97) {
        next = replication::import(&replica, piece).unwrap();
    }
    assert_eq!(next, origin.global_position());
    assert_eq!(replica.read_all(0, usize::MAX).unwrap(), all);
    for s in 0..7 {
        let stream = format!("s-{s}");
        assert_eq!(
            replica.stream_version(&stream),
            origin.stream_version(&stream)
        );
    }
    // After a reopen too, and appends go on after the imported events.
    drop(replica);
    let replica = Store::open(b.path()).unwrap();
    assert_eq!(replica.read_all(0, usize::MAX).unwrap(), all);
    let r = replica
        .append("s-1", ExpectedVersion::Any, &[EventData::new("T", vec![1])])
        .unwrap();
    assert_eq!(r.first_position(), all.len() as u64);
    assert_eq!(
        Some(r.first_version()),
        origin.stream_version("s-1").map(|v| v + 1)
    );
}

#[test]
fn import_refuses_events_that_do_not_follow_on_and_writes_nothing() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let origin = origin(a.path());
    let all = origin.read_all(0, 200).unwrap();
    let replica = Store::open(b.path()).unwrap();
    replication::import(&replica, &all[..50]).unwrap();

    // Not at the store's next position: a gap, and a repeat.
    let e = replication::import(&replica, &all[51..60]).unwrap_err();
    assert!(
        matches!(e, Error::ImportRefused { position: 51, .. }),
        "{e}"
    );
    let e = replication::import(&replica, &all[49..60]).unwrap_err();
    assert!(
        matches!(e, Error::ImportRefused { position: 49, .. }),
        "{e}"
    );
    // Positions that skip inside the slice.
    let mut skipping = all[50..60].to_vec();
    skipping.remove(4);
    let e = replication::import(&replica, &skipping).unwrap_err();
    assert!(
        matches!(e, Error::ImportRefused { position: 55, .. }),
        "{e}"
    );
    // A version that does not follow its stream's last one.
    let mut wrong = all[50..60].to_vec();
    wrong[3].version += 5;
    let e = replication::import(&replica, &wrong).unwrap_err();
    assert!(
        matches!(e, Error::ImportRefused { position: 53, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("stream"), "{e}");
    // A first event whose version does not follow the store's stream.
    let mut wrong = all[50..60].to_vec();
    wrong[0].version += 1;
    let e = replication::import(&replica, &wrong).unwrap_err();
    assert!(
        matches!(e, Error::ImportRefused { position: 50, .. }),
        "{e}"
    );

    assert_eq!(replica.global_position(), 50);
    assert_eq!(replica.read_all(0, usize::MAX).unwrap(), all[..50].to_vec());
    // And the right next slice still goes in.
    assert_eq!(replication::import(&replica, &all[50..]).unwrap(), 200);
    assert_eq!(replica.read_all(0, usize::MAX).unwrap(), all);
}

#[test]
fn import_into_a_read_only_store_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let origin = origin(a.path());
    let all = origin.read_all(0, 10).unwrap();
    drop(Store::open(b.path()).unwrap());
    let replica = Store::open_read_only(b.path()).unwrap();
    assert!(matches!(
        replication::import(&replica, &all),
        Err(Error::ReadOnly)
    ));
    assert_eq!(replication::import(&replica, &[]).unwrap(), 0);
}
