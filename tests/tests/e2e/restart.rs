//! Restarting the gateway mid-stream loses nothing that was acknowledged to a
//! sender, and delivers nothing twice.

use liaison_tests::{Burst, agency, each_delivered_once, ledger_counts, start};
use std::time::Duration;

const ENVELOPES: usize = 200;

#[tokio::test]
async fn a_gateway_killed_mid_stream_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let mut system = start().await?;
    let school = agency(&system, "school-a")
        .await?
        .with_verdict_timeout(Duration::from_millis(500));
    let burst = Burst::start(school, "ref", ENVELOPES);

    // Crash the gateway (every task and its connection dropped at once) a
    // third of the way through, and start a new one.
    burst.until_answered(ENVELOPES / 3).await?;
    system.kill_gateway().await;
    let at_kill = burst.answered.load(std::sync::atomic::Ordering::SeqCst);
    system.start_gateway().await?;

    let acknowledged = burst.finish().await?;
    assert_eq!(acknowledged.len(), ENVELOPES);
    assert!(at_kill < ENVELOPES, "the gateway was killed mid-stream");
    for recipient in ["police", "council"] {
        each_delivered_once(&agency(&system, recipient).await?, &acknowledged).await?;
    }
    assert_eq!(ledger_counts(&system).await?, (ENVELOPES, 2 * ENVELOPES));
    system.shutdown().await
}

#[tokio::test]
async fn an_audit_service_killed_mid_stream_chains_every_decision_once() -> anyhow::Result<()> {
    let mut system = start().await?;
    let school = agency(&system, "school-a").await?;
    let burst = Burst::start(school, "audit", ENVELOPES);

    // Kill the ledger writer while decisions are arriving, in batches; the
    // new one recovers the chain and skips what was appended but not acknowledged.
    burst.until_answered(ENVELOPES / 3).await?;
    system.kill_audit().await;
    burst.until_answered(2 * ENVELOPES / 3).await?;
    system.start_audit().await?;

    let acknowledged = burst.finish().await?;
    each_delivered_once(&agency(&system, "police").await?, &acknowledged).await?;
    assert_eq!(ledger_counts(&system).await?, (ENVELOPES, 2 * ENVELOPES));
    system.shutdown().await
}
