//! The case record as a pure fold over accepted envelopes: applying one
//! event to the state gives the objects it changed (to store), the events to
//! raise (priority changes), and the audit records to write. No I/O here, so
//! every rule is unit-tested, and a rebuild from EVENTS gives the same state.
//!
//! Idempotence: every stored object remembers the last EVENTS sequence
//! applied to it, and an event is applied to an object only once; the
//! events raised have ids derived from their cause. So re-applying events
//! after a crash (between storing the objects and the cursor) changes
//! nothing and raises nothing new.

use liaison_core::AgencyId;
use liaison_core::lifecycle;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{
    AuditRecord, CaseStatus, Decision, Envelope, Operation, PriorityChanged, ReviewDue,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const DAY: i64 = 24 * 3600;

/// An information request on a case, until every agency asked has answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub envelope_id: String,
    pub requester: String,
    pub unanswered: Vec<String>,
    /// Unix seconds.
    pub respond_by: i64,
    pub purpose: String,
    pub legal_basis: String,
    pub classification: i32,
    /// The overdue notice was raised (seen back through EVENTS).
    #[serde(default)]
    pub overdue_raised: bool,
}

/// One case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub owner: AgencyId,
    pub unit: String,
    /// A `CaseStatus` number.
    pub status: i32,
    /// The owner first.
    pub participants: Vec<AgencyId>,
    pub subject_tokens: Vec<String>,
    pub risk_level: i32,
    /// Unix seconds: next review (weekly while live, the former subject's once closed).
    pub review_at: i64,
    pub opened_at: i64,
    pub updated_at: i64,
    /// What its events are shared for (its reminders carry the same).
    pub purpose: String,
    pub legal_basis: String,
    pub classification: i32,
    pub requests: Vec<Request>,
    /// Envelopes applied.
    pub events: u64,
    /// The last EVENTS sequence applied to this case.
    pub seq: u64,
}

impl Case {
    pub fn status(&self) -> CaseStatus {
        CaseStatus::try_from(self.status).unwrap_or(CaseStatus::Unspecified)
    }
}

/// One owning unit's priority list: case ids, the top first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub cases: Vec<String>,
    /// The last EVENTS sequence applied to this list.
    pub seq: u64,
}

/// The key of a unit: its owner and name.
pub type UnitKey = (AgencyId, String);

/// Timer settings (from `[cases]`).
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub review_every: i64,
    pub former_review: i64,
}

impl Timers {
    pub fn from_config(config: &liaison_runtime::config::CasesConfig) -> Self {
        Self {
            review_every: i64::try_from(config.review_every_days).unwrap_or(7) * DAY,
            former_review: i64::try_from(config.former_review_days).unwrap_or(180) * DAY,
        }
    }
}

/// Everything the cases service knows.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub cases: BTreeMap<String, Case>,
    pub units: BTreeMap<UnitKey, Unit>,
    /// Request envelope id → case id (derived from `cases`).
    requests: BTreeMap<String, String>,
}

/// What applying one event changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub cases: Vec<String>,
    pub units: Vec<UnitKey>,
    /// The case's participation (owner, participants, status) changed.
    pub participation: Vec<String>,
    pub raise: Vec<Envelope>,
    pub records: Vec<AuditRecord>,
}

/// The sender id of the cases service's own events.
pub fn sender() -> AgencyId {
    liaison_core::system::Service::Cases.sender()
}

fn seconds(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds)
}

fn timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

fn record(
    seq: u64,
    what: &str,
    envelope: &Envelope,
    case: &str,
    decision: Decision,
    code: &str,
    reason: String,
) -> AuditRecord {
    AuditRecord {
        record_id: format!("cases:{seq}:{what}:{case}"),
        operation: Operation::Alteration as i32,
        decision: decision as i32,
        code: code.to_owned(),
        reason,
        purpose: envelope.purpose.clone(),
        legal_basis: envelope.legal_basis.clone(),
        time: envelope.sent_at,
        agency: envelope.sender_agency.clone(),
        author: envelope.author.clone(),
        recipients: vec![],
        envelope_id: envelope.id.clone(),
        case_id: case.to_owned(),
        kind: envelope.kind().to_owned(),
        classification: envelope.classification,
        subject_tokens: envelope.subject_tokens(),
        service: "cases".into(),
        ..Default::default()
    }
}

