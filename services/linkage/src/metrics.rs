//! The linkage service's metrics: events folded into the index (by envelope
//! kind), matches raised (by kind: `reengagement`, `duplicate_subject`), the
//! index's size, the events waiting in its outbox and the EVENTS sequence it
//! has applied. Labels are message kinds only: never a token, a case id or
//! an agency's content.

use liaison_runtime::discovery::{Member, info_gauge};
use liaison_runtime::metrics::{Counter, Gauge, Registry};
use std::sync::Arc;

/// Every linkage metric, registered in one [`Registry`].
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub folded: Counter,
    pub matches: Counter,
    pub tokens: Gauge,
    pub cases: Gauge,
    pub outbox: Gauge,
    pub cursor: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        info_gauge(&r, Member::Linkage);
        Self {
            folded: r.counter(
                "liaison_linkage_events_folded_total",
                "Accepted envelopes folded into the subject index, by kind.",
                &["kind"],
            ),
            matches: r.counter(
                "liaison_linkage_matches_total",
                "Matches decided and queued to raise, by kind (reengagement, duplicate_subject).",
                &["kind"],
            ),
            tokens: r.gauge(
                "liaison_linkage_tokens",
                "Subject tokens in the index.",
                &[],
            ),
            cases: r.gauge(
                "liaison_linkage_cases",
                "Cases (live, and former subjects under review) in the index.",
                &[],
            ),
            outbox: r.gauge(
                "liaison_linkage_outbox",
                "Events decided and not yet seen back in EVENTS.",
                &[],
            ),
            cursor: r.gauge(
                "liaison_linkage_cursor",
                "The last EVENTS sequence applied to the index.",
                &[],
            ),
            registry: Arc::new(r),
        }
    }
}
