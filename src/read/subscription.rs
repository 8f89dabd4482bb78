//! [`Subscription`]: catch up from a checkpoint, then follow live, in
//! order, exactly once.
//!
//! A subscription is pull-based. It holds its position, one page of
//! events read but not yet delivered, and shared handles on the index and
//! the commit notifications; it never holds a lock between calls, and the
//! writer never waits for it. When its page is empty it reads the next one
//! from the index, as `read_all` does; when the index has nothing more it
//! waits for the next commit ([`Commits`]), which in the writer's process
//! comes from the append and in a read-only process from the store's
//! refresher thread.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::commits::{Commits, Seen};
use super::filter::Filter;
use super::follow::Follower;
use super::pages;
use crate::error::Error;
use crate::event::RecordedEvent;
use crate::index::shared::SharedIndex;

/// How many events a subscription reads from the index at a time: the
/// most it ever holds.
pub const SUBSCRIPTION_PAGE_EVENTS: usize = 1_000;

/// The first page a subscription reads: small, so that the first event of
/// a resumed subscription comes at once; each page after doubles up to
/// [`SUBSCRIPTION_PAGE_EVENTS`].
const FIRST_PAGE_EVENTS: u64 = 16;

/// A filtered subscription sends a [`SubscriptionItem::Checkpoint`] after
/// at most this many events examined without a match.
pub const CHECKPOINT_EVENTS: u64 = 1_000;

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// From the first event (position 0, or version 0 of the stream).
    Start,
    /// Only what is appended after the subscription is made.
    End,
    /// Right after a checkpoint: the event after position `p` (or version
    /// `v` of the stream). Resuming from a stored checkpoint repeats and
    /// skips nothing.
    After(u64),
}

/// What a subscription delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionItem {
    /// The next event. Store its `position` (its `version` for a stream
    /// subscription) as the checkpoint once it is handled.
    Event(RecordedEvent),
    /// Everything that existed when the subscription was made has been
    /// delivered; what follows is live. Sent exactly once. `position` is
    /// the log's end at subscribe time: the position the next event got
    /// then (for a stream subscription, the stream's next version). It is
    /// a count, not a checkpoint: resume from the last event's position.
    CaughtUp {
        /// The number of events (of the stream, for a stream subscription)
        /// that existed when the subscription was made.
        position: u64,
    },
    /// A filtered subscription examined events up to and including
    /// `position` and none since the last item matched. Safe to store as
    /// the checkpoint: `SubscribeFrom::After(position)` goes on from here.
    Checkpoint {
        /// The position of the last event examined.
        position: u64,
    },
}

/// What a subscription follows.
enum Target {
    All(Option<Filter>),
    Stream(String),
}

/// The shared parts of the store a subscription reads through.
pub(crate) struct Source {
    pub index: Arc<SharedIndex>,
    pub commits: Arc<Commits>,
    /// For a subscription on a read-only store: the follower whose
    /// refresher thread feeds the index.
    pub follower: Option<Arc<Follower>>,
}

/// A subscription to `$all` or to one stream: first every event from its
/// start (catch-up), then [`SubscriptionItem::CaughtUp`], then each event
/// as it is committed, in order, exactly once.
///
/// Made by [`Store::subscribe_all`](crate::Store::subscribe_all) and
/// [`Store::subscribe_stream`](crate::Store::subscribe_stream). It is an
/// [`Iterator`] that blocks until the next item; [`next_timeout`]
/// waits at most a given time. When the store is closed or dropped, it
/// delivers everything that was committed and then ends: `next` returns
/// `None` and `next_timeout` returns [`Error::StoreClosed`]. An error (a
/// damaged record, say) is returned in place of an item and the position
/// does not move, so the next call tries the same events again.
///
/// It never sees part of a batch, and holds at most one page
/// ([`SUBSCRIPTION_PAGE_EVENTS`]) of events however slowly it is read: a
/// subscriber that stops reading costs nothing more than that, and the
/// writer never waits for it. It is `Send`, and may outlive the `Store`.
///
/// With the `async` feature it is also a `futures_core::Stream`, woken by
/// the commit, with no thread of its own.
///
/// [`next_timeout`]: Subscription::next_timeout
pub struct Subscription {
    source: Source,
    /// This subscription's id among the store's (for its async waker).
    id: u64,
    target: Target,
    /// The next position (for `$all`) or version (for a stream) to read.
    next: u64,
    /// The end at subscribe time, until `CaughtUp` is delivered.
    catching_up: Option<u64>,
    /// Events examined without a match since the last item (filtered).
    unmatched: u64,
    /// Items read but not yet delivered: at most one page.
    page: Page,
    /// How many events the next page reads at most.
    page_events: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::All(filter) => format!("$all, filter {filter:?}"),
            Target::Stream(s) => format!("stream {s:?}"),
        };
        f.debug_struct("Subscription")
            .field("target", &target)
            .field("next", &self.next)
            .field("caught_up", &self.catching_up.is_none())
            .field("buffered", &self.page.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.source.commits.unsubscribe(self.id);
    }
}