/// A change of a case refused (recorded, not applied).
fn refused(
    seq: u64,
    what: &str,
    envelope: &Envelope,
    case: &str,
    code: &str,
    reason: String,
) -> AuditRecord {
    record(seq, what, envelope, case, Decision::Refused, code, reason)
}

impl State {
    /// Builds the state from stored objects.
    pub fn from_parts(cases: Vec<Case>, units: Vec<(UnitKey, Unit)>) -> Self {
        let mut state = Self {
            cases: cases.into_iter().map(|c| (c.id.clone(), c)).collect(),
            units: units.into_iter().collect(),
            requests: BTreeMap::new(),
        };
        for case in state.cases.values() {
            for request in &case.requests {
                state
                    .requests
                    .insert(request.envelope_id.clone(), case.id.clone());
            }
        }
        state
    }

    /// The case's place in its unit's list (1 is the top; 0: not listed).
    pub fn rank(&self, case: &Case) -> u32 {
        self.units
            .get(&(case.owner.clone(), case.unit.clone()))
            .and_then(|u| u.cases.iter().position(|c| c == &case.id))
            .map_or(0, |p| u32::try_from(p + 1).unwrap_or(u32::MAX))
    }

    /// Applies one accepted envelope (EVENTS sequence `seq`, accepted at
    /// `at` unix seconds).
    pub fn apply(&mut self, seq: u64, at: i64, envelope: &Envelope, timers: Timers) -> Changes {
        let mut changes = Changes::default();
        let Ok(sender) = AgencyId::parse(&envelope.sender_agency) else {
            return changes;
        };
        let case_id = envelope.case_id.as_str();
        let applied = |case: Option<&Case>| case.is_some_and(|c| c.seq >= seq);
        match &envelope.body {
            Some(Body::CaseStatus(change)) => {
                if applied(self.cases.get(case_id)) {
                    return changes;
                }
                let to = CaseStatus::try_from(change.status).unwrap_or(CaseStatus::Unspecified);
                let from = self.cases.get(case_id).map(Case::status);
                if let Err(reason) = lifecycle::check(from, to) {
                    changes.records.push(refused(
                        seq,
                        "status",
                        envelope,
                        case_id,
                        "invalid_transition",
                        reason,
                    ));
                    return changes;
                }
                if let Some(case) = self.cases.get(case_id)
                    && case.owner != sender
                {
                    changes.records.push(refused(
                        seq,
                        "status",
                        envelope,
                        case_id,
                        "not_owner",
                        format!("only the owner {} moves the case", case.owner),
                    ));
                    return changes;
                }
                if to == CaseStatus::Referred {
                    let unit = if change.unit.is_empty() {
                        "default".to_owned()
                    } else {
                        change.unit.clone()
                    };
                    self.cases.insert(
                        case_id.to_owned(),
                        Case {
                            id: case_id.to_owned(),
                            owner: sender.clone(),
                            unit,
                            status: to as i32,
                            participants: vec![sender.clone()],
                            subject_tokens: change.subject_tokens.clone(),
                            risk_level: 0,
                            review_at: at + timers.review_every,
                            opened_at: at,
                            updated_at: at,
                            purpose: envelope.purpose.clone(),
                            legal_basis: envelope.legal_basis.clone(),
                            classification: envelope.classification,
                            requests: vec![],
                            events: 0,
                            seq: 0,
                        },
                    );
                    self.list(seq, case_id, None, envelope, &mut changes);
                } else if let Some(case) = self.cases.get_mut(case_id) {
                    case.status = to as i32;
                    if to == CaseStatus::Closed {
                        let named = seconds(change.review_date.as_ref());
                        case.review_at = if named > 0 {
                            named
                        } else {
                            at + timers.former_review
                        };
                        self.unlist(seq, case_id, envelope, &mut changes);
                    } else {
                        if from == Some(CaseStatus::Closed) {
                            // A former subject back in triage: on the list again.
                            self.list(seq, case_id, None, envelope, &mut changes);
                        }
                        if let Some(case) = self.cases.get_mut(case_id) {
                            case.review_at = at + timers.review_every;
                        }
                    }
                }
                self.touch(seq, at, case_id, "status", envelope, &mut changes);
                changes.participation.push(case_id.to_owned());
            }
            Some(Body::Participation(p)) => {
                let Some(case) = self.cases.get_mut(case_id) else {
                    return changes;
                };
                if case.seq >= seq {
                    return changes;
                }
                if case.owner != sender {
                    changes.records.push(refused(
                        seq,
                        "participation",
                        envelope,
                        case_id,
                        "not_owner",
                        format!("only the owner {} changes participation", case.owner),
                    ));
                    return changes;
                }
                for added in p.added.iter().filter_map(|a| AgencyId::parse(a).ok()) {
                    if !case.participants.contains(&added) {
                        case.participants.push(added);
                    }
                }
                let owner = case.owner.clone();
                case.participants
                    .retain(|a| a == &owner || !p.removed.iter().any(|r| r == a.as_str()));
                self.touch(seq, at, case_id, "participation", envelope, &mut changes);
                changes.participation.push(case_id.to_owned());
            }
            Some(Body::Reprioritisation(r)) => {
                let Some(case) = self.cases.get(case_id) else {
                    return changes;
                };
                if case.seq >= seq {
                    return changes;
                }
                if case.owner != sender || !lifecycle::is_live(case.status()) {
                    changes.records.push(refused(
                        seq,
                        "priority",
                        envelope,
                        case_id,
                        "not_listed",
                        "only the owner re-prioritises a live case".into(),
                    ));
                    return changes;
                }
                self.list(seq, case_id, Some(r.rank), envelope, &mut changes);
                self.touch(seq, at, case_id, "reprioritisation", envelope, &mut changes);
            }
            Some(Body::RiskAssessment(r)) => {
                if let Some(case) = self.cases.get_mut(case_id) {
                    if case.seq >= seq {
                        return changes;
                    }
                    case.risk_level = r.risk_level;
                    let next = seconds(r.next_review.as_ref());
                    case.review_at = if next > 0 {
                        next
                    } else {
                        at + timers.review_every
                    };
                    self.touch(seq, at, case_id, "risk", envelope, &mut changes);
                }
            }
            Some(Body::CaseUpdate(_)) => {
                if let Some(case) = self.cases.get(case_id)
                    && case.seq < seq
                {
                    self.touch(seq, at, case_id, "update", envelope, &mut changes);
                }
            }
            Some(Body::InformationRequest(r)) => {
                if let Some(case) = self.cases.get_mut(case_id) {
                    if case.seq >= seq {
                        return changes;
                    }
                    case.requests.push(Request {
                        envelope_id: envelope.id.clone(),
                        requester: sender.to_string(),
                        unanswered: envelope.addressees.clone(),
                        respond_by: seconds(r.respond_by.as_ref()),
                        purpose: envelope.purpose.clone(),
                        legal_basis: envelope.legal_basis.clone(),
                        classification: envelope.classification,
                        overdue_raised: false,
                    });
                    self.requests
                        .insert(envelope.id.clone(), case_id.to_owned());
                    self.touch(seq, at, case_id, "request", envelope, &mut changes);
                }
            }
            Some(Body::InformationResponse(_) | Body::RequestOverdue(_)) => {
                let Some(case_id) = self
                    .requests
                    .get(liaison_core::ids::replied_id(&envelope.in_reply_to))
                    .cloned()
                else {
                    return changes;
                };
                let Some(case) = self.cases.get_mut(&case_id) else {
                    return changes;
                };
                if case.seq >= seq {
                    return changes;
                }
                let overdue = matches!(envelope.body, Some(Body::RequestOverdue(_)));
                let Some(request) = case.requests.iter_mut().find(|r| {
                    r.envelope_id == liaison_core::ids::replied_id(&envelope.in_reply_to)
                }) else {
                    return changes;
                };
                if overdue {
                    request.overdue_raised = true;
                } else {
                    request.unanswered.retain(|a| a != sender.as_str());
                }
                let done = request.unanswered.is_empty();
                if done {
                    case.requests.retain(|r| {
                        r.envelope_id != liaison_core::ids::replied_id(&envelope.in_reply_to)
                    });
                    self.requests
                        .remove(liaison_core::ids::replied_id(&envelope.in_reply_to));
                }
                let what = if overdue { "overdue" } else { "answer" };
                self.touch(seq, at, &case_id, what, envelope, &mut changes);
            }
            Some(Body::ReviewDue(r)) => {
                if let Some(case) = self.cases.get_mut(case_id) {
                    if case.seq >= seq {
                        return changes;
                    }
                    // Raised: the next one a period later if the case is live,
                    // none for a former subject until the owner reviews it.
                    let due = seconds(r.due.as_ref());
                    if case.review_at <= due {
                        case.review_at = if lifecycle::is_live(case.status()) {
                            due + timers.review_every
                        } else {
                            i64::MAX
                        };
                    }
                    self.touch(seq, at, case_id, "review", envelope, &mut changes);
                }
            }
            _ => {}
        }
        changes
    }

