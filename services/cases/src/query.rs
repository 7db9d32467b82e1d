//! Case queries, answered for the gateway on behalf of an agency it has
//! authenticated: only cases the agency participates in (need to know). One
//! asked for by id that it does not participate in is answered exactly as
//! one that does not exist, so a query reveals nothing of other cases.

use crate::state::{Case, State};
use liaison_core::lifecycle;
use liaison_proto::v1::{CaseQueryAnswer, CaseStatus, CaseView, CasesQueryRequest, OpenRequest};
use prost::Message as _;
use std::sync::Mutex;

/// Largest request read (the gateway sends small ones).
const MAX_REQUEST_BYTES: usize = 8192;
/// Default and largest number of cases in a list.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn refused(code: &str, reason: String) -> CaseQueryAnswer {
    CaseQueryAnswer {
        code: code.to_owned(),
        reason,
        ..Default::default()
    }
}

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    (seconds > 0 && seconds < i64::MAX).then_some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn view(state: &State, case: &Case, now: i64) -> CaseView {
    CaseView {
        case_id: case.id.clone(),
        owner: case.owner.to_string(),
        unit: case.unit.clone(),
        status: case.status,
        rank: state.rank(case),
        participants: case.participants.iter().map(ToString::to_string).collect(),
        subject_tokens: case.subject_tokens.clone(),
        risk_level: case.risk_level,
        review_date: timestamp(case.review_at),
        opened_at: timestamp(case.opened_at),
        updated_at: timestamp(case.updated_at),
        open_requests: case
            .requests
            .iter()
            .map(|r| OpenRequest {
                envelope_id: r.envelope_id.clone(),
                requester: r.requester.clone(),
                unanswered: r.unanswered.clone(),
                respond_by: timestamp(r.respond_by),
                overdue: r.respond_by > 0 && r.respond_by <= now,
            })
            .collect(),
        events: case.events,
    }
}

/// Answers one encoded `CasesQueryRequest`.
pub fn answer(state: &Mutex<State>, payload: &[u8]) -> CaseQueryAnswer {
    if payload.len() > MAX_REQUEST_BYTES {
        return refused("too_large", format!("query is {} bytes", payload.len()));
    }
    let request = match CasesQueryRequest::decode(payload) {
        Ok(r) => r,
        Err(e) => return refused("malformed", format!("not a CasesQueryRequest: {e}")),
    };
    let query = request.query.unwrap_or_default();
    let now = i64::try_from(liaison_core::time::unix_now()).unwrap_or(i64::MAX);
    let state = state.lock().unwrap_or_else(|p| p.into_inner());
    let participates = |case: &Case| {
        case.participants
            .iter()
            .any(|a| a.as_str() == request.agency)
    };
    if !query.case_id.is_empty() {
        return match state.cases.get(&query.case_id).filter(|c| participates(c)) {
            Some(case) => CaseQueryAnswer {
                cases: vec![view(&state, case, now)],
                ..Default::default()
            },
            None => refused(
                "unknown_case",
                format!(
                    "no case {:?} that {} participates in",
                    query.case_id, request.agency
                ),
            ),
        };
    }
    let limit = match query.limit as usize {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let status = CaseStatus::try_from(query.status).unwrap_or(CaseStatus::Unspecified);
    let mut matching: Vec<&Case> = state
        .cases
        .values()
        .filter(|c| participates(c))
        .filter(|c| status == CaseStatus::Unspecified || c.status() == status)
        .filter(|c| query.unit.is_empty() || c.unit == query.unit)
        .collect();
    // Live cases by unit and rank, then former subjects by review date.
    matching.sort_by_key(|c| {
        (
            !lifecycle::is_live(c.status()),
            c.owner.clone(),
            c.unit.clone(),
            state.rank(c),
            c.review_at,
            c.id.clone(),
        )
    });
    let truncated = matching.len() > limit;
    CaseQueryAnswer {
        cases: matching
            .into_iter()
            .take(limit)
            .map(|c| view(&state, c, now))
            .collect(),
        truncated,
        ..Default::default()
    }
}
