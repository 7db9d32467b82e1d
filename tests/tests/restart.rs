//! Restarting the gateway mid-stream loses nothing that was acknowledged to a
//! sender, and delivers nothing twice.

use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{Decision, Operation};
use liaison_tests::{agency, eventually, inbox_exactly, ledger, referral, start};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const ENVELOPES: usize = 200;

#[tokio::test]
async fn a_gateway_killed_mid_stream_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let mut system = start().await?;
    let school = agency(&system, "school-a")
        .await?
        .with_verdict_timeout(Duration::from_millis(500));
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;

    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    let sender = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for n in 0..ENVELOPES {
            let envelope = referral("school-a", &format!("ref-{n:04}"));
            let verdict = school
                .send_until_answered(&envelope, Duration::from_secs(30))
                .await?;
            anyhow::ensure!(
                verdict.outcome == Outcome::Accepted as i32
                    || verdict.outcome == Outcome::Duplicate as i32,
                "{verdict:?}"
            );
            acknowledged.push(envelope.id);
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok::<_, anyhow::Error>(acknowledged)
    });

    // Crash the gateway (every task and its connection dropped at once) a
    // third of the way through, and start a new one.
    eventually("a third of the envelopes", Duration::from_secs(30), || {
        let n = answered.load(Ordering::SeqCst);
        async move { Ok((n >= ENVELOPES / 3).then_some(())) }
    })
    .await?;
    system.kill_gateway().await;
    let at_kill = answered.load(Ordering::SeqCst);
    system.start_gateway().await?;

    let acknowledged = sender.await??;
    assert_eq!(acknowledged.len(), ENVELOPES);
    assert!(at_kill < ENVELOPES, "the gateway was killed mid-stream");

    let expected: BTreeSet<String> = acknowledged.into_iter().collect();
    for recipient in [&police, &council] {
        let ids: Vec<String> = inbox_exactly(recipient, ENVELOPES)
            .await?
            .into_iter()
            .filter_map(|d| d.envelope.map(|e| e.id))
            .collect();
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{} got duplicates",
            recipient.agency()
        );
        assert_eq!(
            unique,
            expected,
            "{} missed acknowledged envelopes",
            recipient.agency()
        );
    }

    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let collections = records
        .iter()
        .filter(|r| {
            r.operation == Operation::Collection as i32 && r.decision == Decision::Accepted as i32
        })
        .count();
    let disclosures = records
        .iter()
        .filter(|r| r.operation == Operation::Disclosure as i32)
        .count();
    assert_eq!((collections, disclosures), (ENVELOPES, 2 * ENVELOPES));
    system.shutdown().await
}
