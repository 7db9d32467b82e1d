//! The pseudonymous subject index, in memory: for each subject token, the
//! cases it is on (live, or closed with the date until which the former
//! subject is reviewed) and the referrals of it within the duplicate window;
//! for each case, its owner, state and tokens. It is folded from EVENTS in
//! order ([`Index::apply`]) and decides, for each referral, what it matches
//! ([`Match`]). It holds tokens, agency ids, case and envelope ids and times:
//! no names, no dates of birth, nothing a token was computed from.
//!
//! Every decision is a function of the events before it: "now" is the
//! referral's acceptance time, never the clock, so replaying EVENTS (after a
//! crash, or to rebuild) decides exactly as the first time did.
//!
//! What a referral matches is decided in [`crate::matching`]. It does not
//! store itself ([`crate::store`]) or raise anything ([`crate::alert`]).

use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{CaseStatus, EnvelopeAccepted};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

pub use crate::matching::Match;

/// Most cases remembered per token (later ones are not linked), and
/// referrals per token in the window (the oldest go first): bounds what one
/// token can cost.
pub const MAX_CASES_PER_TOKEN: usize = 64;
pub const MAX_REFERRALS_PER_TOKEN: usize = 64;
/// Most tokens remembered per case.
pub const MAX_TOKENS_PER_CASE: usize = 32;

/// How matching is tuned (from `[linkage]`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Referrals of one token by two agencies within this are duplicates.
    pub window_secs: i64,
    /// A closed case without a review date is reviewed this long after closing.
    pub review_horizon_secs: i64,
}

/// Whether a case is live (on a priority list) or closed (a former subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Live,
    Closed,
}

/// What the index knows of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub owner: String,
    pub state: CaseState,
    /// Closed: until when (Unix seconds) the former subject is under review.
    #[serde(default)]
    pub review_until: i64,
    pub tokens: Vec<String>,
    /// The referral the case was opened from, if any.
    #[serde(default)]
    pub referral: String,
    /// The last EVENTS sequence applied to this case.
    pub seq: u64,
}

/// One referral of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Referral {
    pub envelope_id: String,
    pub agency: String,
    /// When it was accepted (Unix seconds).
    pub at: i64,
    /// Who received it.
    pub recipients: Vec<String>,
    /// Its classification (the enum's number) and handling caveats, which
    /// anything derived from it keeps.
    pub classification: i32,
    #[serde(default)]
    pub caveats: Vec<String>,
}

/// What the index knows of one token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Case ids, sorted.
    pub cases: Vec<String>,
    /// Referrals in the window, oldest first.
    pub referrals: Vec<Referral>,
    /// The last EVENTS sequence applied to this token.
    pub seq: u64,
}

/// The index, with what changed since it was last stored.
#[derive(Debug)]
pub struct Index {
    settings: Settings,
    subjects: HashMap<String, Subject>,
    cases: HashMap<String, Case>,
    dirty_subjects: BTreeSet<String>,
    dirty_cases: BTreeSet<String>,
}

/// Seconds of a protobuf timestamp (0 when absent).
fn seconds(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds)
}

