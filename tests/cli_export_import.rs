//! Guards `annals export`, `annals import` and `annals backup` as an
//! operator uses them: export → import into a new store → export again is
//! the same bytes but for the recorded-at fields; a second import writes
//! nothing; --from/--to slice the log; a bad or too long line stops with
//! its number and exit 9, writing nothing of its batch, and the fixed
//! input then completes without duplicates; a backup verifies, and a bad
//! destination is exit 2.

#![cfg(feature = "cli")]

mod cli_support;

use annals::{EventData, ExpectedVersion, Store, StreamAppend};
use cli_support::{annals, annals_with_stdin, assert_code, path};
use serde_json::Value;

/// A store of 2,500 events over interleaved streams, with single and
/// multi-event batches, a multi-stream batch, binary data and metadata.
fn origin(dir: &std::path::Path) {
    let store = Store::open(dir).unwrap();
    for i in 0..1_200u32 {
        let stream = format!("order-{}", i % 7);
        let data = if i % 5 == 0 {
            vec![0xff, 0, (i % 251) as u8]
        } else {
            format!(r#"{{"n":{i},"s":"tab\there"}}"#).into_bytes()
        };
        let e = EventData::new("Placed", data).with_metadata(if i % 3 == 0 {
            vec![0x80]
        } else {
            b"m".to_vec()
        });
        let events = vec![e, EventData::new("Paid", vec![])];
        store
            .append(&stream, ExpectedVersion::Any, &events)
            .unwrap();
    }
    store
        .append_multi(&[
            StreamAppend::new(
                "a",
                ExpectedVersion::Any,
                vec![EventData::new("X", b"1".to_vec())],
            ),
            StreamAppend::new(
                "b",
                ExpectedVersion::Any,
                vec![EventData::new("Y", b"2".to_vec())],
            ),
        ])
        .unwrap();
    for i in 0..98u32 {
        store
            .append(
                "tail",
                ExpectedVersion::Any,
                &[EventData::new("T", i.to_le_bytes().to_vec())],
            )
            .unwrap();
    }
}

/// The lines with the recorded-at fields taken out.
fn without_times(jsonl: &str) -> Vec<Value> {
    jsonl
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            assert!(o.remove("recorded_at").is_some() && o.remove("recorded_at_us").is_some());
            v
        })
        .collect()
}

