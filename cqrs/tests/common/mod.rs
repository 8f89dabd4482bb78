//! Test support: a temporary annals store, and the test aggregate, events
//! and view of postgres-es's `src/testing.rs`, rewritten for annals.

#![allow(dead_code)]

use std::fmt::{Display, Formatter};
use std::sync::Arc;

use annals::Store;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{SerializedEvent, SerializedSnapshot};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, View};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tempfile::TempDir;

/// A store in a new temporary directory, removed when the `TempDir` drops.
pub fn temp_store() -> (TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(Store::open(dir.path()).expect("a new store"));
    (dir, store)
}

/// Postgres-es's test aggregate, except that `apply` records what it is
/// given (upstream's does nothing), so that a test can see which events an
/// aggregate was rebuilt from.
#[derive(Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct TestAggregate {
    pub id: String,
    pub description: String,
    pub tests: Vec<String>,
}

impl Aggregate for TestAggregate {
    const TYPE: &'static str = "TestAggregate";
    type Command = TestCommand;
    type Event = TestEvent;
    type Error = TestError;
    type Services = TestServices;

    async fn handle(
        &mut self,
        _command: Self::Command,
        _services: &Self::Services,
        _sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn apply(&mut self, e: Self::Event) {
        match e {
            TestEvent::Created(Created { id }) => self.id = id,
            TestEvent::Tested(Tested { test_name }) => self.tests.push(test_name),
            TestEvent::SomethingElse(SomethingElse { description }) => {
                self.description = description
            }
        }
    }
}

/// An aggregate whose type contains the separator `-`, and starts like
/// `TestAggregate`: its streams must never be mistaken for that type's.
#[derive(Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct TrickyAggregate;

impl Aggregate for TrickyAggregate {
    const TYPE: &'static str = "TestAggregate-tricky";
    type Command = TestCommand;
    type Event = TestEvent;
    type Error = TestError;
    type Services = TestServices;

    async fn handle(
        &mut self,
        _command: Self::Command,
        _services: &Self::Services,
        _sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn apply(&mut self, _e: Self::Event) {}
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub enum TestEvent {
    Created(Created),
    Tested(Tested),
    SomethingElse(SomethingElse),
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Created {
    pub id: String,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Tested {
    pub test_name: String,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct SomethingElse {
    pub description: String,
}

impl DomainEvent for TestEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created(_) => "Created".to_string(),
            Self::Tested(_) => "Tested".to_string(),
            Self::SomethingElse(_) => "SomethingElse".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, PartialEq)]
pub struct TestError(String);

impl Display for TestError {
    fn fmt(&self, f: &mut Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for TestError {}

#[derive(Debug, Default)]
pub struct TestServices;

pub enum TestCommand {}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TestView {
    pub events: Vec<TestEvent>,
}

impl View<TestAggregate> for TestView {
    fn update(&mut self, event: &EventEnvelope<TestAggregate>) {
        self.events.push(event.payload.clone());
    }
}

/// A serialized event of aggregate `id` (upstream's `test_event_envelope`,
/// except that its metadata is an empty map, as cqrs-es writes, rather
/// than `null`, which cqrs-es cannot read back into an envelope's map).
pub fn test_event_envelope(id: &str, sequence: usize, event: TestEvent) -> SerializedEvent {
    test_event_of::<TestAggregate>(id, sequence, event)
}

/// [`test_event_envelope`] for any aggregate type.
pub fn test_event_of<A: Aggregate>(id: &str, sequence: usize, event: TestEvent) -> SerializedEvent {
    SerializedEvent {
        aggregate_id: id.to_string(),
        sequence,
        aggregate_type: A::TYPE.to_string(),
        event_type: event.event_type(),
        event_version: event.event_version(),
        payload: serde_json::to_value(&event).expect("an event serializes"),
        metadata: Value::Object(Default::default()),
    }
}

/// Upstream's `snapshot_context`.
pub fn snapshot_context(
    aggregate_id: String,
    current_sequence: usize,
    current_snapshot: usize,
    aggregate: Value,
) -> SerializedSnapshot {
    SerializedSnapshot {
        aggregate_id,
        aggregate,
        current_sequence,
        current_snapshot,
    }
}

pub fn tested(name: &str) -> TestEvent {
    TestEvent::Tested(Tested {
        test_name: name.to_string(),
    })
}

pub fn something_else(description: &str) -> TestEvent {
    TestEvent::SomethingElse(SomethingElse {
        description: description.to_string(),
    })
}
