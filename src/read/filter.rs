//! [`Filter`]: which events of `$all` a filtered read or subscription
//! returns, and [`FilteredPage`], what a filtered read gives back.

use crate::error::{Error, Limit};
use crate::event::RecordedEvent;

/// The most prefixes and event types one filter may hold, counting every
/// part of an [`and`](Filter::and).
pub const MAX_FILTER_TERMS: usize = 1_024;

/// Which events of `$all` to return: by stream-id prefix, by event type,
/// or both.
///
/// A filter is a conjunction of clauses; each clause is a list of
/// alternatives. [`Filter::and`] joins two filters, and an event must pass
/// both.
///
/// ```
/// use annals::Filter;
///
/// let orders = Filter::stream_prefixes(["order-", "refund-"]);
/// let paid = Filter::event_types(["OrderPaid"]);
/// let paid_orders = orders.and(paid);
/// assert!(paid_orders.matches("order-42", "OrderPaid"));
/// assert!(!paid_orders.matches("order-42", "OrderPlaced"));
/// assert!(!paid_orders.matches("user-7", "OrderPaid"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Every clause must match. Flat rather than nested, so that a chain of
    /// `and`s costs no recursion.
    clauses: Vec<Clause>,
}

/// One condition: any of its alternatives matches.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Clause {
    StreamPrefixes(Vec<String>),
    EventTypes(Vec<String>),
}

impl Clause {
    fn matches(&self, stream: &str, event_type: &str) -> bool {
        match self {
            Clause::StreamPrefixes(prefixes) => prefixes.iter().any(|p| stream.starts_with(&**p)),
            Clause::EventTypes(types) => types.iter().any(|t| t == event_type),
        }
    }

    fn terms(&self) -> usize {
        match self {
            Clause::StreamPrefixes(v) | Clause::EventTypes(v) => v.len(),
        }
    }
}

impl Filter {
    /// Events of streams whose id starts with `prefix` (all of them when it
    /// is empty).
    pub fn stream_prefix(prefix: impl Into<String>) -> Filter {
        Filter::stream_prefixes([prefix])
    }

    /// Events of streams whose id starts with any of `prefixes` (none when
    /// the list is empty).
    pub fn stream_prefixes<I, S>(prefixes: I) -> Filter
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Filter {
            clauses: vec![Clause::StreamPrefixes(
                prefixes.into_iter().map(Into::into).collect(),
            )],
        }
    }

    /// Events whose type is exactly one of `types` (none when the list is
    /// empty).
    pub fn event_types<I, S>(types: I) -> Filter
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Filter {
            clauses: vec![Clause::EventTypes(
                types.into_iter().map(Into::into).collect(),
            )],
        }
    }

    /// Events that pass both `self` and `other`.
    #[must_use]
    pub fn and(mut self, other: Filter) -> Filter {
        self.clauses.extend(other.clauses);
        self
    }

    /// Whether an event of `stream` with type `event_type` passes.
    pub fn matches(&self, stream: &str, event_type: &str) -> bool {
        self.clauses.iter().all(|c| c.matches(stream, event_type))
    }

    /// Whether `event` passes.
    pub fn matches_event(&self, event: &RecordedEvent) -> bool {
        self.matches(&event.stream_id, &event.event_type)
    }

    /// The alternatives of the filter's first event-type clause, if it has
    /// one: every event it passes has one of these types.
    pub(crate) fn event_type_terms(&self) -> Option<&[String]> {
        self.clauses.iter().find_map(|c| match c {
            Clause::EventTypes(types) => Some(types.as_slice()),
            Clause::StreamPrefixes(_) => None,
        })
    }

    /// The alternatives of the filter's first stream-prefix clause, if it
    /// has one: every event it passes is in a stream with one of these
    /// prefixes.
    pub(crate) fn stream_prefix_terms(&self) -> Option<&[String]> {
        self.clauses.iter().find_map(|c| match c {
            Clause::StreamPrefixes(prefixes) => Some(prefixes.as_slice()),
            Clause::EventTypes(_) => None,
        })
    }

    /// Refuses a filter with more than [`MAX_FILTER_TERMS`] terms.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let terms: usize = self.clauses.iter().map(Clause::terms).sum();
        if terms > MAX_FILTER_TERMS {
            return Err(Error::LimitExceeded {
                limit: Limit::FilterTerms,
                actual: terms as u64,
                max: MAX_FILTER_TERMS as u64,
            });
        }
        Ok(())
    }
}

/// A page of a filtered read of `$all`
/// ([`Store::read_all_filtered`](crate::Store::read_all_filtered)).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct FilteredPage {
    /// The matching events, in position order.
    pub events: Vec<RecordedEvent>,
    /// Where the next page starts: past every event this read examined,
    /// matching or not, so that paging never examines an event twice. It
    /// is never less than the page's `from_position`.
    pub next_position: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_are_any_of_and_all_of() {
        let f = Filter::stream_prefixes(["a-", "b-"]).and(Filter::event_types(["X", "Y"]));
        assert!(f.matches("a-1", "X"));
        assert!(f.matches("b-1", "Y"));
        assert!(!f.matches("c-1", "X"));
        assert!(!f.matches("a-1", "Z"));
        assert!(Filter::stream_prefix("").matches("anything", "T"));
        assert!(!Filter::event_types(Vec::<String>::new()).matches("s", "T"));
        // A type is matched whole, not as a prefix.
        assert!(!Filter::event_types(["Order"]).matches("s", "OrderPaid"));
    }

    #[test]
    fn too_many_terms_are_refused() {
        let many = Filter::event_types((0..MAX_FILTER_TERMS).map(|i| i.to_string()));
        assert!(many.validate().is_ok());
        let over = many.and(Filter::stream_prefix("x"));
        assert!(matches!(
            over.validate(),
            Err(Error::LimitExceeded {
                limit: Limit::FilterTerms,
                actual: 1_025,
                max: 1_024
            })
        ));
    }
}
