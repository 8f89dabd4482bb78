//! How one annals event travels as one JetStream message, both ways.
//!
//! | part of the message | what it carries |
//! | --- | --- |
//! | subject | `<prefix>.<stream id>`, the id escaped into one token ([`crate::escape`]) |
//! | `Nats-Msg-Id` | the event id, hyphenated (JetStream's duplicate window uses it) |
//! | `Annals-Position` | the position in the origin's global log, decimal |
//! | `Annals-Version` | the version within the stream, decimal |
//! | `Annals-Event-Type` | the event type, escaped for a header ([`crate::escape::escape_header`]) |
//! | `Annals-Recorded-At` | microseconds since the Unix epoch, decimal |
//! | `Annals-Metadata` | the metadata in base64 (RFC 4648 standard alphabet, padded); absent when the metadata is empty |
//! | payload | the data, byte for byte |
//!
//! Metadata is binary, and a header value is a line of text, so it is
//! base64: a third larger, but no byte of it can end a header line.
//! Everything read back is checked and limited before it is trusted: a
//! message that is not what [`encode`] writes is a [`WireError`].

use std::sync::Arc;

use annals::RecordedEvent;
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

/// An event as a JetStream message: its subject, its headers and its
/// payload (see the module docs for the layout). The event id goes into
/// [`MSG_ID`].
pub fn encode(
    prefix: &str,
    event: &RecordedEvent,
) -> Result<(String, HeaderMap, Bytes), WireError> {
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
    if !event.metadata.is_empty() {
        let value = BASE64.encode(&event.metadata);
        headers.insert(METADATA, header_value(METADATA, &value)?);
    }
    Ok((subject, headers, event.data.clone()))
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

/// A message written by [`encode`] back as the event, checked: the stream
/// id comes from the subject's last token, everything else from the
/// headers and the payload.
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
