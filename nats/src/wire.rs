//! How one record of an annals log travels as one JetStream message, both
//! ways.
//!
//! A store's log holds events, control records (a delete, a tombstone, a
//! truncation, limits: FORMAT.md, "Control records") and gaps (positions
//! whose records a scavenge removed, and control records' positions as
//! reads see them). Each event and each control record is one message;
//! positions that hold nothing a replica needs cost no message, except a
//! stretch of them at the end of what was shipped, which one *gap message*
//! covers so that a replica ends where the origin does.
//!
//! | part of the message | event | control record | gap message |
//! | --- | --- | --- | --- |
//! | subject | `<prefix>.<stream id>`, escaped into one token ([`crate::escape`]) | `<prefix>.<control stream>` (`$$` and 32 hex digits, escaped: `%24%24…`) | `<prefix>.%24%24gap` |
//! | `Annals-Kind` | absent (or `event`) | `control` | `gap` |
//! | `Nats-Msg-Id` | the event id, hyphenated (JetStream's duplicate window uses it) | the record's id | [`annals::replication::gap_id`] of its position |
//! | `Annals-Position` | the position in the origin's log, decimal | the same | the last position it covers |
//! | `Annals-Follows` | the position of the message shipped before it, or `none` for the first | the same | the same |
//! | `Annals-Version` | the version within the stream, decimal | the version within the control stream | absent |
//! | `Annals-Event-Type` | the event type, escaped for a header ([`crate::escape::escape_header`]) | `$deleted`, `$tombstoned`, `$truncated` or `$limits` | absent |
//! | `Annals-Recorded-At` | microseconds since the Unix epoch, decimal | the same | absent |
//! | `Annals-Metadata` | the metadata in base64 (RFC 4648 standard alphabet, padded); absent when empty | absent | absent |
//! | payload | the data, byte for byte | the stream's lifecycle state (40 bytes) | empty |
//!
//! **The chain.** Every position strictly between a message's
//! `Annals-Follows` and its `Annals-Position` holds nothing a replica
//! needs: it is a gap on the replica too. So each message proves what came
//! before it, and a mirror refuses a message whose `Annals-Follows` is not
//! the position it reached last: a lost message is found, not papered
//! over with gaps. Messages shipped before gaps existed have no
//! `Annals-Follows`, and follow the position before their own, as they
//! always did.
//!
//! Metadata is binary, and a header value is a line of text, so it is
//! base64: a third larger, but no byte of it can end a header line.
//! Everything read back is checked and limited before it is trusted: a
//! message that is not what [`encode_record`] or [`encode_gap`] writes is
//! a [`WireError`].

use std::sync::Arc;

use annals::RecordedEvent;
use annals::replication::LogRecord;
use async_nats::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use thiserror::Error;
use uuid::Uuid;

use crate::escape::{self, EscapeError};

/// The header JetStream deduplicates on; it carries the event id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The event's position in the origin's global log.
pub const POSITION: &str = "Annals-Position";
/// The event's version within its stream.
pub const VERSION: &str = "Annals-Version";
/// The event type, escaped.
pub const EVENT_TYPE: &str = "Annals-Event-Type";
/// When the event was appended, in microseconds since the Unix epoch.
pub const RECORDED_AT: &str = "Annals-Recorded-At";
/// The metadata in base64; absent when empty.
pub const METADATA: &str = "Annals-Metadata";
/// What the message carries: absent or [`KIND_EVENT`] for an event,
/// [`KIND_CONTROL`], [`KIND_GAP`].
pub const KIND: &str = "Annals-Kind";
/// The position of the message shipped before this one, or [`NONE`].
pub const FOLLOWS: &str = "Annals-Follows";
/// [`KIND`] of an event (also what a message without the header is).
pub const KIND_EVENT: &str = "event";
/// [`KIND`] of a control record.
pub const KIND_CONTROL: &str = "control";
/// [`KIND`] of a gap message.
pub const KIND_GAP: &str = "gap";
/// [`FOLLOWS`] of the first message: nothing was shipped before it.
pub const NONE: &str = "none";
/// The last token of a gap message's subject: `$$gap` escaped, a name in
/// annals' reserved namespace that no stream, control or not, can have.
pub const GAP_TOKEN: &str = "%24%24gap";

