//! What the demo saw, counted by agency, kind and outcome, with the moment
//! each envelope was accepted and each delivery read, for latencies. Shared
//! between the sending side and the agencies' readers; holds ids, agency
//! ids, kinds and codes, never what an envelope says.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Counts {
    /// Sent, by (sender, kind).
    pub sent: BTreeMap<(String, String), usize>,
    /// Verdicts, by outcome ("accepted", "duplicate", "refused: CODE").
    pub outcomes: BTreeMap<String, usize>,
    /// Delivered, by (recipient, kind).
    pub delivered: BTreeMap<(String, String), usize>,
    /// Deliveries with fields withheld, by recipient.
    pub withheld: BTreeMap<String, usize>,
    /// Refused, by (sender, "kind: code").
    pub refused: BTreeMap<(String, String), usize>,
    /// Time from sending to the verdict.
    pub verdicts: Vec<Duration>,
    /// Time from sending to each delivery of an agency's envelope.
    pub deliveries: Vec<Duration>,
    /// When each accepted envelope was sent (its verdict may come back
    /// after a recipient has already read it).
    pub sent_at: HashMap<String, Instant>,
    /// Deliveries read a second time by the same recipient (goal: none).
    pub duplicates: usize,
    /// When each (recipient, envelope id) was read.
    pub read_at: HashMap<(String, String), Instant>,
}

/// The counts, shared.
#[derive(Debug, Clone, Default)]
pub struct Tally(Arc<Mutex<Counts>>);

impl Tally {
    pub fn lock(&self) -> MutexGuard<'_, Counts> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the verdict on `sender`'s envelope, sent `took` ago.
    pub fn verdict(&self, sender: &str, kind: &str, id: &str, outcome: String, took: Duration) {
        let mut c = self.lock();
        *c.sent
            .entry((sender.to_owned(), kind.to_owned()))
            .or_default() += 1;
        if outcome == "accepted" {
            let sent = Instant::now()
                .checked_sub(took)
                .unwrap_or_else(Instant::now);
            c.sent_at.insert(id.to_owned(), sent);
        } else if let Some(code) = outcome.strip_prefix("refused: ") {
            *c.refused
                .entry((sender.to_owned(), format!("{kind}: {code}")))
                .or_default() += 1;
        }
        *c.outcomes.entry(outcome).or_default() += 1;
        c.verdicts.push(took);
    }

    /// Records a delivery read by `recipient`.
    pub fn delivery(&self, recipient: &str, kind: &str, id: &str, withheld: bool) {
        let now = Instant::now();
        let mut c = self.lock();
        *c.delivered
            .entry((recipient.to_owned(), kind.to_owned()))
            .or_default() += 1;
        if withheld {
            *c.withheld.entry(recipient.to_owned()).or_default() += 1;
        }
        if let Some(at) = c.sent_at.get(id).copied() {
            c.deliveries.push(now.saturating_duration_since(at));
        }
        if c.read_at
            .insert((recipient.to_owned(), id.to_owned()), now)
            .is_some()
        {
            c.duplicates += 1;
        }
    }

    /// Time from sending `cause` to `recipient` reading `effect`.
    pub fn between(&self, cause: &str, recipient: &str, effect: &str) -> Option<Duration> {
        let c = self.lock();
        let from = c.sent_at.get(cause)?;
        let to = c.read_at.get(&(recipient.to_owned(), effect.to_owned()))?;
        Some(to.saturating_duration_since(*from))
    }

    /// Ids `recipient` read of a kind whose id starts with `prefix`.
    pub fn read_ids(&self, recipient: &str, prefix: &str) -> Vec<String> {
        let c = self.lock();
        let mut ids: Vec<String> = c
            .read_at
            .keys()
            .filter(|(r, id)| r == recipient && id.starts_with(prefix))
            .map(|(_, id)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// How many deliveries of `kind` there were, to anyone.
    pub fn delivered_kind(&self, kind: &str) -> usize {
        self.lock()
            .delivered
            .iter()
            .filter(|((_, k), _)| k == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

/// The `p`-th percentile (0..=1) of `values`.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// A verdict as the report counts it.
pub fn outcome(verdict: &liaison_proto::v1::Verdict) -> String {
    use liaison_proto::v1::verdict::Outcome;
    match Outcome::try_from(verdict.outcome) {
        Ok(Outcome::Accepted) => "accepted".to_owned(),
        Ok(Outcome::Duplicate) => "duplicate".to_owned(),
        _ => format!("refused: {}", verdict.code),
    }
}
