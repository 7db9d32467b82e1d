//! nats-server killed (SIGKILL) in the middle of a burst and restarted on the
//! same store: every envelope acknowledged to its sender is delivered exactly
//! once, and the audit ledger's chain is intact with exactly one collection
//! record per envelope and one disclosure per copy.

use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{Decision, Operation};
use liaison_tests::{agency, eventually, inbox_exactly, ledger, referral, start};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ENVELOPES: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the recovery time is a figure worth seeing in the test log
async fn nats_server_killed_mid_burst_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let mut system = start().await?;
    let school = agency(&system, "school-a")
        .await?
        .with_verdict_timeout(Duration::from_millis(500));

    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    let sender = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for n in 0..ENVELOPES {
            let envelope = referral("school-a", &format!("burst-{n:04}"));
            let verdict = school
                .send_until_answered(&envelope, Duration::from_secs(60))
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

    eventually("a third of the burst", Duration::from_secs(30), || {
        let n = answered.load(Ordering::SeqCst);
        async move { Ok((n >= ENVELOPES / 3).then_some(())) }
    })
    .await?;
    let killed_at = Instant::now();
    system.server_mut().restart()?;
    let restarted_in = killed_at.elapsed();
    let at_kill = answered.load(Ordering::SeqCst);

    let acknowledged = sender.await??;
    let recovered_in = killed_at.elapsed();
    assert!(at_kill < ENVELOPES, "the server was killed mid-burst");
    eprintln!(
        "nats-server back in {restarted_in:?}; burst finished {recovered_in:?} after the kill"
    );

    let expected: BTreeSet<String> = acknowledged.into_iter().collect();
    let police = agency(&system, "police").await?;
    let ids: Vec<String> = inbox_exactly(&police, ENVELOPES)
        .await?
        .into_iter()
        .filter_map(|d| d.envelope.map(|e| e.id))
        .collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates delivered");
    assert_eq!(unique, expected, "acknowledged envelopes missing");

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
