//! Showing recorded events: as an aligned table, one line each, or one JSON
//! object per line. Shared by `read` and `tail`.

use std::io::{self, Write};

use annals::RecordedEvent;

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