impl Index {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            subjects: HashMap::new(),
            cases: HashMap::new(),
            dirty_subjects: BTreeSet::new(),
            dirty_cases: BTreeSet::new(),
        }
    }

    /// Puts back a stored token entry (when loading).
    pub fn restore_subject(&mut self, token: String, subject: Subject) {
        self.subjects.insert(token, subject);
    }

    /// Puts back a stored case (when loading).
    pub fn restore_case(&mut self, case_id: String, case: Case) {
        self.cases.insert(case_id, case);
    }

    pub fn subject(&self, token: &str) -> Option<&Subject> {
        self.subjects.get(token)
    }

    pub fn case(&self, case_id: &str) -> Option<&Case> {
        self.cases.get(case_id)
    }

    /// Tokens and cases known.
    pub fn len(&self) -> (usize, usize) {
        (self.subjects.len(), self.cases.len())
    }

    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty() && self.cases.is_empty()
    }

    /// Whether anything changed since [`Index::mark_stored`].
    pub fn is_dirty(&self) -> bool {
        !self.dirty_subjects.is_empty() || !self.dirty_cases.is_empty()
    }

    /// What changed since [`Index::mark_stored`]: token entries and cases, to store.
    #[allow(clippy::type_complexity)]
    pub fn dirty(&self) -> (Vec<(String, Subject)>, Vec<(String, Case)>) {
        let subjects = self
            .dirty_subjects
            .iter()
            .filter_map(|t| self.subjects.get(t).map(|s| (t.clone(), s.clone())))
            .collect();
        let cases = self
            .dirty_cases
            .iter()
            .filter_map(|c| self.cases.get(c).map(|s| (c.clone(), s.clone())))
            .collect();
        (subjects, cases)
    }

    /// Everything [`Index::dirty`] returned is stored.
    pub fn mark_stored(&mut self) {
        self.dirty_subjects.clear();
        self.dirty_cases.clear();
    }

    /// Applies event `seq`; when `decide`, returns what a referral in it
    /// matched (a replay of events already decided passes `false`). An
    /// entry that already holds `seq` (stored after it) is left alone.
    pub fn apply(&mut self, seq: u64, accepted: &EnvelopeAccepted, decide: bool) -> Vec<Match> {
        let Some(envelope) = accepted.envelope.as_ref() else {
            return vec![];
        };
        if liaison_core::system::Service::of_sender(&envelope.sender_agency).is_some() {
            return vec![];
        }
        let at = match seconds(accepted.accepted_at.as_ref()) {
            0 => seconds(envelope.sent_at.as_ref()),
            at => at,
        };
        match &envelope.body {
            Some(Body::CaseStatus(change)) if !envelope.case_id.is_empty() => {
                self.case_status(seq, &envelope.case_id, &envelope.sender_agency, change, at);
                vec![]
            }
            Some(Body::Referral(r)) => {
                let Some(token) = r.subject.as_ref().map(|p| p.token.as_str()) else {
                    return vec![];
                };
                if token.is_empty() {
                    return vec![];
                }
                let referral = Referral {
                    envelope_id: envelope.id.clone(),
                    agency: envelope.sender_agency.clone(),
                    at,
                    recipients: accepted
                        .routes
                        .iter()
                        .map(|r| r.recipient.clone())
                        .collect(),
                    classification: envelope.classification,
                    caveats: envelope.handling_caveats.clone(),
                };
                self.referral(seq, token, referral, decide)
            }
            _ => vec![],
        }
    }

    /// A case moved: opened (the sender owns it), re-opened, closed.
    fn case_status(
        &mut self,
        seq: u64,
        case_id: &str,
        sender: &str,
        change: &liaison_proto::v1::CaseStatusChanged,
        at: i64,
    ) {
        let status = CaseStatus::try_from(change.status).unwrap_or(CaseStatus::Unspecified);
        let known = self.cases.get(case_id).map(|c| c.seq);
        if known.is_none() && change.subject_tokens.is_empty() {
            // A case opened before linkage knew of it, without tokens: nothing to match on.
            return;
        }
        let case = self
            .cases
            .entry(case_id.to_owned())
            .or_insert_with(|| Case {
                owner: sender.to_owned(),
                state: CaseState::Live,
                review_until: 0,
                tokens: vec![],
                referral: change.referral_envelope_id.clone(),
                seq: 0,
            });
        // Each stored entry already holding this event (stored after it) is left alone.
        if case.seq < seq {
            case.seq = seq;
            match status {
                CaseStatus::Closed => {
                    case.state = CaseState::Closed;
                    case.review_until = match seconds(change.review_date.as_ref()) {
                        0 => at.saturating_add(self.settings.review_horizon_secs),
                        date => date,
                    };
                }
                CaseStatus::Unspecified => {}
                _ => {
                    case.state = CaseState::Live;
                    case.review_until = 0;
                }
            }
            for token in &change.subject_tokens {
                if !token.is_empty()
                    && !case.tokens.contains(token)
                    && case.tokens.len() < MAX_TOKENS_PER_CASE
                {
                    case.tokens.push(token.clone());
                }
            }
            self.dirty_cases.insert(case_id.to_owned());
        }
        let named: Vec<String> = change
            .subject_tokens
            .iter()
            .filter(|t| case.tokens.contains(t))
            .cloned()
            .collect();
        for token in named {
            let subject = self.subjects.entry(token.clone()).or_default();
            if subject.seq >= seq {
                continue;
            }
            subject.seq = seq;
            if let Err(at) = subject.cases.binary_search_by(|c| c.as_str().cmp(case_id))
                && subject.cases.len() < MAX_CASES_PER_TOKEN
            {
                subject.cases.insert(at, case_id.to_owned());
            }
            self.dirty_subjects.insert(token);
        }
    }

    /// A referral of `token`: matched (when `decide`), then remembered.
    fn referral(&mut self, seq: u64, token: &str, referral: Referral, decide: bool) -> Vec<Match> {
        let window = self.settings.window_secs;
        let subject = self.subjects.entry(token.to_owned()).or_default();
        if subject.seq >= seq {
            return vec![];
        }
        subject.seq = seq;
        let now = referral.at;
        subject.referrals.retain(|r| {
            r.at >= now.saturating_sub(window) && r.envelope_id != referral.envelope_id
        });
        let matches = if decide {
            crate::matching::decide(&self.cases, token, subject, &referral)
        } else {
            vec![]
        };
        if subject.referrals.len() >= MAX_REFERRALS_PER_TOKEN {
            subject.referrals.remove(0);
        }
        subject.referrals.push(referral);
        self.dirty_subjects.insert(token.to_owned());
        matches
    }
}
