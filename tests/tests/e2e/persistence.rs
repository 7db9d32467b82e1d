//! A system restarted on the same JetStream store carries on: streams and
//! consumers are provisioned again without loss, an agency that was offline
//! catches up from its durable consumer, and the ledger's chain continues.

use liaison_proto::v1::verdict::Outcome;
use liaison_system::system::{System, UpOptions};
use liaison_tests::{agency, config, inbox_exactly, ledger, referral};

async fn start_on(store: &std::path::Path) -> anyhow::Result<System> {
    let options = UpOptions {
        inspector: true,
        store_dir: Some(store.to_path_buf()),
        ..UpOptions::default()
    };
    System::start(config(), options).await
}

async fn send(system: &System, ids: std::ops::Range<usize>) -> anyhow::Result<()> {
    let school = agency(system, "school-a").await?;
    for n in ids {
        let verdict = school
            .send(&referral("school-a", &format!("ref-{n}")))
            .await?;
        assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_restarted_system_keeps_deliveries_and_extends_the_ledger() -> anyhow::Result<()> {
    let store = tempfile::tempdir()?;

    let first = start_on(store.path()).await?;
    send(&first, 0..3).await?;
    let (report, _) = ledger(&first).await?;
    // Three collections, six disclosures, and the policy set the gateway started with.
    assert!(report.intact() && report.verified == 10, "{report:?}");
    first.shutdown().await?;

    let second = start_on(store.path()).await?;
    send(&second, 3..5).await?;
    // The police were offline for the first three: they get all five, once.
    let mut ids: Vec<String> = inbox_exactly(&agency(&second, "police").await?, 5)
        .await?
        .into_iter()
        .filter_map(|d| d.envelope.map(|e| e.id))
        .collect();
    // The router delivers envelopes concurrently: in any order (wire contract).
    ids.sort();
    assert_eq!(ids, vec!["ref-0", "ref-1", "ref-2", "ref-3", "ref-4"]);
    // A re-send from before the restart is still recognised.
    let school = agency(&second, "school-a").await?;
    let again = school.send(&referral("school-a", "ref-1")).await?;
    assert_eq!(again.outcome, Outcome::Duplicate as i32);

    let (report, records) = ledger(&second).await?;
    assert!(report.intact(), "{report:?}");
    let ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
    // Five collections, ten disclosures; two gateway starts.
    assert_eq!((report.verified, records.len()), (17, 15), "{ids:#?}");
    second.shutdown().await
}