/// A message decoded by [`decode_message`]: what it carries, and the
/// chain it is part of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    /// The position it stands at (for a gap message, the last one it
    /// covers).
    pub position: u64,
    /// The position of the message shipped before it; `None` for the
    /// first. Every position in between holds nothing a replica needs.
    pub follows: Option<u64>,
    /// The event or control record; `None` for a gap message.
    pub record: Option<LogRecord>,
}

/// The largest metadata, in bytes, that [`decode`] accepts: 64 MiB,
/// beyond anything a NATS server carries by default (1 MiB per message)
/// and beyond annals' own largest event; it bounds what a broken message
/// can make the mirror allocate.
pub const MAX_METADATA_LEN: usize = 64 << 20;

/// The largest payload, in bytes, that [`decode`] accepts (as
/// [`MAX_METADATA_LEN`]).
pub const MAX_DATA_LEN: usize = 64 << 20;

/// The longest decimal header (`u64::MAX` has 20 digits).
const MAX_NUMBER_LEN: usize = 20;

/// What is wrong with a message that [`decode`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// A header [`encode`] always writes is missing.
    #[error("header {0} is missing")]
    Missing(&'static str),
    /// A header is there but does not hold what [`encode`] writes.
    #[error("header {header} is not valid: {reason}")]
    BadHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong, for people.
        reason: String,
    },
    /// The subject is not `<prefix>.<one escaped token>`.
    #[error("subject {subject:?} does not name an annals stream: {reason}")]
    BadSubject {
        /// The subject (cut to 200 characters).
        subject: String,
        /// What is wrong, for people.
        reason: String,
    },
    /// A part is longer than the limit for it.
    #[error("{what} of {len} bytes is longer than the limit of {max} bytes")]
    TooLong {
        /// Which part.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A stream id or event type that cannot be escaped (it is empty).
    #[error("cannot escape the {what}: {source}")]
    Escape {
        /// Which name.
        what: &'static str,
        /// Why.
        source: EscapeError,
    },
}

/// The subject for events of `stream_id` under `prefix`.
pub fn subject(prefix: &str, stream_id: &str) -> Result<String, WireError> {
    let token = escape::escape_token(stream_id).map_err(|source| WireError::Escape {
        what: "stream id",
        source,
    })?;
    Ok(format!("{prefix}.{token}"))
}

/// An event as a JetStream message, as one shipped in a log without gaps
/// would be (following the position before its own): see
/// [`encode_record`].
pub fn encode(
    prefix: &str,
    event: &RecordedEvent,
) -> Result<(String, HeaderMap, Bytes), WireError> {
    encode_record(
        prefix,
        &LogRecord::Event(event.clone()),
        event.position.checked_sub(1),
    )
}

