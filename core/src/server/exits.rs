//! The exit queue: processes whose exit the IPC server has not yet collected.
//!
//! Replaces the fixed `{avail, ep}` array of `servers/vm/queryexit.c` (the calls that use
//! it are in `calls/signals.rs`).

use crate::endpoint::Endpoint;
use std::collections::VecDeque;

/// Processes whose exit IPC has not yet collected, in order.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ExitQueue {
    queue: VecDeque<Endpoint>,
    capacity: usize,
    /// Notifications that would have been sent to the IPC server.
    pub notified: u64,
}

impl ExitQueue {
    /// An empty queue of `capacity` entries (`NR_PROCS`).
    pub fn new(capacity: usize) -> ExitQueue {
        ExitQueue { queue: VecDeque::new(), capacity, notified: 0 }
    }

    /// Queues `ep` unless it is queued already; `false` when the queue is full.
    pub(crate) fn push(&mut self, ep: Endpoint) -> bool {
        if !self.queue.contains(&ep) {
            if self.queue.len() >= self.capacity {
                return false;
            }
            self.queue.push_back(ep);
        }
        true
    }

    /// The oldest queued endpoint.
    pub(crate) fn pop(&mut self) -> Option<Endpoint> {
        self.queue.pop_front()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The queued endpoints, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Endpoint> {
        self.queue.iter()
    }
}
