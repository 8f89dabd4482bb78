//! Guards event-id idempotency across a whole multi-stream call (issue 11
//! meets issue 16): a retried `append_multi` or `append_if` answers with
//! every part's original result and writes nothing, even where its
//! condition would now fail on its own events; any other reuse of a
//! stored id, or one id given in two parts, is `DuplicateEventId` and
//! writes nothing.

use annals::{
    AppendCondition, AppendResult, Error, EventData, ExpectedVersion, Filter, Store, StreamAppend,
};
use uuid::Uuid;

fn ev(id: u128) -> EventData {
    EventData::new("T", id.to_le_bytes().to_vec()).with_id(Uuid::from_u128(id))
}

fn part(stream: &str, expected: ExpectedVersion, ids: &[u128]) -> StreamAppend {
    StreamAppend::new(stream, expected, ids.iter().map(|i| ev(*i)).collect())
}

fn places(results: &[AppendResult]) -> Vec<(std::ops::Range<u64>, std::ops::Range<u64>)> {
    results
        .iter()
        .map(|r| (r.versions.clone(), r.positions.clone()))
        .collect()
}

#[test]
fn a_retried_multi_append_returns_every_original_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.append("b", ExpectedVersion::Any, &[ev(100)]).unwrap();
    let call = [
        part("a", ExpectedVersion::NoStream, &[1, 2]),
        part("b", ExpectedVersion::Exact(0), &[3]),
        part("c", ExpectedVersion::Any, &[]),
    ];
    let first = store.append_multi(&call).unwrap();
    assert!(first.iter().all(|r| !r.deduplicated));
    // Later appends move both streams on: the retry still matches.
    store.append("a", ExpectedVersion::Any, &[ev(200)]).unwrap();
    store.append("b", ExpectedVersion::Any, &[ev(201)]).unwrap();
    let end = store.global_position();
    let again = store.append_multi(&call).unwrap();
    assert_eq!(places(&again)[..2], places(&first)[..2]);
    assert!(again.iter().all(|r| r.deduplicated), "{again:?}");
    assert!(again[2].positions.is_empty());
    assert_eq!(store.global_position(), end, "a retry writes nothing");
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let after_reopen = store.append_multi(&call).unwrap();
    assert_eq!(places(&after_reopen)[..2], places(&first)[..2]);
    assert_eq!(store.global_position(), end);
}

#[test]
fn partial_or_cross_part_reuse_is_a_duplicate_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let first = store
        .append_multi(&[
            part("a", ExpectedVersion::NoStream, &[1, 2]),
            part("b", ExpectedVersion::NoStream, &[3]),
        ])
        .unwrap();
    let end = store.global_position();
    // One part is a retry, the other new: not a retry of the call.
    match store.append_multi(&[
        part("a", ExpectedVersion::NoStream, &[1, 2]),
        part("b", ExpectedVersion::Any, &[4]),
    ]) {
        Err(Error::DuplicateEventId {
            id,
            stream,
            position,
        }) => assert_eq!(
            (id.as_u128(), stream.as_str(), position),
            (1, "a", Some(first[0].positions.start))
        ),
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    // The parts swapped: every id stored, but in other streams.
    match store.append_multi(&[
        part("b", ExpectedVersion::Any, &[1, 2]),
        part("a", ExpectedVersion::Any, &[3]),
    ]) {
        Err(Error::DuplicateEventId { id, stream, .. }) => {
            assert_eq!((id.as_u128(), stream.as_str()), (1, "a"));
        }
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    // One fresh id given in two parts: named at its second part, with no
    // position.
    match store.append_multi(&[
        part("x", ExpectedVersion::Any, &[9]),
        part("y", ExpectedVersion::Any, &[8, 9]),
    ]) {
        Err(Error::DuplicateEventId {
            id,
            stream,
            position,
        }) => assert_eq!((id.as_u128(), stream.as_str(), position), (9, "y", None)),
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    assert_eq!(store.global_position(), end, "refusals write nothing");
    assert_eq!(store.stream_version("x"), None);
}

#[test]
fn a_retried_conditional_append_is_answered_before_its_condition() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cond = AppendCondition::new(Filter::stream_prefix("seat-"), None);
    let first = store.append_if(&cond, "seat-1", &[ev(7)]).unwrap();
    // The condition now fails on the event the first call wrote; the
    // retry is still answered with the original result.
    let again = store.append_if(&cond, "seat-1", &[ev(7)]).unwrap();
    assert!(again.deduplicated);
    assert_eq!(
        (again.versions, again.positions),
        (first.versions, first.positions)
    );
    // A fresh id is checked against the condition as always.
    assert!(matches!(
        store.append_if(&cond, "seat-1", &[ev(8)]),
        Err(Error::AppendConditionFailed { position: 0 })
    ));
    let multi = store
        .append_multi_if(&cond, &[part("seat-1", ExpectedVersion::Any, &[7])])
        .unwrap();
    assert!(multi[0].deduplicated);
    assert_eq!(store.global_position(), 1);
}

/// A batch whose events were written by several appends of its stream,
/// with another stream's event between them, is a retry all the same: its
/// ids are consecutive versions of the stream. The positions run from the
/// first event's to the last's, as `AppendResult::positions` says.
#[test]
fn a_retry_of_events_written_by_several_appends_spans_their_positions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("s", ExpectedVersion::NoStream, &[ev(1)])
        .unwrap();
    store
        .append("t", ExpectedVersion::NoStream, &[ev(2)])
        .unwrap();
    store
        .append("s", ExpectedVersion::Exact(0), &[ev(3)])
        .unwrap();
    let again = store
        .append("s", ExpectedVersion::NoStream, &[ev(1), ev(3)])
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!((again.versions, again.positions), (0..2, 0..3));
    // A retried part with no events answers where the next event would go.
    let r = store
        .append_multi(&[
            part("s", ExpectedVersion::Any, &[1, 3]),
            part("u", ExpectedVersion::Any, &[]),
        ])
        .unwrap();
    assert!(r.iter().all(|r| r.deduplicated));
    assert_eq!(
        (r[1].versions.clone(), r[1].positions.clone()),
        (0..0, 3..3)
    );
    assert_eq!(store.global_position(), 3);
}