/// A record of the log (an event or a control record) as a JetStream
/// message that follows the message at position `follows`: its subject,
/// its headers and its payload (see the module docs for the layout). The
/// record's id goes into [`MSG_ID`].
pub fn encode_record(
    prefix: &str,
    record: &LogRecord,
    follows: Option<u64>,
) -> Result<(String, HeaderMap, Bytes), WireError> {
    let event = record.record();
    let subject = subject(prefix, &event.stream_id)?;
    let event_type =
        escape::escape_header(&event.event_type).map_err(|source| WireError::Escape {
            what: "event type",
            source,
        })?;
    let mut headers = HeaderMap::new();
    // Each value below is digits, a hyphenated UUID, printable escaped
    // ASCII or base64, all of which a header value may hold, so the
    // parses cannot fail; they are still handled rather than unwrapped.
    let pairs: [(&'static str, String); 5] = [
        (MSG_ID, event.id.hyphenated().to_string()),
        (POSITION, event.position.to_string()),
        (VERSION, event.version.to_string()),
        (EVENT_TYPE, event_type),
        (RECORDED_AT, event.recorded_at.to_string()),
    ];
    for (name, value) in pairs {
        headers.insert(name, header_value(name, &value)?);
    }
    headers.insert(FOLLOWS, header_value(FOLLOWS, &follows_text(follows))?);
    if record.is_control() {
        headers.insert(KIND, KIND_CONTROL);
    }
    if !event.metadata.is_empty() {
        let value = BASE64.encode(&event.metadata);
        headers.insert(METADATA, header_value(METADATA, &value)?);
    }
    Ok((subject, headers, event.data.clone()))
}

/// A gap message: positions after `follows` up to `position` hold nothing
/// a replica needs. Its id is the gap record's id at `position`, so that
/// JetStream's duplicate window knows it again.
pub fn encode_gap(
    prefix: &str,
    position: u64,
    follows: Option<u64>,
) -> Result<(String, HeaderMap, Bytes), WireError> {
    let mut headers = HeaderMap::new();
    let pairs: [(&'static str, String); 4] = [
        (
            MSG_ID,
            annals::replication::gap_id(position)
                .hyphenated()
                .to_string(),
        ),
        (POSITION, position.to_string()),
        (FOLLOWS, follows_text(follows)),
        (KIND, KIND_GAP.to_owned()),
    ];
    for (name, value) in pairs {
        headers.insert(name, header_value(name, &value)?);
    }
    Ok((format!("{prefix}.{GAP_TOKEN}"), headers, Bytes::new()))
}

fn follows_text(follows: Option<u64>) -> String {
    follows.map_or_else(|| NONE.to_owned(), |p| p.to_string())
}

/// The position a message follows ([`FOLLOWS`]); for a message without
/// the header (shipped before gaps existed), the position before its own.
pub fn follows(headers: Option<&HeaderMap>) -> Result<Option<u64>, WireError> {
    match headers.and_then(|h| h.get(FOLLOWS)) {
        None => Ok(number(headers, POSITION)?.checked_sub(1)),
        Some(v) if v.as_str() == NONE => Ok(None),
        Some(_) => number(headers, FOLLOWS).map(Some),
    }
}

/// Any message that [`encode_record`] or [`encode_gap`] writes, back as
/// what it carries, checked: the stream id comes from the subject's last
/// token, everything else from the headers and the payload. The position
/// must come after the one it follows.
pub fn decode_message(
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: Bytes,
) -> Result<Shipped, WireError> {
    let position = number(headers, POSITION)?;
    let follows = follows(headers)?;
    if follows.is_some_and(|f| f >= position) {
        return Err(WireError::BadHeader {
            header: FOLLOWS,
            reason: format!("position {position} cannot follow position {follows:?}"),
        });
    }
    let kind = match headers.and_then(|h| h.get(KIND)) {
        None => KIND_EVENT,
        Some(_) => text(headers, KIND, 16)?,
    };
    let record = match kind {
        KIND_EVENT => Some(LogRecord::Event(decode(subject, headers, payload)?)),
        KIND_CONTROL => Some(LogRecord::Control(decode(subject, headers, payload)?)),
        KIND_GAP => {
            if !subject.ends_with(&format!(".{GAP_TOKEN}")) || !payload.is_empty() {
                return Err(WireError::BadSubject {
                    subject: subject.chars().take(200).collect(),
                    reason: format!("a gap message goes to <prefix>.{GAP_TOKEN}, with no payload"),
                });
            }
            if id(headers)? != annals::replication::gap_id(position) {
                return Err(WireError::BadHeader {
                    header: MSG_ID,
                    reason: format!("not the gap id of position {position}"),
                });
            }
            None
        }
        other => {
            return Err(WireError::BadHeader {
                header: KIND,
                reason: format!("{other:?} is not event, control or gap"),
            });
        }
    };
    Ok(Shipped {
        position,
        follows,
        record,
    })
}

fn header_value(name: &'static str, value: &str) -> Result<async_nats::HeaderValue, WireError> {
    value.parse().map_err(|e| WireError::BadHeader {
        header: name,
        reason: format!("{e}"),
    })
}

/// The event id and position of a message, without decoding the rest:
/// what the shipper needs to know where JetStream ends.
pub fn position_and_id(headers: Option<&HeaderMap>) -> Result<(u64, Uuid), WireError> {
    Ok((number(headers, POSITION)?, id(headers)?))
}

/// An event message (or a control record's) back as the record's fields,
/// checked: the stream id comes from the subject's last token, everything
/// else from the headers and the payload. [`decode_message`] decodes any
/// message and says what it carries.
pub fn decode(
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: Bytes,
) -> Result<RecordedEvent, WireError> {
    let shown = || subject.chars().take(200).collect::<String>();
    let Some((_, token)) = subject.rsplit_once('.') else {
        return Err(WireError::BadSubject {
            subject: shown(),
            reason: "it has no prefix".into(),
        });
    };
    let stream_id = escape::unescape_token(token).map_err(|e| WireError::BadSubject {
        subject: shown(),
        reason: e.to_string(),
    })?;
    let event_type = escape::unescape_header(text(headers, EVENT_TYPE, escape::MAX_ESCAPED_LEN)?)
        .map_err(|e| WireError::BadHeader {
        header: EVENT_TYPE,
        reason: e.to_string(),
    })?;
    // Base64 is four bytes of text for every three of metadata.
    let metadata = match headers.and_then(|h| h.get(METADATA)) {
        None => Bytes::new(),
        Some(_) => {
            let text = text(headers, METADATA, MAX_METADATA_LEN.div_ceil(3) * 4)?;
            let bytes = BASE64.decode(text).map_err(|e| WireError::BadHeader {
                header: METADATA,
                reason: e.to_string(),
            })?;
            Bytes::from(bytes)
        }
    };
    if payload.len() > MAX_DATA_LEN {
        return Err(WireError::TooLong {
            what: "payload",
            len: payload.len(),
            max: MAX_DATA_LEN,
        });
    }
    Ok(RecordedEvent {
        stream_id: Arc::from(stream_id),
        version: number(headers, VERSION)?,
        position: number(headers, POSITION)?,
        event_type: Arc::from(event_type),
        data: payload,
        metadata,
        id: id(headers)?,
        recorded_at: number(headers, RECORDED_AT)?,
    })
}

/// A header's text, refused when missing or longer than `max` bytes.
fn text<'a>(
    headers: Option<&'a HeaderMap>,
    name: &'static str,
    max: usize,
) -> Result<&'a str, WireError> {
    let value = headers
        .and_then(|h| h.get(name))
        .ok_or(WireError::Missing(name))?
        .as_str();
    if value.len() > max {
        return Err(WireError::TooLong {
            what: name,
            len: value.len(),
            max,
        });
    }
    Ok(value)
}

