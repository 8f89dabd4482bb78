//! Group commit: concurrent appenders share one write and one `fdatasync`.
//!
//! Leader/follower with a hand-off. An appender queues its batch; if no
//! commit is under way it becomes the leader, takes every queued batch and
//! commits them together. Each batch keeps its own result. When the commit
//! is done, the leader first hands leadership to the oldest appender that
//! queued meanwhile (so the next write starts at once), then wakes each
//! member of its group with its result. Every appender sleeps on its own
//! slot and is woken exactly once: with its result, or to lead. A lone
//! appender finds the queue empty and commits at once.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::Error;
use crate::event::AppendResult;
use crate::log::batch::Batch;

/// What one batch gets back: one result per part (per stream), in order.
pub(crate) type Outcome = Result<Vec<AppendResult>, Error>;

/// The queue of appends waiting for a commit.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<(Batch, Arc<Slot>)>,
    /// Whether some appender is leading a commit (or has been handed the
    /// lead and is about to).
    leader_busy: bool,
}

/// Where one waiting appender sleeps until it is told its result or told
/// to lead.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    woken: Condvar,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Waiting,
    Lead,
    Done(Outcome),
}

impl Slot {
    /// Sleeps until woken: `Some` result, or `None` to lead.
    fn wait(&self) -> Option<Outcome> {
        let mut state = self.state.lock();
        loop {
            match std::mem::take(&mut *state) {
                SlotState::Done(outcome) => return Some(outcome),
                SlotState::Lead => return None,
                SlotState::Waiting => self.woken.wait(&mut state),
            }
        }
    }

    fn wake(&self, to: SlotState) {
        *self.state.lock() = to;
        self.woken.notify_one();
    }

    /// The result left in this slot by the leader that committed it.
    fn take(&self) -> Outcome {
        match std::mem::take(&mut *self.state.lock()) {
            SlotState::Done(outcome) => outcome,
            // Unreachable: a leader answers every slot of its group.
            _ => Err(Error::Poisoned),
        }
    }
}

impl GroupCommit {
    /// Commits `batch`, alone or with the batches queued beside it, and
    /// returns its result. Whoever leads runs `commit` on a group of batches,
    /// which must return one outcome per batch, in order. If `commit`
    /// panics, `on_panic` runs before any other appender can lead, every
    /// member of the group gets [`Error::Poisoned`], and the leader's thread
    /// panics on.
    pub(crate) fn submit(
        &self,
        batch: Batch,
        commit: &dyn Fn(Vec<Batch>) -> Vec<Outcome>,
        on_panic: &dyn Fn(),
    ) -> Outcome {
        let slot = Arc::new(Slot::default());
        let lead_now = {
            let mut queue = self.queue.lock();
            queue.waiting.push((batch, Arc::clone(&slot)));
            !std::mem::replace(&mut queue.leader_busy, true)
        };
        if !lead_now && let Some(outcome) = slot.wait() {
            return outcome;
        }
        // Leading. This appender's batch is in the queue: it was queued when
        // nobody led, or it was the oldest waiting when the lead was handed
        // to it, and only a leader empties the queue.
        let group = std::mem::take(&mut self.queue.lock().waiting);
        let (batches, slots): (Vec<Batch>, Vec<Arc<Slot>>) = group.into_iter().unzip();
        let committed = catch_unwind(AssertUnwindSafe(|| commit(batches)));
        if committed.is_err() {
            // Before anyone else can lead: the next leader must find the
            // store poisoned, not write after a commit that broke halfway.
            on_panic();
        }
        {
            let mut queue = self.queue.lock();
            match queue.waiting.first() {
                Some((_, next)) => next.wake(SlotState::Lead),
                None => queue.leader_busy = false,
            }
        }
        match committed {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for member in &slots {
                    let outcome = outcomes.next().unwrap_or(Err(Error::Poisoned));
                    member.wake(SlotState::Done(outcome));
                }
            }
            Err(panic) => {
                // A bug, not a disk failure; but what reached the disk is
                // unknown, so the store stopped writing above, and no member
                // is left waiting for a result that will never come.
                for member in &slots {
                    member.wake(SlotState::Done(Err(Error::Poisoned)));
                }
                resume_unwind(panic);
            }
        }
        slot.take()
    }
}
