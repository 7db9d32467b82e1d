//! What one referral matches, given what the index knew before it: a
//! closed case still under review (a former subject re-engaging), live
//! cases, other agencies' referrals within the window. A pure function of
//! the index's state, so a replay decides exactly as the first pass did.

use crate::index::{Case, CaseState, Referral, Subject};
use std::collections::{BTreeSet, HashMap};

/// A referral matched something the partnership already knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// The token is a former subject's, on a closed case still under review.
    Reengagement {
        token: String,
        referral: Referral,
        case_id: String,
        owner: String,
        review_until: i64,
    },
    /// The token is on live cases, or another agency referred it within the window.
    Duplicate {
        token: String,
        referral: Referral,
        /// Other agencies' referrals in the window not already on a case.
        others: Vec<Referral>,
        /// Live cases and their owners, sorted.
        live: Vec<(String, String)>,
    },
}

/// What a referral of `token` matches, given what is known before it.
pub(crate) fn decide(
    cases: &HashMap<String, Case>,
    token: &str,
    subject: &Subject,
    referral: &Referral,
) -> Vec<Match> {
    let mut matches = vec![];
    let mut live = vec![];
    let mut on_cases = BTreeSet::new();
    for case_id in &subject.cases {
        let Some(case) = cases.get(case_id) else {
            continue;
        };
        if !case.referral.is_empty() {
            on_cases.insert(case.referral.as_str());
        }
        match case.state {
            CaseState::Live => live.push((case_id.clone(), case.owner.clone())),
            CaseState::Closed if case.review_until >= referral.at => {
                matches.push(Match::Reengagement {
                    token: token.to_owned(),
                    referral: referral.clone(),
                    case_id: case_id.clone(),
                    owner: case.owner.clone(),
                    review_until: case.review_until,
                });
            }
            CaseState::Closed => {}
        }
    }
    // A referral a case was opened from is represented by its case.
    let others: Vec<Referral> = subject
        .referrals
        .iter()
        .filter(|r| r.agency != referral.agency && !on_cases.contains(r.envelope_id.as_str()))
        .cloned()
        .collect();
    if !live.is_empty() || !others.is_empty() {
        matches.push(Match::Duplicate {
            token: token.to_owned(),
            referral: referral.clone(),
            others,
            live,
        });
    }
    matches
}