impl Subscription {
    /// A subscription to `$all` from `from`, which the caller has checked
    /// against `end`, the log's end now.
    pub(crate) fn all(
        source: Source,
        end: u64,
        from: SubscribeFrom,
        filter: Option<Filter>,
    ) -> Result<Subscription, Error> {
        if let Some(f) = &filter {
            f.validate()?;
        }
        let next = start(from, end, None)?;
        Ok(Subscription::new(source, Target::All(filter), next, end))
    }

    /// A subscription to `stream`, whose next version is `end` now.
    pub(crate) fn stream(
        source: Source,
        stream: &str,
        end: u64,
        from: SubscribeFrom,
    ) -> Result<Subscription, Error> {
        let next = start(from, end, Some(stream))?;
        Ok(Subscription::new(
            source,
            Target::Stream(stream.to_owned()),
            next,
            end,
        ))
    }

    fn new(source: Source, target: Target, next: u64, end: u64) -> Subscription {
        let id = source.commits.subscribe();
        Subscription {
            source,
            id,
            target,
            next,
            catching_up: Some(end),
            unmatched: 0,
            page: Page::default(),
            page_events: FIRST_PAGE_EVENTS,
        }
    }

    /// The next item, waiting at most `timeout` for one: `Ok(None)` when
    /// nothing came in time, [`Error::StoreClosed`] when the store was
    /// closed or dropped and everything committed has been delivered.
    #[inline]
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<SubscriptionItem>, Error> {
        // The page first, inlined, as in `next`.
        if let Some(item) = self.page.pop() {
            return Ok(Some(item));
        }
        self.pull(Instant::now().checked_add(timeout))
    }

    /// How many items this subscription has read from the index and not
    /// yet delivered; never more than [`SUBSCRIPTION_PAGE_EVENTS`] plus the
    /// `CaughtUp` and `Checkpoint` after them.
    pub fn buffered(&self) -> usize {
        self.page.len()
    }

    /// The next item, waiting until `deadline` (`None`: for ever).
    fn pull(&mut self, deadline: Option<Instant>) -> Result<Option<SubscriptionItem>, Error> {
        loop {
            if let Some(item) = self.page.pop() {
                return Ok(Some(item));
            }
            // Read before the index, so that a commit between the read and
            // the wait is never missed, and a close is seen only after
            // everything committed before it has been read.
            let seen = self.source.commits.seen();
            self.fill()?;
            if !self.page.is_empty() {
                continue;
            }
            self.nothing_new(seen)?;
            if !self.source.commits.wait(seen, deadline) {
                return Ok(None);
            }
        }
    }