fn number(headers: Option<&HeaderMap>, name: &'static str) -> Result<u64, WireError> {
    let value = text(headers, name, MAX_NUMBER_LEN)?;
    // `u64::from_str` takes a leading `+`, which encode never writes.
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WireError::BadHeader {
            header: name,
            reason: format!("{value:?} is not a decimal number"),
        });
    }
    value.parse().map_err(|e| WireError::BadHeader {
        header: name,
        reason: format!("{value:?}: {e}"),
    })
}

fn id(headers: Option<&HeaderMap>) -> Result<Uuid, WireError> {
    // A hyphenated UUID is 36 characters.
    let value = text(headers, MSG_ID, 36)?;
    Uuid::try_parse(value).map_err(|e| WireError::BadHeader {
        header: MSG_ID,
        reason: format!("{value:?}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(metadata: &[u8]) -> RecordedEvent {
        RecordedEvent {
            stream_id: Arc::from("order.42 é"),
            version: 7,
            position: u64::MAX - 1,
            event_type: Arc::from("Order Placed\n%"),
            data: Bytes::from_static(b"\x00\xff{}"),
            metadata: Bytes::copy_from_slice(metadata),
            id: Uuid::now_v7(),
            recorded_at: 1_700_000_000_000_000,
        }
    }

    #[test]
    fn every_field_round_trips() {
        for metadata in [&b""[..], b"\x00\r\n\xff binary", b"x"] {
            let e = event(metadata);
            let (subject, headers, payload) = encode("annals.prod", &e).unwrap();
            assert_eq!(subject, "annals.prod.order%2E42%20%C3%A9");
            assert_eq!(headers.get(METADATA).is_some(), !metadata.is_empty());
            let back = decode(&subject, Some(&headers), payload).unwrap();
            assert_eq!(back, e);
            assert_eq!(position_and_id(Some(&headers)).unwrap(), (e.position, e.id));
        }
    }

    #[test]
    fn control_records_and_gaps_round_trip_with_their_chain() {
        let mut c = event(b"");
        c.stream_id = Arc::from("$$0123456789abcdef0123456789abcdef");
        c.event_type = Arc::from("$deleted");
        let control = LogRecord::Control(c);
        let (subject, headers, payload) = encode_record("p", &control, Some(3)).unwrap();
        assert_eq!(subject, "p.%24%240123456789abcdef0123456789abcdef");
        let back = decode_message(&subject, Some(&headers), payload).unwrap();
        assert_eq!(back.record, Some(control.clone()));
        assert_eq!((back.position, back.follows), (u64::MAX - 1, Some(3)));

        let (subject, headers, payload) = encode_gap("p", 9, None).unwrap();
        let back = decode_message(&subject, Some(&headers), payload.clone()).unwrap();
        assert_eq!(
            back,
            Shipped {
                position: 9,
                follows: None,
                record: None
            }
        );
        assert_eq!(
            position_and_id(Some(&headers)).unwrap(),
            (9, annals::replication::gap_id(9))
        );
        // A gap message must be what encode_gap writes.
        assert!(decode_message("p.other", Some(&headers), payload.clone()).is_err());
        assert!(decode_message(&subject, Some(&headers), Bytes::from_static(b"x")).is_err());
        let mut h = headers.clone();
        h.insert(POSITION, "8");
        assert!(decode_message(&subject, Some(&h), payload.clone()).is_err());
        // A message cannot follow its own position or a later one, and
        // the kind must be one of three.
        let mut h = headers.clone();
        h.insert(FOLLOWS, "9");
        assert!(decode_message(&subject, Some(&h), payload.clone()).is_err());
        let mut h = headers.clone();
        h.insert(KIND, "other");
        assert!(decode_message(&subject, Some(&h), payload).is_err());

        // A message of a log without gaps (no Annals-Follows) follows the
        // position before its own.
        let e = event(b"");
        let (subject, mut headers, payload) = encode("p", &e).unwrap();
        headers = {
            let mut h = HeaderMap::new();
            for (name, values) in headers.iter() {
                if AsRef::<str>::as_ref(name) != FOLLOWS {
                    for v in values {
                        h.append(name.clone(), v.clone());
                    }
                }
            }
            h
        };
        let back = decode_message(&subject, Some(&headers), payload).unwrap();
        assert_eq!(back.follows, Some(e.position - 1));
        assert_eq!(back.record, Some(LogRecord::Event(e)));
    }

    #[test]
    fn refuses_broken_messages() {
        let e = event(b"m");
        let (subject, headers, payload) = encode("p", &e).unwrap();
        assert_eq!(
            decode(&subject, None, payload.clone()),
            Err(WireError::Missing(EVENT_TYPE))
        );
        assert!(matches!(
            decode("nodot", Some(&headers), payload.clone()),
            Err(WireError::BadSubject { .. })
        ));
        for (name, bad) in [
            (POSITION, "+5"),
            (POSITION, "184467440737095516160"),
            (VERSION, "-1"),
            (MSG_ID, "not-a-uuid"),
            (METADATA, "!!"),
            (EVENT_TYPE, "%zz"),
        ] {
            let mut h = headers.clone();
            h.insert(name, bad);
            assert!(
                decode(&subject, Some(&h), payload.clone()).is_err(),
                "{name}: {bad}"
            );
        }
        let mut h = headers.clone();
        // 21 digits: longer than any u64, refused before it is parsed.
        h.insert(POSITION, "1".repeat(21).as_str());
        assert!(matches!(
            decode(&subject, Some(&h), payload),
            Err(WireError::TooLong { .. })
        ));
    }
}
