//! Guards the serde helpers (feature `serde`, issue 15): typed payloads in
//! and out, a typed error (naming the event) when data does not read as the
//! type asked for, `recorded_at_time`, and `Serialize` for `RecordedEvent`
//! in the shape `annals read --json` prints (the CLI serialises through it;
//! this pins the shape itself).

use std::time::{Duration, SystemTime};

use annals::{Error, EventData, ExpectedVersion, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct OrderPaid {
    order: String,
    amount_cents: u64,
}

#[test]
fn typed_payloads_round_trip_and_mismatches_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let paid = OrderPaid {
        order: "order-42".into(),
        amount_cents: 1999,
    };
    let before = SystemTime::now();
    store
        .append(
            "order-42",
            ExpectedVersion::NoStream,
            &[
                EventData::json("OrderPaid", &paid).unwrap(),
                EventData::new("Note", b"not json".to_vec()),
            ],
        )
        .unwrap();
    let after = SystemTime::now();
    let events = store.read_stream("order-42", 0, 10).unwrap();
    assert_eq!(events[0].json::<OrderPaid>().unwrap(), paid);
    // Microsecond timestamps: within the append's span, give or take the
    // truncation to whole microseconds.
    let at = events[0].recorded_at_time();
    assert!(
        at + Duration::from_micros(1) >= before && at <= after,
        "{at:?}"
    );
    match events[1].json::<OrderPaid>() {
        Err(Error::Json { position, reason }) => {
            assert_eq!(position, Some(1));
            assert!(!reason.is_empty());
        }
        other => panic!("expected Error::Json, got {other:?}"),
    }
    // Valid JSON of another shape is a mismatch too.
    assert!(matches!(
        events[0].json::<Vec<u32>>(),
        Err(Error::Json {
            position: Some(0),
            ..
        })
    ));
}

#[test]
fn a_value_that_cannot_be_json_is_a_typed_error() {
    // JSON object keys must be strings: a map keyed by tuples fails.
    let mut map = std::collections::BTreeMap::new();
    map.insert((1u8, 2u8), 3u8);
    assert!(matches!(
        EventData::json("T", &map),
        Err(Error::Json { position: None, .. })
    ));
}

#[test]
fn recorded_events_serialise_in_the_cli_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = annals::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    store
        .append(
            "s",
            ExpectedVersion::Any,
            &[EventData::new("T", vec![0xff, 0x00, 0x01])
                .with_metadata(br#"{"k":1}"#.to_vec())
                .with_id(id)],
        )
        .unwrap();
    let e = &store.read_all(0, 1).unwrap()[0];
    let v = serde_json::to_value(e).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    let mut expected = vec![
        "position",
        "stream",
        "version",
        "type",
        "id",
        "recorded_at",
        "recorded_at_us",
        "data_encoding",
        "data",
        "metadata_encoding",
        "metadata",
    ];
    expected.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, expected);
    assert_eq!(v["position"], 0);
    assert_eq!(v["stream"], "s");
    assert_eq!(v["version"], 0);
    assert_eq!(v["type"], "T");
    assert_eq!(v["id"], "01234567-89ab-cdef-0123-456789abcdef");
    assert_eq!(v["recorded_at_us"], e.recorded_at);
    assert_eq!(
        v["recorded_at"],
        annals::format::recorded_at_utc(e.recorded_at)
    );
    assert_eq!(v["data_encoding"], "base64");
    assert_eq!(v["data"], "/wAB");
    assert_eq!(v["metadata_encoding"], "utf8");
    assert_eq!(v["metadata"], r#"{"k":1}"#);
    // The CLI prints the same object.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["read"])
        .arg(dir.path())
        .args(["--all", "--json"])
        .output()
        .unwrap();
    drop(store);
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap())
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(line, v);
}
