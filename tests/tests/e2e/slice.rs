//! The walking skeleton end to end: a school's referral reaches the police and
//! the council, each with what it may see, and the audit ledger records the
//! collection and each disclosure.

use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{DataLabel, Decision, Operation};
use liaison_tests::{agency, inbox_exactly, ledger, referral, referral_of, start};

#[tokio::test]
async fn a_referral_reaches_police_and_council_with_what_each_may_see() -> anyhow::Result<()> {
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;

    let verdict = school.send(&referral("school-a", "ref-0001")).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    assert_eq!(verdict.recipients, vec!["council", "police"]);
    assert_eq!(verdict.policy_ids, vec!["ISA-EDU-01/send"]);

    let to_police = inbox_exactly(&police, 1).await?;
    let r = referral_of(&to_police[0]).ok_or_else(|| anyhow::anyhow!("not a referral"))?;
    assert_eq!(r.health_notes, "", "police must not see health fields");
    assert!(
        r.risk_indicators.is_empty(),
        "police may not see intelligence from a school here"
    );
    assert_eq!(r.concern, "Shared extremist material");
    assert_eq!(
        r.subject.as_ref().map(|s| s.full_name.as_str()),
        Some("Alex Example")
    );
    assert!(
        to_police[0]
            .withheld_labels
            .contains(&(DataLabel::Health as i32))
    );
    assert!(
        to_police[0]
            .policy_ids
            .contains(&"ISA-EDU-01/receive".to_owned())
    );

    let to_council = inbox_exactly(&council, 1).await?;
    let r = referral_of(&to_council[0]).ok_or_else(|| anyhow::anyhow!("not a referral"))?;
    assert_eq!(
        r.health_notes, "Under CAMHS",
        "the council may see health fields"
    );
    assert!(
        !to_council[0]
            .withheld_labels
            .contains(&(DataLabel::Health as i32))
    );

    // Nobody else received a copy.
    for other in ["school-a", "nhs-trust", "probation", "retail-bsp"] {
        inbox_exactly(&agency(&system, other).await?, 0).await?;
    }

    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    assert_eq!(
        records.len(),
        3,
        "one collection and two disclosures: {records:#?}"
    );
    // The router may chain a disclosure before ingress chains the collection
    // (both follow the store in EVENTS); each record carries its own time.
    let (collections, disclosures): (Vec<_>, Vec<_>) = records
        .iter()
        .partition(|r| r.operation == Operation::Collection as i32);
    assert_eq!(collections.len(), 1, "{records:#?}");
    let collection = collections[0];
    assert_eq!(collection.decision, Decision::Accepted as i32);
    assert_eq!(collection.agency, "school-a");
    assert_eq!(collection.author, "school-a-dsl");
    assert_eq!(collection.purpose, "safeguarding");
    assert_eq!(collection.legal_basis, "CTSA-2015-s26");
    assert_eq!(collection.envelope_id, "ref-0001");
    assert_eq!(collection.recipients, vec!["council", "police"]);
    assert!(collection.time.is_some());
    let mut disclosed: Vec<_> = disclosures
        .iter()
        .map(|r| {
            assert_eq!(r.operation, Operation::Disclosure as i32);
            assert_eq!(r.envelope_id, "ref-0001");
            (
                r.recipients.join(","),
                r.withheld_labels.contains(&(DataLabel::Health as i32)),
            )
        })
        .collect();
    disclosed.sort();
    assert_eq!(
        disclosed,
        vec![("council".into(), false), ("police".into(), true)]
    );
    // The ledger holds no personal fields of the envelope.
    let text = format!("{records:?}");
    assert!(!text.contains("Alex Example") && !text.contains("CAMHS"));
    system.shutdown().await
}

#[tokio::test]
async fn the_same_envelope_id_sent_twice_is_delivered_once() -> anyhow::Result<()> {
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let envelope = referral("school-a", "ref-twice");
    let first = school.send(&envelope).await?;
    let second = school.send(&envelope).await?;
    assert_eq!(first.outcome, Outcome::Accepted as i32);
    assert_eq!(second.outcome, Outcome::Duplicate as i32, "{second:?}");
    assert_eq!(second.recipients, first.recipients);
    let deliveries = inbox_exactly(&police, 1).await?;
    assert_eq!(
        deliveries[0].envelope.as_ref().map(|e| e.id.as_str()),
        Some("ref-twice")
    );
    let (report, records) = ledger(&system).await?;
    assert!(report.intact());
    assert_eq!(records.len(), 3, "the re-send adds no record: {records:#?}");
    system.shutdown().await
}
