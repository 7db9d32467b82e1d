//! The record ids of the most recent ledger entries, so that a record
//! published twice under the same id (a sender's retry around a nats-server
//! crash, when the server's own de-duplication did not hold) is chained once.
//! A bounded memory: the oldest ids are forgotten first.

use std::collections::{HashSet, VecDeque};

/// Record ids remembered to refuse a second copy of a record.
pub const RECENT_IDS: usize = 100_000;

/// The ids of the last [`RECENT_IDS`] records appended.
#[derive(Debug, Default)]
pub struct RecentIds {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    /// Whether `id` (never the empty id) was appended recently.
    pub fn contains(&self, id: &str) -> bool {
        !id.is_empty() && self.ids.contains(id)
    }

    /// Remembers `id` (the empty id is not remembered).
    pub fn insert(&mut self, id: String) {
        if !id.is_empty() && self.ids.insert(id.clone()) {
            self.order.push_back(id);
        }
        while self.order.len() > RECENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }
}