    /// With nothing more to read: the end if the store is closed, or the
    /// failure of a read-only store's refresher.
    fn nothing_new(&self, seen: Seen) -> Result<(), Error> {
        if seen.closed {
            return Err(Error::StoreClosed);
        }
        match self.source.follower.as_ref().and_then(|f| f.failure()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reads the next page into `self.page`, with `CaughtUp` (and a
    /// filtered subscription's `Checkpoint`) where they fall.
    fn fill(&mut self) -> Result<(), Error> {
        if self.catch_up_done() {
            return Ok(());
        }
        // While catching up, a page ends at the subscribe-time end, so
        // that `CaughtUp` goes right after the last event before it.
        let max_count = match self.catching_up {
            Some(end) => (end - self.next).min(self.page_events) as usize,
            None => self.page_events as usize,
        };
        self.page_events = (self.page_events * 2).min(SUBSCRIPTION_PAGE_EVENTS as u64);
        let index = &self.source.index;
        match &self.target {
            Target::All(None) => {
                // Past removed events too, so that a subscription whose
                // last events before the subscribe-time end were removed
                // still reaches it.
                let until = self.catching_up.unwrap_or(u64::MAX);
                let (events, next) = pages::all_until(index, self.next, until, max_count)?;
                self.next = self.next.max(next);
                self.page.set_events(events);
            }
            Target::All(Some(filter)) => {
                // Neither past a checkpoint's due nor, while catching up,
                // past the subscribe-time end.
                let due = CHECKPOINT_EVENTS - self.unmatched;
                let max_examined = match self.catching_up {
                    Some(end) => due.min(end - self.next),
                    None => due,
                } as usize;
                let found = pages::filtered(index, self.next, max_count, max_examined, filter)?;
                let mut cursor = self.next;
                if let Some(last) = found.events.last() {
                    cursor = last.position + 1;
                    self.unmatched = 0;
                }
                self.page.set_events(found.events);
                self.unmatched += found.next_position - cursor;
                self.next = found.next_position;
                if self.unmatched >= CHECKPOINT_EVENTS {
                    self.checkpoint();
                }
            }
            Target::Stream(name) => match pages::stream(index, name, self.next, max_count) {
                Ok(events) => {
                    if let Some(last) = events.last() {
                        self.next = last.version + 1;
                    }
                    self.page.set_events(events);
                }
                // A stream that does not exist yet is followed all the same.
                Err(Error::StreamNotFound { .. }) => {}
                Err(e) => return Err(e),
            },
        }
        self.catch_up_done();
        Ok(())
    }

    /// Queues `CaughtUp` (after a filtered subscription's checkpoint) once
    /// the subscribe-time end is reached; returns whether it did.
    fn catch_up_done(&mut self) -> bool {
        match self.catching_up {
            Some(end) if self.next >= end => {
                self.catching_up = None;
                if self.unmatched > 0 {
                    self.checkpoint();
                }
                self.page.mark(SubscriptionItem::CaughtUp { position: end });
                true
            }
            _ => false,
        }
    }

    /// Queues a `Checkpoint` at the last position examined.
    fn checkpoint(&mut self) {
        if let Some(position) = self.next.checked_sub(1) {
            self.page.mark(SubscriptionItem::Checkpoint { position });
        }
        self.unmatched = 0;
    }
}

/// What a subscription has read and not yet delivered: one page of events,
/// then the markers (`Checkpoint`, `CaughtUp`) that follow them. The events
/// stay in the `Vec` the read returned and move out once each, when
/// delivered; a catch-up over millions of events pays for no other move.
#[derive(Default)]
struct Page {
    events: std::vec::IntoIter<RecordedEvent>,
    marks: VecDeque<SubscriptionItem>,
}

impl Page {
    #[inline]
    fn pop(&mut self) -> Option<SubscriptionItem> {
        match self.events.next() {
            Some(e) => Some(SubscriptionItem::Event(e)),
            None => self.marks.pop_front(),
        }
    }

    /// Takes a new page of events; only ever called when the last one has
    /// been delivered, markers included.
    fn set_events(&mut self, events: Vec<RecordedEvent>) {
        debug_assert!(self.is_empty());
        self.events = events.into_iter();
    }

    fn mark(&mut self, item: SubscriptionItem) {
        self.marks.push_back(item);
    }

    fn len(&self) -> usize {
        self.events.len() + self.marks.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The first position (or version) a subscription from `from` reads, when
/// the log (or stream) now ends at `end`; a checkpoint at or past the end is
/// refused.
fn start(from: SubscribeFrom, end: u64, stream: Option<&str>) -> Result<u64, Error> {
    match from {
        SubscribeFrom::Start => Ok(0),
        SubscribeFrom::End => Ok(end),
        SubscribeFrom::After(checkpoint) if checkpoint < end => Ok(checkpoint + 1),
        SubscribeFrom::After(checkpoint) => Err(Error::CheckpointAhead {
            checkpoint,
            end,
            stream: stream.map(crate::error::excerpt),
        }),
    }
}

impl Iterator for Subscription {
    type Item = Result<SubscriptionItem, Error>;

    /// The next item, waiting as long as it takes; `None` once the store
    /// is closed and everything committed has been delivered.
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // The page first, inlined into the caller: a catch-up delivers
        // millions of events from pages, and each event moved through one
        // more call is a copy of it (about a third of a catch-up's cost
        // beyond `read_all`'s, measured with callgrind).
        if let Some(item) = self.page.pop() {
            return Some(Ok(item));
        }
        match self.pull(None) {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) | Err(Error::StoreClosed) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(feature = "async")]
impl futures_core::Stream for Subscription {
    type Item = Result<SubscriptionItem, Error>;

    /// The next item, or `Pending` with the task's waker registered for
    /// the next commit; `None` once the store is closed and everything
    /// committed has been delivered. Reads of the index happen inside the
    /// poll (they never wait for a lock held across I/O).
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            if let Some(item) = this.page.pop() {
                return Poll::Ready(Some(Ok(item)));
            }
            let seen = this.source.commits.seen();
            if let Err(e) = this.fill() {
                return Poll::Ready(Some(Err(e)));
            }
            if !this.page.is_empty() {
                continue;
            }
            match this.nothing_new(seen) {
                Err(Error::StoreClosed) => return Poll::Ready(None),
                Err(e) => return Poll::Ready(Some(Err(e))),
                Ok(()) => {}
            }
            if this.source.commits.register(this.id, seen, cx.waker()) {
                return Poll::Pending;
            }
        }
    }
}