    /// Marks a case changed by `envelope` and records the alteration.
    fn touch(
        &mut self,
        seq: u64,
        at: i64,
        case_id: &str,
        what: &str,
        envelope: &Envelope,
        changes: &mut Changes,
    ) {
        if let Some(case) = self.cases.get_mut(case_id) {
            case.seq = seq;
            case.updated_at = at;
            case.events += 1;
            changes.cases.push(case_id.to_owned());
            changes.records.push(record(
                seq,
                what,
                envelope,
                case_id,
                Decision::Accepted,
                "case_changed",
                format!(
                    "{} case {case_id} ({})",
                    what,
                    lifecycle::name(case.status())
                ),
            ));
        }
    }

    /// Puts a case at `rank` of its unit's list (at the bottom if `None` or
    /// past the end), raising a PriorityChanged for every case that moved.
    fn list(
        &mut self,
        seq: u64,
        case_id: &str,
        rank: Option<u32>,
        cause: &Envelope,
        changes: &mut Changes,
    ) {
        let Some(case) = self.cases.get(case_id) else {
            return;
        };
        let key = (case.owner.clone(), case.unit.clone());
        let unit = self.units.entry(key.clone()).or_default();
        if unit.seq >= seq {
            return;
        }
        let before = unit.cases.clone();
        unit.cases.retain(|c| c != case_id);
        let at = rank.map_or(unit.cases.len(), |r| {
            (r.saturating_sub(1) as usize).min(unit.cases.len())
        });
        unit.cases.insert(at, case_id.to_owned());
        unit.seq = seq;
        let after = unit.cases.clone();
        self.moved(&key, &before, &after, cause, changes);
    }

