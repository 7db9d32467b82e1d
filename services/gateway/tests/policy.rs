//! The shipped policies (deploy/policies) against the development registry:
//! who may send, who receives, and what each may see.

use liaison_gateway::policy::{Policy, Route};
use liaison_kit::AgencyId;
use liaison_kit::registry::Registry;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{
    AlertIssued, CaseUpdated, Classification, DataLabel, Envelope, ReferralMade,
};
use std::path::PathBuf;

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

fn load() -> (Policy, Registry) {
    let registry =
        Registry::load(&deploy("agencies/registry.toml")).unwrap_or_else(|e| panic!("{e}"));
    let policy = Policy::load(&deploy("policies"), &registry).unwrap_or_else(|e| panic!("{e}"));
    (policy, registry)
}

fn envelope(sender: &str, purpose: &str, classification: Classification, body: Body) -> Envelope {
    Envelope {
        id: "e-1".into(),
        sender_agency: sender.into(),
        purpose: purpose.into(),
        legal_basis: "test".into(),
        classification: classification as i32,
        case_id: "CASE-1".into(),
        body: Some(body),
        ..Default::default()
    }
}

fn decide(sender: &str, e: &Envelope) -> (bool, Vec<Route>) {
    let (policy, registry) = load();
    let id = AgencyId::parse(sender).unwrap_or_else(|e| panic!("{e}"));
    let (send, routes) = policy
        .evaluate(&id, e, &registry)
        .unwrap_or_else(|e| panic!("{e}"));
    (send.allowed, routes)
}

fn recipients(routes: &[Route]) -> Vec<&str> {
    routes.iter().map(|r| r.recipient.as_str()).collect()
}

#[test]
fn a_school_referral_goes_to_police_and_council_and_only_the_council_sees_health() {
    let e = envelope(
        "school-a",
        "safeguarding",
        Classification::OfficialSensitive,
        Body::Referral(ReferralMade::default()),
    );
    let (allowed, routes) = decide("school-a", &e);
    assert!(allowed);
    assert_eq!(recipients(&routes), vec!["council", "police"]);
    let council = &routes[0];
    let police = &routes[1];
    assert!(!council.withheld.contains(&DataLabel::Health));
    assert!(police.withheld.contains(&DataLabel::Health));
    assert!(police.withheld.contains(&DataLabel::SocialCare));
    assert!(!police.withheld.contains(&DataLabel::Identity));
    assert!(police.clauses.contains(&"ISA-EDU-01/receive".to_owned()));
}

#[test]
fn a_referral_for_a_purpose_no_clause_allows_is_refused() {
    let e = envelope(
        "school-a",
        "marketing",
        Classification::Official,
        Body::Referral(ReferralMade::default()),
    );
    assert!(!decide("school-a", &e).0);
}

#[test]
fn business_partners_may_not_send_referrals_and_schools_may_not_send_alerts() {
    let referral = envelope(
        "retail-bsp",
        "safeguarding",
        Classification::Official,
        Body::Referral(ReferralMade::default()),
    );
    assert!(!decide("retail-bsp", &referral).0);
    let alert = envelope(
        "school-a",
        "protective-security",
        Classification::Official,
        Body::Alert(AlertIssued::default()),
    );
    assert!(!decide("school-a", &alert).0);
}

#[test]
fn a_secret_case_update_reaches_only_agencies_cleared_for_secret() {
    let official = envelope(
        "probation",
        "safeguarding",
        Classification::OfficialSensitive,
        Body::CaseUpdate(CaseUpdated::default()),
    );
    let (allowed, routes) = decide("probation", &official);
    assert!(allowed);
    assert_eq!(recipients(&routes), vec!["council", "nhs-trust", "police"]);
    let secret = envelope(
        "probation",
        "safeguarding",
        Classification::Secret,
        Body::CaseUpdate(CaseUpdated::default()),
    );
    let (_, routes) = decide("probation", &secret);
    assert_eq!(
        recipients(&routes),
        vec!["police"],
        "only police hold SECRET clearance"
    );
}

#[test]
fn police_alerts_reach_business_partners_and_the_council_with_location_only() {
    let alert = envelope(
        "police",
        "protective-security",
        Classification::Official,
        Body::Alert(AlertIssued::default()),
    );
    let (allowed, routes) = decide("police", &alert);
    assert!(allowed);
    assert_eq!(
        recipients(&routes),
        vec!["council", "retail-bsp", "transport-bsp"]
    );
    for route in &routes {
        assert!(!route.withheld.contains(&DataLabel::Location));
        assert!(route.withheld.contains(&DataLabel::Identity));
    }
}

#[test]
fn an_invalid_policy_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(
        deploy("policies/liaison.cedarschema"),
        dir.path().join("liaison.cedarschema"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("bad.cedar"),
        "permit (principal, action, resource) when { resource.colour == \"red\" };",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let registry =
        Registry::load(&deploy("agencies/registry.toml")).unwrap_or_else(|e| panic!("{e}"));
    let err = Policy::load(dir.path(), &registry)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("do not validate"), "{err}");
    std::fs::write(
        dir.path().join("bad.cedar"),
        "permit (principal, action, resource) when {",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = Policy::load(dir.path(), &registry)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("bad.cedar"), "{err}");
}
