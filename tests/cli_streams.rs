//! Guards `annals streams`: id order, the prefix filter across page
//! boundaries, --max, the JSON lines, and exit 3 for a missing store.

#![cfg(feature = "cli")]

mod cli_support;

use annals::{EventData, ExpectedVersion, Store};
use cli_support::{annals, assert_code, path};
use serde_json::Value;

#[test]
fn lists_streams_in_order_with_prefix_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    {
        let store = Store::open(&dir).unwrap();
        // More than one page (1,000) of order- streams, so the prefix walk
        // crosses a page boundary.
        for i in 0..1_500u32 {
            store
                .append(
                    &format!("order-{i:05}"),
                    ExpectedVersion::Any,
                    &[EventData::new("T", vec![])],
                )
                .unwrap();
        }
        for s in ["order", "a", "zeta", "order-00001"] {
            store
                .append(s, ExpectedVersion::Any, &[EventData::new("T", vec![])])
                .unwrap();
        }
    }
    let run = annals(["streams", path(&dir), "--prefix", "order", "--json"]);
    assert_code(&run, 0);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1_501, "order and the 1,500 order- streams");
    assert_eq!(lines[0]["stream"], "order");
    assert_eq!(lines[2]["stream"], "order-00001");
    assert_eq!(lines[2]["last_version"], 1);
    assert_eq!(lines[2]["events"], 2);
    assert_eq!(lines[1_500]["stream"], "order-01499");

    let table = annals(["streams", path(&dir), "--max", "2"]);
    assert_code(&table, 0);
    let rows: Vec<_> = table.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{}", table.stdout);
    assert!(rows[0].contains("STREAM") && rows[0].contains("EVENTS"));
    assert!(rows[1].starts_with("a "), "{}", table.stdout);
    assert!(rows[2].starts_with("order "), "{}", table.stdout);

    let none = annals(["streams", path(&dir), "--prefix", "nope"]);
    assert_code(&none, 0);
    assert_eq!(none.stdout.trim(), "no streams");

    let missing = annals(["streams", path(&tmp.path().join("missing"))]);
    assert_code(&missing, 3);
}
