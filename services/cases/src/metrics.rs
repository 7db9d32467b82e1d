//! The cases service's metrics: events folded (by envelope kind), priority
//! changes and timers fired (reviews, overdue requests) it raised, cases by
//! lifecycle status, and the EVENTS sequence it has applied. Labels are
//! message kinds and status names only: never a case id, an agency's case
//! content or a subject token.

use crate::state::State;
use liaison_proto::v1::CaseStatus;
use liaison_runtime::discovery::{Member, info_gauge};
use liaison_runtime::metrics::{Counter, Gauge, Registry};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every cases metric, registered in one [`Registry`].
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub folded: Counter,
    pub priority_changes: Counter,
    pub timers_fired: Counter,
    pub cases: Gauge,
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
        info_gauge(&r, Member::Cases);
        Self {
            folded: r.counter(
                "liaison_cases_events_folded_total",
                "Accepted envelopes folded into the case record, by kind.",
                &["kind"],
            ),
            priority_changes: r.counter(
                "liaison_cases_priority_changes_total",
                "PriorityChanged events raised (a case moved in its unit's list).",
                &[],
            ),
            timers_fired: r.counter(
                "liaison_cases_timers_fired_total",
                "Reminders raised when due, by kind (review_due, request_overdue).",
                &["kind"],
            ),
            cases: r.gauge(
                "liaison_cases_cases",
                "Cases known, by lifecycle status.",
                &["status"],
            ),
            cursor: r.gauge(
                "liaison_cases_cursor",
                "The last EVENTS sequence folded into the case record.",
                &[],
            ),
            registry: Arc::new(r),
        }
    }

    /// Sets the cases-by-status gauge from `state` (every status, zeros too).
    pub fn count_cases(&self, state: &State) {
        let mut by_status: BTreeMap<&'static str, u64> = BTreeMap::new();
        for status in [
            CaseStatus::Referred,
            CaseStatus::Triage,
            CaseStatus::Open,
            CaseStatus::UnderReview,
            CaseStatus::Closed,
        ] {
            by_status.insert(status_label(status as i32), 0);
        }
        for case in state.cases.values() {
            *by_status.entry(status_label(case.status)).or_default() += 1;
        }
        for (status, n) in by_status {
            self.cases.set(&[status], n);
        }
    }
}

/// `open`, `under_review`, ... for a `CaseStatus` number; `unspecified` if unknown.
fn status_label(status: i32) -> &'static str {
    match CaseStatus::try_from(status) {
        Ok(CaseStatus::Referred) => "referred",
        Ok(CaseStatus::Triage) => "triage",
        Ok(CaseStatus::Open) => "open",
        Ok(CaseStatus::UnderReview) => "under_review",
        Ok(CaseStatus::Closed) => "closed",
        _ => "unspecified",
    }
}
