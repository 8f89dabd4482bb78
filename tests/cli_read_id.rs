//! Guards `annals read DIR --id UUID`: it prints the one event with that id
//! (table or JSON), from the active segment or a sealed one, exits 3 when
//! the store holds no such event and 2 for something that is not a UUID.

#![cfg(feature = "cli")]

mod cli_support;

use annals::{EventData, ExpectedVersion, Options, Store, Uuid};
use cli_support::{annals, assert_code, path};
use serde_json::Value;

#[test]
fn read_by_id_prints_that_event_or_exits_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), Options::default().segment_size(4096)).unwrap();
    let ids: Vec<Uuid> = (1..=40u128).map(Uuid::from_u128).collect();
    for (i, id) in ids.iter().enumerate() {
        let e = EventData::new("Paid", format!("payment {i}").into_bytes()).with_id(*id);
        store
            .append(&format!("order-{}", i % 3), ExpectedVersion::Any, &[e])
            .unwrap();
    }
    store.close().unwrap();
    let d = path(dir.path());
    // The first event lies in a sealed segment, the last in the active one.
    for (i, id) in [(0usize, ids[0]), (39, ids[39])] {
        let run = annals(["read", d, "--id", &id.to_string(), "--json"]);
        assert_code(&run, 0);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{}", run.stdout);
        let v: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["id"].as_str(), Some(id.to_string().as_str()));
        assert_eq!(v["position"].as_u64(), Some(i as u64));
        assert_eq!(
            v["stream"].as_str(),
            Some(format!("order-{}", i % 3).as_str())
        );
        assert_eq!(v["data"].as_str(), Some(format!("payment {i}").as_str()));
        let table = annals(["read", d, "--id", &id.to_string()]);
        assert_code(&table, 0);
        assert!(table.stdout.contains(&format!("order-{}", i % 3)));
    }
    let missing = annals(["read", d, "--id", &Uuid::from_u128(999).to_string()]);
    assert_code(&missing, 3);
    assert!(
        missing.stderr.contains("no event with id"),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty());
    assert_code(&annals(["read", d, "--id", "not-a-uuid"]), 2);
    assert_code(
        &annals(["read", d, "order-0", "--id", &ids[0].to_string()]),
        2,
    );
}
