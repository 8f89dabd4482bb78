//! serde helpers (feature `serde`): typed payloads in and out of JSON, and
//! recorded events serialised in the shape `annals read --json` prints, so
//! that what a program writes and what the CLI shows are the same objects.

use serde::de::DeserializeOwned;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::error::Error;
use crate::event::{EventData, RecordedEvent};
use crate::log::format::recorded_at_utc;

impl EventData {
    /// An event whose data is `value` as JSON.
    ///
    /// ```
    /// #[derive(serde::Serialize)]
    /// struct OrderPaid { amount: u64 }
    ///
    /// let e = annals::EventData::json("OrderPaid", &OrderPaid { amount: 10 })?;
    /// assert_eq!(e.data(), br#"{"amount":10}"#);
    /// # Ok::<(), annals::Error>(())
    /// ```
    pub fn json<T: Serialize + ?Sized>(
        event_type: impl Into<String>,
        value: &T,
    ) -> Result<EventData, Error> {
        let data = serde_json::to_vec(value).map_err(|e| Error::Json {
            position: None,
            reason: e.to_string(),
        })?;
        Ok(EventData::new(event_type, data))
    }
}

impl RecordedEvent {
    /// The event's data read as JSON into a `T`; [`Error::Json`] naming the
    /// event's position when it does not read as one.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct OrderPaid { amount: u64 }
    ///
    /// let store = annals::Store::open(dir.path())?;
    /// let e = annals::EventData::json("OrderPaid", &OrderPaid { amount: 10 })?;
    /// store.append("order-42", annals::ExpectedVersion::Any, &[e])?;
    /// let read = &store.read_stream("order-42", 0, 1)?[0];
    /// assert_eq!(read.json::<OrderPaid>()?, OrderPaid { amount: 10 });
    /// assert!(matches!(read.json::<Vec<u8>>(), Err(annals::Error::Json { position: Some(0), .. })));
    /// # Ok::<(), annals::Error>(())
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.data).map_err(|e| Error::Json {
            position: Some(self.position),
            reason: e.to_string(),
        })
    }
}

/// The `annals read --json` shape: `position`, `stream`, `version`,
/// `type`, `id` (hyphenated), `recorded_at` (RFC 3339 UTC, microseconds),
/// `recorded_at_us`, then `data` and `metadata` as text when they are
/// UTF-8 and as standard base64 otherwise, each with its
/// `data_encoding`/`metadata_encoding` (`"utf8"` or `"base64"`).
impl Serialize for RecordedEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("RecordedEvent", 11)?;
        s.serialize_field("position", &self.position)?;
        s.serialize_field("stream", &*self.stream_id)?;
        s.serialize_field("version", &self.version)?;
        s.serialize_field("type", &*self.event_type)?;
        s.serialize_field("id", &self.id.hyphenated().to_string())?;
        s.serialize_field("recorded_at", &recorded_at_utc(self.recorded_at))?;
        s.serialize_field("recorded_at_us", &self.recorded_at)?;
        let (data_encoding, data) = payload(&self.data);
        s.serialize_field("data_encoding", data_encoding)?;
        s.serialize_field("data", &data)?;
        let (metadata_encoding, metadata) = payload(&self.metadata);
        s.serialize_field("metadata_encoding", metadata_encoding)?;
        s.serialize_field("metadata", &metadata)?;
        s.end()
    }
}

/// A payload as JSON text: itself when UTF-8, base64 otherwise.
fn payload(bytes: &[u8]) -> (&'static str, std::borrow::Cow<'_, str>) {
    use base64::Engine as _;
    match std::str::from_utf8(bytes) {
        Ok(text) => ("utf8", text.into()),
        Err(_) => (
            "base64",
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        ),
    }
}
