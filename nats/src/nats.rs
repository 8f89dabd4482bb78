//! The NATS side shared by both directions: connecting, naming, and
//! telling failures that a retry cures from those that need a person.

use std::time::Duration;

use async_nats::jetstream::{self, Context};

use crate::error::Error;

/// How long a JetStream request or publish acknowledgement may take
/// before the attempt counts as failed and is retried. Long enough for a
/// loaded server; short enough that a restarted server costs seconds, not
/// minutes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A step that did not work: either try again (the server is away, a
/// publish raced another shipper) or stop and tell a person.
#[derive(Debug)]
pub(crate) enum Fault {
    /// Worth another attempt; the text says what happened.
    Retry(String),
    /// Not curable by waiting.
    Fatal(Error),
}

impl From<Error> for Fault {
    fn from(e: Error) -> Fault {
        Fault::Fatal(e)
    }
}

impl From<annals::Error> for Fault {
    fn from(e: annals::Error) -> Fault {
        Fault::Fatal(Error::Store(e))
    }
}

/// Builds a [`Fault::Retry`] from any error, with what was being done.
pub(crate) fn retry(doing: &str) -> impl FnOnce(&dyn std::fmt::Display) -> Fault + '_ {
    move |e| Fault::Retry(format!("{doing}: {e}"))
}

/// Connects to `server`. The client then reconnects by itself, for ever,
/// quickly: a restarted server is back within a second.
pub(crate) async fn connect(server: &str, max_in_flight: usize) -> Result<Context, Fault> {
    let options = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| Duration::from_millis(50 * attempts.min(20) as u64))
        .connection_timeout(Duration::from_secs(2));
    match options.connect(server).await {
        Ok(client) => Ok(jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .ack_timeout(REQUEST_TIMEOUT)
            // The shipper bounds its own acks in flight; the client's
            // bound is a second fence, with room for acks of an
            // abandoned attempt that are still being waited out.
            .max_ack_inflight(max_in_flight.saturating_mul(4).max(1))
            .backpressure_on_inflight(true)
            .build(client)),
        Err(e) if matches!(e.kind(), async_nats::ConnectErrorKind::ServerParse) => {
            Err(Fault::Fatal(Error::InvalidArgument {
                what: "server",
                reason: format!("{server:?}: {e}"),
            }))
        }
        Err(e) => Err(Fault::Retry(format!("cannot connect to {server}: {e}"))),
    }
}

/// Checks a JetStream stream name: one token, no wildcards or whitespace
/// (the server refuses those, with a less helpful message).
pub(crate) fn check_stream_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\')
        });
    if bad {
        return Err(Error::InvalidArgument {
            what: "stream name",
            reason: format!(
                "{name:?}: a JetStream stream name is 1 to 255 characters without '.', '*', '>', slashes or whitespace"
            ),
        });
    }
    Ok(())
}

/// Checks a subject prefix: one or more tokens separated by `.`, none
/// empty, none a wildcard, no whitespace.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), Error> {
    let bad = prefix.len() > 1024
        || prefix.split('.').any(|t| {
            t.is_empty()
                || t == "*"
                || t == ">"
                || t.chars().any(|c| c.is_whitespace() || c.is_control())
        });
    if bad {
        return Err(Error::InvalidArgument {
            what: "subject prefix",
            reason: format!(
                "{prefix:?}: a prefix is up to 1024 bytes of '.'-separated tokens, none empty, \
                 none '*' or '>', without whitespace"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_stream_name("EVENTS").is_ok());
        for bad in ["", "a.b", "a b", "a*", ">", "a/b"] {
            assert!(check_stream_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_prefix("annals").is_ok());
        assert!(check_prefix("prod.annals").is_ok());
        for bad in ["", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