#[test]
fn export_import_export_is_the_same_but_for_recorded_at() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    origin(&a);
    let first = annals(["export", path(&a)]);
    assert_code(&first, 0);
    assert_eq!(first.stdout.lines().count(), 2_500);
    let file = tmp.path().join("events.jsonl");
    std::fs::write(&file, &first.stdout).unwrap();

    let import = annals(["import", path(&b), path(&file), "--create"]);
    assert_code(&import, 0);
    assert!(
        import.stdout.contains("imported 2,500 events"),
        "{}",
        import.stdout
    );
    let second = annals(["export", path(&b)]);
    assert_code(&second, 0);
    // Positions and versions too: the import went into an empty store.
    assert_eq!(without_times(&first.stdout), without_times(&second.stdout));
    assert_ne!(
        first.stdout, second.stdout,
        "recorded_at is the import's time"
    );

    // Again, from standard input: every batch is a retry, nothing is written.
    let again = annals_with_stdin(["import", path(&b), "-"], first.stdout.as_bytes());
    assert_code(&again, 0);
    assert!(
        again.stdout.contains("imported 0 events"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("2,500 already there"),
        "{}",
        again.stdout
    );
    assert_eq!(Store::open_read_only(&b).unwrap().global_position(), 2_500);

    // A slice.
    let slice = annals(["export", path(&a), "--from", "1000", "--to", "1003"]);
    assert_code(&slice, 0);
    let positions: Vec<u64> = slice
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["position"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(positions, [1000, 1001, 1002]);
    assert_code(&annals(["export", path(&a), "--from", "5", "--to", "4"]), 2);
}

#[test]
fn a_bad_line_stops_the_import_and_its_batch_is_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    origin(&a);
    let export = annals(["export", path(&a), "--to", "40"]);
    assert_code(&export, 0);
    let mut lines: Vec<String> = export.stdout.lines().map(str::to_owned).collect();
    // Lines 1 to 20 are ten batches of two events (one per stream run);
    // line 22 is the second of the eleventh run.
    let good = lines[21].clone();
    lines[21] = good.replace("\"id\"", "\"di\"");
    let run = annals_with_stdin(
        ["import", path(&b), "-", "--create"],
        lines.join("\n").as_bytes(),
    );
    assert_code(&run, 9);
    assert!(run.stderr.contains("line 22 "), "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing from line 21 on"),
        "{}",
        run.stderr
    );
    assert_eq!(Store::open_read_only(&b).unwrap().global_position(), 20);

    // A line longer than the limit stops it too, by number.
    let mut long = lines.clone();
    long[21] = format!("{}{}", good, " ".repeat(9 << 20));
    let run = annals_with_stdin(["import", path(&b), "-"], long.join("\n").as_bytes());
    assert_code(&run, 9);
    assert!(
        run.stderr.contains("line 22 ") && run.stderr.contains("longer"),
        "{}",
        run.stderr
    );
    assert_eq!(Store::open_read_only(&b).unwrap().global_position(), 20);

    // Fixed, the same import completes, the first runs recognised by id.
    lines[21] = good;
    let run = annals_with_stdin(["import", path(&b), "-"], lines.join("\n").as_bytes());
    assert_code(&run, 0);
    assert!(run.stdout.contains("20 already there"), "{}", run.stdout);
    let b_events = Store::open_read_only(&b).unwrap().read_all(0, 100).unwrap();
    let a_events = Store::open_read_only(&a).unwrap().read_all(0, 40).unwrap();
    assert_eq!(b_events.len(), 40);
    for (x, y) in a_events.iter().zip(&b_events) {
        assert_eq!(
            (x.id, &x.stream_id, x.version, &x.data),
            (y.id, &y.stream_id, y.version, &y.data)
        );
    }
}

#[test]
fn backup_verifies_and_refuses_a_bad_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    origin(&a);
    let dest = tmp.path().join("backup");
    let run = annals(["backup", path(&a), path(&dest)]);
    assert_code(&run, 0);
    assert!(
        run.stdout
            .starts_with("backed up 2,500 events in 1 segment"),
        "{}",
        run.stdout
    );
    assert_code(&annals(["verify", path(&dest)]), 0);
    let again = annals(["backup", path(&a), path(&dest), "--json"]);
    assert_code(&again, 0);
    let report: Value = serde_json::from_str(again.stdout.trim()).unwrap();
    assert_eq!(report["bytes_copied"], 0);
    assert_eq!(report["segments_unchanged"], 1);

    let bad = annals(["backup", path(&a), path(&a)]);
    assert_code(&bad, 2);
    assert!(bad.stderr.contains("the store itself"), "{}", bad.stderr);
}

#[test]
fn a_backup_of_many_segments_verifies_with_its_index_files() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    {
        let store =
            Store::open_with(&a, annals::Options::default().segment_size(64 << 10)).unwrap();
        for i in 0..600u32 {
            let data = vec![(i % 251) as u8; 700];
            store
                .append(
                    &format!("s-{}", i % 9),
                    ExpectedVersion::Any,
                    &[EventData::new("T", data)],
                )
                .unwrap();
        }
    }
    let dest = tmp.path().join("backup");
    let run = annals(["backup", path(&a), path(&dest), "--json"]);
    assert_code(&run, 0);
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert!(report["segments"].as_u64().unwrap() > 5, "{report}");
    assert!(report["index_bytes"].as_u64().unwrap() > 0, "{report}");
    // verify checks every record and that every index file matches its
    // segment (exit 8 otherwise).
    let verify = annals(["verify", path(&dest)]);
    assert_code(&verify, 0);
    assert!(
        verify.stdout.contains("index files match"),
        "{}",
        verify.stdout
    );
    assert_eq!(
        annals(["export", path(&dest)]).stdout,
        annals(["export", path(&a)]).stdout
    );
}
