//! Showing recorded events: as an aligned table, one line each, or one JSON
//! object per line, and that JSON line read back as an event to append.
//! Shared by `read`, `tail`, `export` and `import`.

use std::io::{self, Write};

use annals::{EventData, RecordedEvent};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

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

/// One event as one JSON object on one line, in the shape of
/// `RecordedEvent`'s `Serialize` (the library's `serde` feature): data and
/// metadata as text when they are UTF-8 and as base64 otherwise, with
/// `data_encoding` and `metadata_encoding` saying which.
pub fn json_line(out: &mut impl Write, e: &RecordedEvent) -> io::Result<()> {
    serde_json::to_writer(&mut *out, e)?;
    writeln!(out)
}

/// The event a [`json_line`] describes, to append again: its stream, and
/// its type, id, data and metadata (decoded as its `*_encoding` fields
/// say). Its position, version and recorded-at time are the store's to
/// give, and are not read. The error says, for people, what is wrong.
pub fn from_json_line(untrusted: &[u8]) -> Result<(String, EventData), String> {
    let value: Value =
        serde_json::from_slice(untrusted).map_err(|e| format!("not a JSON object: {e}"))?;
    let text = |field: &str| -> Result<&str, String> {
        value
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no string field \"{field}\""))
    };
    let payload = |field: &str| -> Result<Vec<u8>, String> {
        let body = text(field)?;
        match text(&format!("{field}_encoding"))? {
            "utf8" => Ok(body.as_bytes().to_vec()),
            "base64" => BASE64
                .decode(body)
                .map_err(|e| format!("field \"{field}\" is not base64: {e}")),
            other => Err(format!(
                "field \"{field}_encoding\" is {other:?}, not \"utf8\" or \"base64\""
            )),
        }
    };
    let id = text("id")?;
    let id = uuid::Uuid::parse_str(id).map_err(|e| format!("field \"id\" is not a UUID: {e}"))?;
    let event = EventData::new(text("type")?, payload("data")?)
        .with_metadata(payload("metadata")?)
        .with_id(id);
    Ok((text("stream")?.to_owned(), event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_read_back_as_the_events_they_show() {
        let id = uuid::Uuid::now_v7();
        let line = format!(
            r#"{{"position":9,"stream":"order-1","version":3,"type":"Paid","id":"{id}","recorded_at":"x","recorded_at_us":1,"data_encoding":"utf8","data":"{{\"a\":1}}","metadata_encoding":"base64","metadata":"/wA="}}"#
        );
        let (stream, back) = from_json_line(line.as_bytes()).unwrap();
        assert_eq!(stream, "order-1");
        assert_eq!(back.event_type(), "Paid");
        assert_eq!(back.data(), br#"{"a":1}"#);
        assert_eq!(back.metadata(), [0xff, 0]);
        assert_eq!(back.id(), Some(id));
        assert!(from_json_line(b"{}").unwrap_err().contains("\"id\""));
        assert!(from_json_line(b"nope").unwrap_err().contains("JSON"));
        let bad = line.replace("base64", "hex");
        assert!(from_json_line(bad.as_bytes()).unwrap_err().contains("hex"));
    }
}