    /// Takes a case off its unit's list; those below move up.
    fn unlist(&mut self, seq: u64, case_id: &str, cause: &Envelope, changes: &mut Changes) {
        let Some(case) = self.cases.get(case_id) else {
            return;
        };
        let key = (case.owner.clone(), case.unit.clone());
        let Some(unit) = self.units.get_mut(&key) else {
            return;
        };
        if unit.seq >= seq {
            return;
        }
        let before = unit.cases.clone();
        unit.cases.retain(|c| c != case_id);
        unit.seq = seq;
        let after = unit.cases.clone();
        self.moved(&key, &before, &after, cause, changes);
    }

    /// Raises a PriorityChanged (to the owner) for each case whose rank
    /// differs between `before` and `after`.
    fn moved(
        &self,
        key: &UnitKey,
        before: &[String],
        after: &[String],
        cause: &Envelope,
        changes: &mut Changes,
    ) {
        changes.units.push(key.clone());
        let rank_in = |list: &[String], id: &str| {
            list.iter()
                .position(|c| c == id)
                .map_or(0, |p| u32::try_from(p + 1).unwrap_or(u32::MAX))
        };
        let mut ids: Vec<&String> = before.iter().chain(after).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let (previous, rank) = (rank_in(before, id), rank_in(after, id));
            if previous == rank {
                continue;
            }
            let Some(case) = self.cases.get(id.as_str()) else {
                continue;
            };
            changes.raise.push(self.event(
                case,
                liaison_core::ids::event_id("priority", &[&cause.id, id]),
                cause.sent_at,
                Body::PriorityChanged(PriorityChanged {
                    unit: key.1.clone(),
                    previous_rank: previous,
                    rank,
                    cause_envelope_id: cause.id.clone(),
                }),
            ));
        }
    }

    /// An event the cases service raises about `case`.
    fn event(
        &self,
        case: &Case,
        id: String,
        sent_at: Option<prost_types::Timestamp>,
        body: Body,
    ) -> Envelope {
        Envelope {
            id,
            sender_agency: sender().to_string(),
            author: sender().to_string(),
            sent_at,
            classification: case.classification,
            purpose: case.purpose.clone(),
            legal_basis: case.legal_basis.clone(),
            case_id: case.id.clone(),
            body: Some(body),
            ..Default::default()
        }
    }

    /// Reminders due at `now` (unix seconds): reviews and overdue requests.
    /// Their ids are derived from what is due, so asking again before they
    /// come back raises nothing new.
    pub fn due(&self, now: i64) -> Vec<Envelope> {
        let mut due = vec![];
        for case in self.cases.values() {
            if case.review_at > 0 && case.review_at <= now {
                due.push(self.event(
                    case,
                    liaison_core::ids::event_id(
                        "review-due",
                        &[&case.id, &case.review_at.to_string()],
                    ),
                    Some(timestamp(now)),
                    Body::ReviewDue(ReviewDue {
                        due: Some(timestamp(case.review_at)),
                        status: case.status,
                    }),
                ));
            }
            for request in &case.requests {
                if request.overdue_raised || request.respond_by == 0 || request.respond_by > now {
                    continue;
                }
                due.push(Envelope {
                    id: liaison_core::ids::event_id("overdue", &[&request.envelope_id]),
                    sender_agency: sender().to_string(),
                    author: sender().to_string(),
                    sent_at: Some(timestamp(now)),
                    classification: request.classification,
                    purpose: request.purpose.clone(),
                    legal_basis: request.legal_basis.clone(),
                    in_reply_to: request.envelope_id.clone(),
                    addressees: request.unanswered.clone(),
                    body: Some(Body::RequestOverdue(
                        liaison_proto::v1::InformationRequestOverdue {
                            respond_by: Some(timestamp(request.respond_by)),
                            unanswered: request.unanswered.clone(),
                        },
                    )),
                    ..Default::default()
                });
            }
        }
        due
    }

    /// The earliest time something falls due (for the timer).
    pub fn next_due(&self) -> Option<i64> {
        self.cases
            .values()
            .flat_map(|c| {
                std::iter::once(c.review_at).chain(
                    c.requests
                        .iter()
                        .filter(|r| !r.overdue_raised && r.respond_by > 0)
                        .map(|r| r.respond_by),
                )
            })
            .filter(|t| *t > 0)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaison_proto::v1::{CaseReprioritised, CaseStatusChanged, ParticipationChanged};

    const TIMERS: Timers = Timers {
        review_every: 7 * DAY,
        former_review: 180 * DAY,
    };

    fn envelope(id: &str, sender: &str, case: &str, body: Body) -> Envelope {
        Envelope {
            id: id.into(),
            sender_agency: sender.into(),
            author: "officer-1".into(),
            purpose: "counter-terrorism".into(),
            legal_basis: "DPA-2018-s35".into(),
            case_id: case.into(),
            body: Some(body),
            ..Default::default()
        }
    }

    fn status(id: &str, case: &str, to: CaseStatus) -> Envelope {
        envelope(
            id,
            "police",
            case,
            Body::CaseStatus(CaseStatusChanged {
                status: to as i32,
                unit: "ctp-north".into(),
                subject_tokens: vec!["st1:abc".into()],
                ..Default::default()
            }),
        )
    }

    fn ranks(state: &State) -> Vec<String> {
        state.units.values().flat_map(|u| u.cases.clone()).collect()
    }

    #[test]
    fn events_raised_for_long_case_ids_are_valid_envelopes() {
        let mut state = State::default();
        let (a, b) = ("A".repeat(64), "B".repeat(64));
        state.apply(
            1,
            100,
            &status(&"x".repeat(64), &a, CaseStatus::Referred),
            TIMERS,
        );
        state.apply(
            2,
            100,
            &status(&"y".repeat(64), &b, CaseStatus::Referred),
            TIMERS,
        );
        let top = envelope(
            &"z".repeat(64),
            "police",
            &b,
            Body::Reprioritisation(CaseReprioritised {
                rank: 1,
                reason_code: "weekly-review".into(),
            }),
        );
        let changes = state.apply(3, 200, &top, TIMERS);
        assert_eq!(changes.raise.len(), 2);
        for event in &changes.raise {
            assert!(
                liaison_core::ids::validate_envelope_id(&event.id).is_ok(),
                "{}",
                event.id
            );
        }
        assert_ne!(changes.raise[0].id, changes.raise[1].id);
    }

    #[test]
    fn opening_lists_at_the_bottom_and_reprioritising_shifts_the_others() {
        let mut state = State::default();
        let mut seq = 0;
        for case in ["A", "B", "C"] {
            seq += 1;
            let changes = state.apply(seq, 100, &status(case, case, CaseStatus::Referred), TIMERS);
            assert_eq!(changes.raise.len(), 1, "{case} enters the list");
        }
        assert_eq!(ranks(&state), ["A", "B", "C"]);
        seq += 1;
        let move_c = envelope(
            "move-c",
            "police",
            "C",
            Body::Reprioritisation(CaseReprioritised {
                rank: 1,
                reason_code: "weekly-review".into(),
            }),
        );
        let changes = state.apply(seq, 200, &move_c, TIMERS);
        assert_eq!(ranks(&state), ["C", "A", "B"]);
        // Every case moved: three PriorityChanged, one record each change.
        let moves: Vec<(String, u32, u32)> = changes
            .raise
            .iter()
            .filter_map(|e| match &e.body {
                Some(Body::PriorityChanged(p)) => {
                    Some((e.case_id.clone(), p.previous_rank, p.rank))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            moves,
            [("A".into(), 1, 2), ("B".into(), 2, 3), ("C".into(), 3, 1)]
        );
        assert!(
            changes
                .raise
                .iter()
                .all(|e| e.id.starts_with("priority:move-c:"))
        );
        // Applying the same event again changes nothing and raises nothing.
        let again = state.apply(seq, 200, &move_c, TIMERS);
        assert!(again.raise.is_empty() && again.cases.is_empty());
        assert_eq!(ranks(&state), ["C", "A", "B"]);
    }

    #[test]
    fn closing_makes_a_former_subject_and_the_list_closes_up() {
        let mut state = State::default();
        for (seq, case) in [(1, "A"), (2, "B")] {
            state.apply(seq, 100, &status(case, case, CaseStatus::Referred), TIMERS);
        }
        for (seq, to) in [(3, CaseStatus::Triage), (4, CaseStatus::Closed)] {
            let changes = state.apply(seq, 1000, &status(&format!("a{seq}"), "A", to), TIMERS);
            assert!(
                changes
                    .records
                    .iter()
                    .all(|r| r.decision == Decision::Accepted as i32)
            );
        }
        assert_eq!(ranks(&state), ["B"]);
        let a = &state.cases["A"];
        assert_eq!(a.status(), CaseStatus::Closed);
        assert_eq!(a.review_at, 1000 + 180 * DAY);
        // Closed cannot open again without triage: refused and recorded.
        let refused = state.apply(5, 1001, &status("a5", "A", CaseStatus::Open), TIMERS);
        assert_eq!(refused.records.len(), 1);
        assert_eq!(refused.records[0].code, "invalid_transition");
        // Re-engaging: back to triage, back on the list.
        state.apply(6, 1002, &status("a6", "A", CaseStatus::Triage), TIMERS);
        assert_eq!(ranks(&state), ["B", "A"]);
    }

    #[test]
    fn only_the_owner_changes_a_case_and_the_owner_cannot_be_removed() {
        let mut state = State::default();
        state.apply(1, 100, &status("o", "A", CaseStatus::Referred), TIMERS);
        let add = envelope(
            "p1",
            "police",
            "A",
            Body::Participation(ParticipationChanged {
                added: vec!["council".into(), "nhs-trust".into()],
                removed: vec!["police".into()],
            }),
        );
        let changes = state.apply(2, 101, &add, TIMERS);
        assert_eq!(changes.participation, ["A"]);
        let ids: Vec<&str> = state.cases["A"]
            .participants
            .iter()
            .map(AgencyId::as_str)
            .collect();
        assert_eq!(ids, ["police", "council", "nhs-trust"]);
        let by_council = Envelope {
            sender_agency: "council".into(),
            id: "p2".into(),
            ..add
        };
        let refused = state.apply(3, 102, &by_council, TIMERS);
        assert_eq!(refused.records[0].code, "not_owner");
    }

    #[test]
    fn reviews_and_overdue_requests_fall_due_once() {
        let mut state = State::default();
        state.apply(1, 100, &status("o", "A", CaseStatus::Referred), TIMERS);
        let ask = Envelope {
            addressees: vec!["nhs-trust".into(), "school-a".into()],
            ..envelope(
                "q1",
                "police",
                "A",
                Body::InformationRequest(liaison_proto::v1::InformationRequested {
                    question: String::new(),
                    respond_by: Some(timestamp(500)),
                }),
            )
        };
        state.apply(2, 110, &ask, TIMERS);
        assert_eq!(state.next_due(), Some(500));
        assert!(state.due(499).is_empty());
        let answer = Envelope {
            in_reply_to: "q1".into(),
            ..envelope(
                "a1",
                "nhs-trust",
                "",
                Body::InformationResponse(Default::default()),
            )
        };
        state.apply(3, 120, &answer, TIMERS);
        let due = state.due(600);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, "overdue:q1");
        assert_eq!(due[0].addressees, ["school-a"]);
        // The notice comes back: not due again.
        let echo = Envelope {
            sender_agency: sender().to_string(),
            ..due[0].clone()
        };
        state.apply(4, 601, &echo, TIMERS);
        assert!(state.due(700).is_empty());
        // The weekly review.
        let week = 100 + 7 * DAY;
        let reviews = state.due(week);
        assert_eq!(reviews.len(), 1);
        assert_eq!(reviews[0].id, format!("review-due:A:{week}"));
        state.apply(5, week, &reviews[0], TIMERS);
        assert_eq!(state.cases["A"].review_at, week + 7 * DAY);
    }
}
