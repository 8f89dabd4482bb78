//! How annals' errors and undecodable records become cqrs-es's
//! [`PersistenceError`].
//!
//! | annals | cqrs-es |
//! | --- | --- |
//! | `WrongExpectedVersion` (another writer got there first) | `OptimisticLockError` |
//! | `Io`, `Poisoned`, `Locked`, `ReadOnly` (the store cannot take writes now; reopening may help) | `ConnectionError` |
//! | `Corruption`, `TornTail`, caller mistakes (an aggregate id too long for a stream id, an invalid event type, a limit) and anything newer | `UnknownError` |
//! | a stored record that is not what annals-cqrs writes (not JSON, wrong shape) | `DeserializationError` carrying a [`DecodeError`] |

use std::fmt;

use annals::RecordedEvent;
use cqrs_es::persist::PersistenceError;

/// Maps an annals error onto cqrs-es's error kinds (see the module table).
pub(crate) fn from_annals(err: annals::Error) -> PersistenceError {
    match err {
        annals::Error::WrongExpectedVersion { .. } => PersistenceError::OptimisticLockError,
        annals::Error::Io { .. }
        | annals::Error::Poisoned
        | annals::Error::Locked { .. }
        | annals::Error::ReadOnly => PersistenceError::ConnectionError(Box::new(err)),
        other => PersistenceError::UnknownError(Box::new(other)),
    }
}

/// A failure of the blocking task that ran a store call (it panicked or was
/// cancelled at shutdown).
pub(crate) fn from_join(err: tokio::task::JoinError) -> PersistenceError {
    PersistenceError::UnknownError(Box::new(err))
}

/// An error for a caller mistake that annals-cqrs itself detects.
pub(crate) fn invalid(message: String) -> PersistenceError {
    PersistenceError::UnknownError(message.into())
}

/// A record in the store that annals-cqrs cannot decode: it names the
/// stream, the version and what is wrong. Returned inside
/// [`PersistenceError::DeserializationError`].
#[derive(Debug)]
pub struct DecodeError {
    /// The stream holding the record.
    pub stream: String,
    /// The record's version in that stream.
    pub version: u64,
    /// What is wrong with it.
    pub reason: String,
    source: Option<serde_json::Error>,
}

impl DecodeError {
    pub(crate) fn new(e: &RecordedEvent, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            stream: e.stream_id.to_string(),
            version: e.version,
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn json(e: &RecordedEvent, what: &str, source: serde_json::Error) -> DecodeError {
        DecodeError {
            stream: e.stream_id.to_string(),
            version: e.version,
            reason: format!("its {what} is not the JSON annals-cqrs writes"),
            source: Some(source),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot decode the record at version {} of stream {:?}: {}",
            self.version, self.stream, self.reason
        )?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<DecodeError> for PersistenceError {
    fn from(err: DecodeError) -> Self {
        PersistenceError::DeserializationError(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annals_errors_map_to_the_cqrs_es_kind_a_caller_acts_on() {
        let conflict = annals::Error::WrongExpectedVersion {
            stream: "s".into(),
            expected: annals::ExpectedVersion::Exact(1),
            actual: Some(2),
        };
        assert!(matches!(
            from_annals(conflict),
            PersistenceError::OptimisticLockError
        ));
        assert!(matches!(
            from_annals(annals::Error::Poisoned),
            PersistenceError::ConnectionError(_)
        ));
        let io = annals::Error::Io {
            op: "write",
            path: "x".into(),
            source: std::io::Error::other("disk gone"),
        };
        assert!(matches!(
            from_annals(io),
            PersistenceError::ConnectionError(_)
        ));
        let corrupt = annals::Error::Corruption {
            file: "seg".into(),
            offset: 7,
            reason: "bad crc".into(),
        };
        let mapped = from_annals(corrupt);
        assert!(matches!(mapped, PersistenceError::UnknownError(_)));
        assert!(mapped.to_string().contains("bad crc"), "{mapped}");
    }
}
