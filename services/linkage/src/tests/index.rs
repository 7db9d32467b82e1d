//! The index's decisions, event by event, without NATS: what a referral
//! matches, and that replaying stored entries never decides differently.

use crate::index::{CaseState, Index, Match, Settings};
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{
    CaseStatus, CaseStatusChanged, Envelope, EnvelopeAccepted, Person, ReferralMade, Route,
};
use prost_types::Timestamp;

const DAY: i64 = 24 * 3600;

fn settings() -> Settings {
    Settings {
        window_secs: 30 * DAY,
        review_horizon_secs: 365 * DAY,
    }
}

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn referral(id: &str, agency: &str, token: &str, when: i64) -> EnvelopeAccepted {
    EnvelopeAccepted {
        envelope: Some(Envelope {
            id: id.into(),
            sender_agency: agency.into(),
            classification: 2,
            body: Some(Body::Referral(ReferralMade {
                subject: Some(Person {
                    token: token.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        }),
        accepted_at: at(when),
        routes: ["council", "police"]
            .iter()
            .map(|r| Route {
                recipient: (*r).into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn status(
    case: &str,
    owner: &str,
    status: CaseStatus,
    tokens: &[&str],
    when: i64,
    review: i64,
) -> EnvelopeAccepted {
    EnvelopeAccepted {
        envelope: Some(Envelope {
            id: format!("{case}-{}", status.as_str_name()),
            sender_agency: owner.into(),
            case_id: case.into(),
            body: Some(Body::CaseStatus(CaseStatusChanged {
                status: status as i32,
                subject_tokens: tokens.iter().map(|t| (*t).into()).collect(),
                review_date: (review != 0).then_some(Timestamp {
                    seconds: review,
                    nanos: 0,
                }),
                referral_envelope_id: if status == CaseStatus::Referred {
                    "ref-0".into()
                } else {
                    String::new()
                },
                ..Default::default()
            })),
            ..Default::default()
        }),
        accepted_at: at(when),
        ..Default::default()
    }
}

fn kinds(matches: &[Match]) -> Vec<&'static str> {
    matches
        .iter()
        .map(|m| match m {
            Match::Reengagement { .. } => "reengagement",
            Match::Duplicate { .. } => "duplicate",
        })
        .collect()
}

#[test]
fn a_former_subject_under_review_re_engaging_is_found() {
    let mut index = Index::new(settings());
    let t0 = 1_700_000_000;
    index.apply(1, &referral("ref-0", "school-a", "st1:a", t0), true);
    index.apply(
        2,
        &status("C1", "police", CaseStatus::Referred, &["st1:a"], t0, 0),
        true,
    );
    index.apply(
        3,
        &status(
            "C1",
            "police",
            CaseStatus::Closed,
            &[],
            t0 + DAY,
            t0 + 400 * DAY,
        ),
        true,
    );
    assert_eq!(index.case("C1").map(|c| c.state), Some(CaseState::Closed));
    // The referral the case came from is its own, so no duplicate with it.
    let found = index.apply(
        4,
        &referral("ref-1", "nhs-trust", "st1:a", t0 + 40 * DAY),
        true,
    );
    assert_eq!(kinds(&found), ["reengagement"]);
    let Some(Match::Reengagement { case_id, owner, .. }) = found.first() else {
        panic!("{found:?}");
    };
    assert_eq!((case_id.as_str(), owner.as_str()), ("C1", "police"));
    // Past the review date the former subject is no longer matched.
    let late = index.apply(
        5,
        &referral("ref-2", "nhs-trust", "st1:a", t0 + 401 * DAY),
        true,
    );
    assert!(late.is_empty(), "{late:?}");
    // Nobody else's token matches.
    assert!(
        index
            .apply(6, &referral("ref-3", "nhs-trust", "st1:b", t0), true)
            .is_empty()
    );
}

#[test]
fn a_closure_without_a_review_date_is_reviewed_for_the_horizon_and_re_opening_makes_it_live() {
    let mut index = Index::new(settings());
    let t0 = 1_700_000_000;
    index.apply(
        1,
        &status("C1", "council", CaseStatus::Referred, &["st1:a"], t0, 0),
        true,
    );
    index.apply(
        2,
        &status("C1", "council", CaseStatus::Closed, &[], t0, 0),
        true,
    );
    assert_eq!(
        index.case("C1").map(|c| c.review_until),
        Some(t0 + 365 * DAY)
    );
    index.apply(
        3,
        &status("C1", "council", CaseStatus::Triage, &[], t0 + DAY, 0),
        true,
    );
    let found = index.apply(
        4,
        &referral("ref-1", "school-a", "st1:a", t0 + 2 * DAY),
        true,
    );
    assert_eq!(kinds(&found), ["duplicate"]);
    let Some(Match::Duplicate { live, others, .. }) = found.first() else {
        panic!("{found:?}");
    };
    assert_eq!(live, &[("C1".to_owned(), "council".to_owned())]);
    assert!(others.is_empty());
}

#[test]
fn two_agencies_referring_one_token_within_the_window_are_duplicates() {
    let mut index = Index::new(settings());
    let t0 = 1_700_000_000;
    assert!(
        index
            .apply(1, &referral("r1", "school-a", "st1:a", t0), true)
            .is_empty()
    );
    // The same agency again is not a duplicate.
    assert!(
        index
            .apply(2, &referral("r2", "school-a", "st1:a", t0 + 1), true)
            .is_empty()
    );
    let found = index.apply(3, &referral("r3", "nhs-trust", "st1:a", t0 + 2), true);
    let Some(Match::Duplicate { others, live, .. }) = found.first() else {
        panic!("{found:?}");
    };
    assert!(live.is_empty());
    let ids: Vec<&str> = others.iter().map(|r| r.envelope_id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2"]);
    // Outside the window the earlier referrals are forgotten.
    let later = index.apply(4, &referral("r4", "school-b", "st1:a", t0 + 31 * DAY), true);
    assert!(later.is_empty(), "{later:?}");
}

#[test]
fn events_already_held_by_an_entry_are_skipped_and_undecided_replays_raise_nothing() {
    let t0 = 1_700_000_000;
    let events = [
        referral("ref-0", "school-a", "st1:a", t0),
        status("C1", "police", CaseStatus::Referred, &["st1:a"], t0, 0),
        status("C1", "police", CaseStatus::Closed, &[], t0, t0 + 100 * DAY),
        referral("r2", "nhs-trust", "st1:a", t0 + DAY),
    ];
    let mut first = Index::new(settings());
    let mut decided = vec![];
    for (n, e) in events.iter().enumerate() {
        decided.extend(first.apply(n as u64 + 1, e, true));
    }
    assert_eq!(kinds(&decided), ["reengagement"]);
    // A second index restored from the first's entries, replaying every
    // event (as after a crash between storing entries and the cursor),
    // changes nothing and, not deciding, raises nothing.
    let mut second = Index::new(settings());
    let (subjects, cases) = first.dirty();
    for (token, subject) in subjects {
        second.restore_subject(token, subject);
    }
    for (case, c) in cases {
        second.restore_case(case, c);
    }
    for (n, e) in events.iter().enumerate() {
        assert!(second.apply(n as u64 + 1, e, false).is_empty());
    }
    assert_eq!(second.dirty(), (vec![], vec![]));
    assert_eq!(second.subject("st1:a"), first.subject("st1:a"));
    // Deciding again from scratch decides the same.
    let mut rebuilt = Index::new(settings());
    let mut again = vec![];
    for (n, e) in events.iter().enumerate() {
        again.extend(rebuilt.apply(n as u64 + 1, e, true));
    }
    assert_eq!(again, decided);
}

#[test]
fn what_one_token_holds_is_bounded() {
    let mut index = Index::new(settings());
    let t0 = 1_700_000_000;
    for n in 0..200 {
        index.apply(
            n + 1,
            &referral(&format!("r{n}"), "school-a", "st1:a", t0),
            true,
        );
    }
    let held = index.subject("st1:a").map(|s| s.referrals.len());
    assert_eq!(held, Some(crate::index::MAX_REFERRALS_PER_TOKEN));
}
