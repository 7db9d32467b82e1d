//! A whole system as an operator watches it: every service's operations
//! listener and the operator console on free loopback ports, and traffic
//! that gives every panel something to show (accepted referrals delivered
//! to two agencies, refusals of two kinds, a signed checkpoint).

use crate::{agency, config, eventually, ledger, referral};
use anyhow::{Result, ensure};
use liaison_core::subjects;
use liaison_proto::v1::verdict::Outcome;
use liaison_system::system::{System, UpOptions};
use prost::Message as _;
use std::time::Duration;

/// The services with operations listeners, by the names `System` uses.
pub const SERVICES: [&str; 5] = ["gateway", "audit", "cases", "linkage", "alerts"];

/// Starts a system with every operations listener and the console open.
pub async fn start_observed() -> Result<System> {
    crate::test_log();
    let free = || Some("127.0.0.1:0".to_owned());
    let options = UpOptions {
        inspector: true,
        gateway_telemetry: free(),
        audit_telemetry: free(),
        cases_telemetry: free(),
        linkage_telemetry: free(),
        alerts_telemetry: free(),
        console: free(),
        ..UpOptions::default()
    };
    System::start(config(), options).await
}

/// What [`traffic`] sent, for the test to look for.
#[derive(Debug)]
pub struct Traffic {
    /// Records in the ledger once everything settled.
    pub height: u64,
}

/// [`shares`], then [`settle`].
pub async fn traffic(system: &System, prefix: &str, referrals: usize) -> Result<Traffic> {
    shares(system, prefix, referrals).await?;
    settle(system).await
}

/// School-a refers `referrals` children (police and council each receive a
/// copy, and read none), once without a token (`missing_token`); the retail
/// partner sends a referral no agreement lets it send (`policy_denied`).
pub async fn shares(system: &System, prefix: &str, referrals: usize) -> Result<()> {
    let school = agency(system, "school-a").await?;
    for n in 0..referrals {
        let verdict = school
            .send(&referral("school-a", &format!("{prefix}-{n}")))
            .await?;
        ensure!(verdict.outcome == Outcome::Accepted as i32, "{verdict:?}");
    }
    let unsigned = referral("school-a", &format!("{prefix}-unsigned"));
    let verdict = school
        .send_raw(unsigned.encode_to_vec().into(), None)
        .await?;
    ensure!(verdict.code == "missing_token", "{verdict:?}");
    let retail = agency(system, "retail-bsp").await?;
    let verdict = retail
        .send(&referral("retail-bsp", &format!("{prefix}-retail")))
        .await?;
    ensure!(verdict.code == "policy_denied", "{verdict:?}");
    Ok(())
}

/// Waits until everything sent is routed and recorded, then has a
/// checkpoint of the whole ledger signed.
pub async fn settle(system: &System) -> Result<Traffic> {
    let (report, _) = ledger(system).await?;
    ensure!(report.intact(), "{report:?}");
    let auditor = crate::auditor(system, "ig-officer").await?;
    eventually(
        "a checkpoint of the whole ledger",
        Duration::from_secs(20),
        || async {
            let note = auditor
                .request(subjects::CHECKPOINT_REQUEST, "".into())
                .await?;
            let size: Option<u64> = String::from_utf8_lossy(&note.payload)
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse().ok());
            Ok((size == Some(report.verified)).then_some(()))
        },
    )
    .await?;
    Ok(Traffic {
        height: report.verified,
    })
}
