//! Guards the `tracing` spans an operator sees (issue 15): `annals.open`,
//! `annals.recover` (with what it found and how long it took),
//! `annals.commit` (segment, offset, bytes, events, sync time) and
//! `annals.rotate` and `annals.scavenge`, each with its fields filled in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use annals::{EventData, ExpectedVersion, Options, Store};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span's name and the fields recorded so far.
type Span = (String, HashMap<String, String>);

/// Every span opened, by id.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Span>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = HashMap::new();
        span.record(&mut Fields(&mut fields));
        let mut all = self.0.lock().unwrap();
        all.push((span.metadata().name().to_owned(), fields));
        Id::from_u64(all.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut all = self.0.lock().unwrap();
        if let Some((_, fields)) = all.get_mut(span.into_u64() as usize - 1) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn open_recovery_commits_and_rotations_have_spans_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let spans = Spans::default();
    tracing::subscriber::with_default(spans.clone(), || {
        let store =
            Store::open_with(dir.path(), Options::default().segment_size(64 * 1024)).unwrap();
        for _ in 0..200 {
            store
                .append(
                    "s",
                    ExpectedVersion::Any,
                    &[EventData::new("T", vec![1u8; 1000])],
                )
                .unwrap();
        }
        store.delete_stream("s", ExpectedVersion::Any).unwrap();
        store.scavenge().unwrap();
    });
    let all = spans.0.lock().unwrap();
    let named = |name: &str| -> Vec<&HashMap<String, String>> {
        all.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, f)| f)
            .collect()
    };
    let open = named("annals.open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].get("read_only").map(String::as_str), Some("false"));
    let recover = named("annals.recover");
    assert_eq!(recover.len(), 1);
    assert_eq!(recover[0].get("events").map(String::as_str), Some("0"));
    assert!(recover[0].contains_key("duration_us"), "{:?}", recover[0]);
    let commits = named("annals.commit");
    // 200 appends and the delete, a control record appended like any other.
    assert_eq!(commits.len(), 201);
    for c in &commits {
        for field in ["segment", "offset", "bytes", "events", "sync_us"] {
            assert!(c.contains_key(field), "{field} missing: {c:?}");
        }
        assert_eq!(c.get("events").map(String::as_str), Some("1"));
    }
    let scavenges = named("annals.scavenge");
    assert_eq!(scavenges.len(), 1);
    assert_eq!(
        scavenges[0].get("events_removed").map(String::as_str),
        Some("200")
    );
    for field in ["segments_rewritten", "bytes_reclaimed", "duration_us"] {
        assert!(scavenges[0].contains_key(field), "{field} missing");
    }
    let rotations = named("annals.rotate");
    assert!(rotations.len() >= 2, "{}", rotations.len());
    assert_eq!(rotations[0].get("sealed").map(String::as_str), Some("0"));
    assert_eq!(rotations[0].get("next").map(String::as_str), Some("1"));
}
