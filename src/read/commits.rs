//! Commit notifications: how a live subscription learns that there is
//! something new to read without polling.
//!
//! The writer's side is one call, [`Commits::notify`], made after a batch
//! is in the index (or, on a read-only store, after a refresh took new
//! frames). It bumps a generation counter, wakes every thread blocked in
//! [`Commits::wait`] and every registered async waker, and never waits for
//! a subscriber: the lock it takes is held by others only to read or bump
//! the counter, or to register a waker.
//!
//! A subscriber reads the generation *before* it reads the index, and
//! waits only while the generation is still that one, so a commit that
//! lands between its read and its wait is never missed.

use std::collections::HashMap;
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// The commit generation and the subscribers waiting for the next one.
#[derive(Default)]
pub(crate) struct Commits {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Bumped by every commit (and by closing).
    generation: u64,
    /// Set for good when the store is closed or dropped.
    closed: bool,
    /// Async subscriptions waiting for the next generation, one waker per
    /// subscription (keyed by its id), so the map never holds more entries
    /// than there are subscriptions.
    wakers: HashMap<u64, Waker>,
    /// The next subscription id.
    next_id: u64,
    /// Live subscriptions, which a read-only store's refresher serves.
    subscribers: usize,
    /// Whether a refresher thread is running for this read-only store.
    refresher: bool,
}

/// What a subscriber saw before reading: compare it after the read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub generation: u64,
    pub closed: bool,
}

impl Commits {
    /// Announces that new events are readable.
    pub(crate) fn notify(&self) {
        let wakers = {
            let mut state = self.state.lock();
            state.generation = state.generation.wrapping_add(1);
            std::mem::take(&mut state.wakers)
        };
        self.changed.notify_all();
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// Marks the store closed: every subscription delivers what is in the
    /// index and ends.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.notify();
    }

    /// The generation and whether the store is closed, read before the
    /// index.
    pub(crate) fn seen(&self) -> Seen {
        let state = self.state.lock();
        Seen {
            generation: state.generation,
            closed: state.closed,
        }
    }

    /// Waits until the generation differs from `seen`'s, or `deadline`
    /// passes (`None`: no deadline). Returns false on timeout.
    pub(crate) fn wait(&self, seen: Seen, deadline: Option<Instant>) -> bool {
        let mut state = self.state.lock();
        while state.generation == seen.generation {
            match deadline {
                Some(at) => {
                    if self.changed.wait_until(&mut state, at).timed_out() {
                        return state.generation != seen.generation;
                    }
                }
                None => self.changed.wait(&mut state),
            }
        }
        true
    }

    /// Registers `waker` for subscription `id`, unless the generation has
    /// already moved past `seen`; returns whether it was registered.
    // Only the `async` feature's `Stream` registers wakers.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn register(&self, id: u64, seen: Seen, waker: &Waker) -> bool {
        let mut state = self.state.lock();
        if state.generation != seen.generation {
            return false;
        }
        match state.wakers.get_mut(&id) {
            Some(w) if w.will_wake(waker) => {}
            Some(w) => w.clone_from(waker),
            None => {
                state.wakers.insert(id, waker.clone());
            }
        }
        true
    }

    /// Counts a new subscription and returns its id.
    pub(crate) fn subscribe(&self) -> u64 {
        let mut state = self.state.lock();
        state.subscribers += 1;
        state.next_id += 1;
        state.next_id
    }

    /// Forgets subscription `id`.
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut state = self.state.lock();
        state.subscribers = state.subscribers.saturating_sub(1);
        state.wakers.remove(&id);
    }

    /// Whether a refresher should be started: true once, until the
    /// refresher stops.
    pub(crate) fn claim_refresher(&self) -> bool {
        let mut state = self.state.lock();
        if state.refresher || state.closed {
            return false;
        }
        state.refresher = true;
        true
    }

    /// For the refresher: waits until `deadline` or the store is closed,
    /// and says whether to refresh (false: stop, and the claim is given
    /// back). It stops when the store is closed or no subscription is left.
    pub(crate) fn refresher_wait(&self, deadline: Instant) -> bool {
        let mut state = self.state.lock();
        loop {
            if state.closed || state.subscribers == 0 {
                state.refresher = false;
                return false;
            }
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                if state.closed || state.subscribers == 0 {
                    state.refresher = false;
                    return false;
                }
                return true;
            }
        }
    }

    /// For the refresher, when it stops for another reason (an error).
    pub(crate) fn release_refresher(&self) {
        self.state.lock().refresher = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_commit_after_seen_is_never_missed() {
        let commits = Arc::new(Commits::default());
        let seen = commits.seen();
        commits.notify();
        // The commit landed between "seen" and "wait": the wait returns at once.
        assert!(commits.wait(seen, None));
        assert!(!commits.wait(commits.seen(), Some(Instant::now())));
    }

    #[test]
    fn notify_wakes_a_blocked_waiter() {
        let commits = Arc::new(Commits::default());
        let seen = commits.seen();
        let c = Arc::clone(&commits);
        let waiter = std::thread::spawn(move || c.wait(seen, None));
        commits.notify();
        assert!(waiter.join().expect("waiter thread"));
    }

    #[test]
    fn close_is_seen_and_wakes() {
        let commits = Commits::default();
        let seen = commits.seen();
        assert!(!seen.closed);
        commits.close();
        assert!(commits.seen().closed);
        assert!(commits.wait(seen, Some(Instant::now() + Duration::from_secs(5))));
        assert!(!commits.claim_refresher());
    }

    #[test]
    fn one_waker_per_subscription() {
        let commits = Commits::default();
        let id = commits.subscribe();
        let seen = commits.seen();
        let waker = Waker::noop();
        for _ in 0..100 {
            assert!(commits.register(id, seen, waker));
        }
        assert_eq!(commits.state.lock().wakers.len(), 1);
        commits.notify();
        assert!(!commits.register(id, seen, waker));
        assert!(commits.state.lock().wakers.is_empty());
        commits.unsubscribe(id);
        assert_eq!(commits.state.lock().subscribers, 0);
    }
}
