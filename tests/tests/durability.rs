//! nats-server killed (SIGKILL) in the middle of a burst and restarted on the
//! same store: every envelope acknowledged to its sender is delivered exactly
//! once, and the audit ledger's chain is intact with exactly one collection
//! record per envelope and one disclosure per copy.

use liaison_tests::{Burst, agency, each_delivered_once, ledger_counts, start};
use std::time::{Duration, Instant};

const ENVELOPES: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the recovery time is a figure worth seeing in the test log
async fn nats_server_killed_mid_burst_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let mut system = start().await?;
    let school = agency(&system, "school-a")
        .await?
        .with_verdict_timeout(Duration::from_millis(500));
    let burst = Burst::start(school, "burst", ENVELOPES);

    burst.until_answered(ENVELOPES / 3).await?;
    let killed_at = Instant::now();
    system.server_mut().restart()?;
    let restarted_in = killed_at.elapsed();
    let at_kill = burst.answered.load(std::sync::atomic::Ordering::SeqCst);

    let acknowledged = burst.finish().await?;
    eprintln!(
        "nats-server back in {restarted_in:?}; burst finished {:?} after the kill",
        killed_at.elapsed()
    );
    assert!(at_kill < ENVELOPES, "the server was killed mid-burst");
    each_delivered_once(&agency(&system, "police").await?, &acknowledged).await?;
    assert_eq!(ledger_counts(&system).await?, (ENVELOPES, 2 * ENVELOPES));
    system.shutdown().await
}
