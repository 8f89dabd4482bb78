//! Showing recorded events: as an aligned table, one line each, or one JSON
//! object per line. Shared by `read` and `tail`.

use std::io::{self, Write};

use annals::RecordedEvent;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::fmt::{Table, payload_excerpt, utc};

/// How many characters of a payload a table or line shows.
const EXCERPT_CHARS: usize = 60;

/// The columns of [`table`].
const COLUMNS: [&str; 6] = [
    "POSITION",
    "STREAM",
    "VERSION",
    "TYPE",
    "RECORDED (UTC)",
    "DATA",
];

/// `events` as an aligned table with a header row.
pub fn table(events: &[RecordedEvent]) -> Table {
    let mut table = Table::new(&COLUMNS);
    for e in events {
        table.row(vec![
            e.position.to_string(),
            e.stream_id.to_string(),
            e.version.to_string(),
            e.event_type.to_string(),
            utc(e.recorded_at),
            payload_excerpt(&e.data, EXCERPT_CHARS),
        ]);
    }
    table
}

/// One event as one line, for following a live store:
/// `#12 order-42@3 OrderPaid {"amount":10}`.
pub fn line(out: &mut impl Write, e: &RecordedEvent) -> io::Result<()> {
    writeln!(
        out,
        "#{} {}@{} {} {}",
        e.position,
        e.stream_id,
        e.version,
        e.event_type,
        payload_excerpt(&e.data, EXCERPT_CHARS)
    )
}

/// One event as one JSON object on one line. Data and metadata are given as
/// text when they are UTF-8 and as base64 otherwise; `data_encoding` and
/// `metadata_encoding` say which (`"utf8"` or `"base64"`).
pub fn json_line(out: &mut impl Write, e: &RecordedEvent) -> io::Result<()> {
    let (data_encoding, data) = payload_json(&e.data);
    let (metadata_encoding, metadata) = payload_json(&e.metadata);
    let value = json!({
        "position": e.position,
        "stream": &*e.stream_id,
        "version": e.version,
        "type": &*e.event_type,
        "id": e.id.to_string(),
        "recorded_at": utc(e.recorded_at),
        "recorded_at_us": e.recorded_at,
        "data_encoding": data_encoding,
        "data": data,
        "metadata_encoding": metadata_encoding,
        "metadata": metadata,
    });
    writeln!(out, "{value}")
}

fn payload_json(bytes: &[u8]) -> (&'static str, Value) {
    match std::str::from_utf8(bytes) {
        Ok(text) => ("utf8", Value::String(text.to_owned())),
        Err(_) => ("base64", Value::String(BASE64.encode(bytes))),
    }
}
