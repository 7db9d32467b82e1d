//! Casework as agencies do it, for tests that need a case's history: a
//! referral of one person (by subject token), a case opened for them by its
//! owner and recorded as its participant, the case closed with its subject
//! kept under review for a year (a former subject the linkage service
//! watches for).

use crate::{referral, set_participants};
use anyhow::{Result, ensure};
use liaison_client::AgencyClient;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{CaseStatus, CaseStatusChanged, Classification, Envelope};
use liaison_system::system::System;

const YEAR: i64 = 365 * 24 * 3600;

fn accepted(verdict: &liaison_proto::v1::Verdict) -> Result<()> {
    ensure!(
        verdict.outcome == Outcome::Accepted as i32,
        "not accepted: {verdict:?}"
    );
    Ok(())
}

/// `sender` refers the person with subject token `token`, as envelope `id`.
pub async fn refer(sender: &AgencyClient, id: &str, token: &str) -> Result<()> {
    let mut envelope = referral(sender.agency().as_str(), id);
    if let Some(Body::Referral(r)) = envelope.body.as_mut()
        && let Some(person) = r.subject.as_mut()
    {
        person.token = token.to_owned();
    }
    accepted(&sender.send(&envelope).await?)
}

fn case_status(owner: &AgencyClient, case: &str, change: CaseStatusChanged) -> Envelope {
    Envelope {
        id: format!("{case}-{}", change.status),
        sender_agency: owner.agency().to_string(),
        author: format!("{}-dsl", owner.agency()),
        sent_at: Some(liaison_core::time::timestamp_now()),
        classification: Classification::OfficialSensitive as i32,
        purpose: "counter-terrorism".into(),
        legal_basis: "DPA-2018-s35".into(),
        case_id: case.into(),
        body: Some(Body::CaseStatus(change)),
        ..Default::default()
    }
}

/// `owner` opens `case` for `tokens` (from referral `from`, if any) and is
/// recorded as its participant.
pub async fn open_case(
    system: &System,
    owner: &AgencyClient,
    case: &str,
    tokens: &[&str],
    from: &str,
) -> Result<()> {
    let change = CaseStatusChanged {
        status: CaseStatus::Referred as i32,
        unit: "ctp-north".into(),
        reason_code: "referral-received".into(),
        referral_envelope_id: from.into(),
        subject_tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    };
    accepted(&owner.send(&case_status(owner, case, change)).await?)?;
    set_participants(system, case, &[owner.agency().as_str()]).await
}

/// `owner` closes `case`; its subject is reviewed for a year.
pub async fn close_case(owner: &AgencyClient, case: &str) -> Result<()> {
    let change = CaseStatusChanged {
        status: CaseStatus::Closed as i32,
        unit: "ctp-north".into(),
        reason_code: "no-further-action".into(),
        review_date: Some(prost_types::Timestamp {
            seconds: liaison_core::time::unix_now() as i64 + YEAR,
            nanos: 0,
        }),
        ..Default::default()
    };
    accepted(&owner.send(&case_status(owner, case, change)).await?)
}
