//! Running the plan through a running system: each phase sent in order or
//! concurrently (eight in flight), after waiting for the system to catch up
//! where the phase needs it; the agencies' readers answering meanwhile;
//! then a re-sent envelope, the business partners' acknowledgements awaited,
//! and everything drained.

use super::agencies::Readers;
use super::tally::{Tally, outcome};
use super::{Contribution, Phase, Plan};
use crate::system::System;
use anyhow::{Result, anyhow};
use futures_util::stream::{self, StreamExt};
use liaison_client::AgencyClient;
use liaison_core::AgencyId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one envelope is re-sent while the gateway is busy.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long the system may take to catch up between phases.
const CATCH_UP: Duration = Duration::from_secs(120);
/// Envelopes in flight in a concurrent phase.
const IN_FLIGHT: usize = 8;

/// How the demo runs.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// How long a CRITICAL alert waits for acknowledgements before it is
    /// escalated (the alerts service's setting, for waiting on it).
    pub escalation: Duration,
    /// Kill the cases, linkage and alerts services after this phase (with
    /// its events not yet folded), and start them again: nothing is lost
    /// or raised twice.
    pub kill_after: Option<&'static str>,
}

/// What one phase did.
#[derive(Debug)]
pub struct PhaseReport {
    pub part: &'static str,
    pub name: &'static str,
    pub sent: usize,
    pub accepted: usize,
    pub took: Duration,
}

/// What the run did, beside the tally.
#[derive(Debug, Default)]
pub struct Report {
    pub phases: Vec<PhaseReport>,
    pub day_took: Duration,
    pub day_sent: usize,
    /// Whether the fold services were killed and restarted mid-day.
    pub killed: bool,
}

async fn send(
    clients: &BTreeMap<AgencyId, Arc<AgencyClient>>,
    tally: &Tally,
    c: &Contribution,
) -> Result<bool> {
    let client = AgencyId::parse(c.sender)
        .ok()
        .and_then(|a| clients.get(&a))
        .ok_or_else(|| anyhow!("no client for {}", c.sender))?;
    let mut envelope = c.envelope.clone();
    envelope.sent_at = Some(liaison_core::time::timestamp_now());
    let started = Instant::now();
    let verdict = client.send_until_answered(&envelope, PATIENCE).await?;
    let outcome = outcome(&verdict);
    let accepted = outcome == "accepted";
    tally.verdict(
        c.sender,
        envelope.kind(),
        &envelope.id,
        outcome,
        started.elapsed(),
    );
    Ok(accepted)
}

async fn phase(
    system: &System,
    clients: &BTreeMap<AgencyId, Arc<AgencyClient>>,
    tally: &Tally,
    part: &'static str,
    phase: &Phase,
) -> Result<PhaseReport> {
    if phase.settle_first {
        system.wait_until_folded(CATCH_UP).await?;
    }
    let started = Instant::now();
    let mut accepted = 0;
    if phase.ordered {
        for c in &phase.sends {
            accepted += usize::from(send(clients, tally, c).await?);
        }
    } else {
        let mut results = stream::iter(&phase.sends)
            .map(|c| send(clients, tally, c))
            .buffer_unordered(IN_FLIGHT);
        while let Some(result) = results.next().await {
            accepted += usize::from(result?);
        }
    }
    Ok(PhaseReport {
        part,
        name: phase.name,
        sent: phase.sends.len(),
        accepted,
        took: started.elapsed(),
    })
}

/// Whether every business partner has acknowledged every alert it received.
fn alerts_acknowledged(tally: &Tally, business: &[AgencyId]) -> bool {
    let c = tally.lock();
    business.iter().all(|b| {
        let got = c
            .delivered
            .get(&(b.to_string(), "alert".to_owned()))
            .copied()
            .unwrap_or(0);
        let acked = c
            .sent
            .get(&(b.to_string(), "alert_ack".to_owned()))
            .copied()
            .unwrap_or(0);
        acked >= got
    })
}

/// Runs `plan` through `system` with one client per agency; `progress` is
/// told of each phase as it ends.
pub async fn run(
    system: &mut System,
    clients: &BTreeMap<AgencyId, Arc<AgencyClient>>,
    business: &[AgencyId],
    plan: &Plan,
    tally: &Tally,
    options: &DemoOptions,
    mut progress: impl FnMut(&PhaseReport),
) -> Result<Report> {
    let readers = Readers::spawn(clients, business, tally);
    let mut report = Report::default();
    for (part, script) in [("morning", &plan.morning), ("day", &plan.day)] {
        let started = Instant::now();
        for p in script {
            let done = phase(system, clients, tally, part, p).await?;
            progress(&done);
            report.phases.push(done);
            if options.kill_after == Some(p.name) {
                system.kill_cases().await;
                system.kill_linkage().await;
                system.kill_alerts().await;
                report.killed = true;
                system.start_cases().await?;
                system.start_linkage().await?;
                system.start_alerts().await?;
            }
        }
        if part == "day" {
            report.day_took = started.elapsed();
            report.day_sent = script.iter().map(|p| p.sends.len()).sum();
        }
    }
    // A sender that lost the verdict re-sends the same envelope: answered
    // DUPLICATE, and never delivered twice.
    if let Some(first) = plan.day.first().and_then(|p| p.sends.first()) {
        send(clients, tally, first).await?;
    }
    // The partners acknowledge the alerts (the busy one after an escalation).
    let deadline = Instant::now() + options.escalation * 3 + CATCH_UP;
    while !alerts_acknowledged(tally, business) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Replies beget deliveries (an answer, a confirmed erasure): wait until
    // a round of catching up brings nothing new, then stop the readers.
    let activity = || {
        let c = tally.lock();
        c.delivered.values().sum::<usize>() + c.verdicts.len()
    };
    loop {
        let before = activity();
        system.wait_until_folded(CATCH_UP).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if activity() == before {
            break;
        }
    }
    readers.finish().await?;
    Ok(report)
}
