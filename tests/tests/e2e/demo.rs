//! The demo's day end to end, as `liaison demo --kill-services` runs it but
//! smaller: the case load loaded through the gateway, a day of referrals and
//! case work, a weekly re-prioritisation, a former subject re-engaging, one
//! person referred twice, an information request left unanswered, an
//! attack and its alerts, with the cases, linkage and alerts services
//! killed mid-day while events wait for them. Every workflow shows up once,
//! nothing is read twice, and the only refusals are the ones the day plans.

use anyhow::Result;
use liaison_client::SubjectKey;
use liaison_system::demo::agencies::{BUSY_PARTNER, CLOSED_TODAY, connect};
use liaison_system::demo::day::KILL_AFTER;
use liaison_system::demo::tally::Tally;
use liaison_system::demo::{DemoOptions, Plan, run};
use liaison_tests::{config, ledger, repo_root, start_with};
use std::time::Duration;

#[tokio::test]
async fn a_day_with_services_killed_mid_way_runs_every_workflow_once() -> Result<()> {
    let mut config = config();
    config.alerts.escalate_critical_secs = 2;
    let mut system = start_with(config.clone()).await?;
    let (clients, business) = connect(
        &system,
        &config,
        &repo_root().join("deploy/agencies/dev-keys"),
    )
    .await?;
    let key = SubjectKey::from_file(&repo_root().join("deploy/linkage/dev-partnership.key"))?;
    let plan = Plan::new(320, &key);
    let tally = Tally::default();
    let options = DemoOptions {
        escalation: Duration::from_secs(2),
        kill_after: Some(KILL_AFTER),
    };
    let report = run(
        &mut system,
        &clients,
        &business,
        &plan,
        &tally,
        &options,
        |_| {},
    )
    .await?;
    assert!(report.killed);
    // Everything planned was sent (and the one re-sent envelope on top).
    let planned: usize = plan
        .morning
        .iter()
        .chain(&plan.day)
        .map(|p| p.sends.len())
        .sum();
    let morning: usize = plan.morning.iter().map(|p| p.sends.len()).sum();
    let accepted_morning: usize = report
        .phases
        .iter()
        .filter(|p| p.part == "morning")
        .map(|p| p.accepted)
        .sum();
    assert_eq!(accepted_morning, morning, "the whole case load is accepted");

    let sent: usize = tally.lock().sent.values().sum();
    {
        let counts = tally.lock();
        assert!(
            sent > planned,
            "{sent} sent of {planned} planned (plus replies)"
        );
        assert_eq!(counts.duplicates, 0, "a delivery read twice");
        assert_eq!(
            counts.outcomes.get("duplicate"),
            Some(&1),
            "{:?}",
            counts.outcomes
        );
        // The only refusals are the planned ones: a business partner's referrals
        // (no agreement), updates from agencies not on a case's panel, and the
        // police's SECRET updates to panels none of whose other members is
        // cleared for them (refused, never accepted with no recipient).
        for ((sender, what), n) in &counts.refused {
            assert!(
                (sender == "retail-bsp" && what == "referral: policy_denied")
                    || what == "case_update: policy_denied"
                    || (sender == "police" && what == "case_update: no_recipient"),
                "unplanned refusal: {sender} {what} ×{n}"
            );
        }
        let delivered = |agency: &str, kind: &str| {
            counts
                .delivered
                .get(&(agency.to_owned(), kind.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        assert!(
            delivered("police", "priority_changed") >= 10,
            "the weekly re-prioritisation moves cases"
        );
        assert!(delivered("council", "referral") > 0 && delivered("police", "referral") > 0);
        assert!(
            delivered("nhs-trust", "case_update") > 0
                && delivered("probation", "participation") > 0
        );
        assert!(
            delivered("police", "information_response") > 0,
            "requests are answered"
        );
        assert!(
            delivered(CLOSED_TODAY, "request_overdue") >= 1
                && delivered("police", "request_overdue") >= 1
        );
        assert_eq!(delivered("retail-bsp", "alert"), 1);
        assert_eq!(delivered("transport-bsp", "alert"), 1);
        assert_eq!(
            delivered("retail-bsp", "alert_escalated"),
            0,
            "it acknowledged at once"
        );
        assert_eq!(
            delivered(BUSY_PARTNER, "alert_escalated"),
            1,
            "escalated once, then acknowledged"
        );
        assert_eq!(delivered("police", "alert_ack"), 2);
    }

    // The former subject's re-engagement reached the owner once; the person
    // referred twice was noticed.
    let Some((referral, case)) = &plan.moments.reengaging else {
        anyhow::bail!("the plan has no re-engagement");
    };
    assert_eq!(
        tally.read_ids("police", "reengagement:"),
        [format!("reengagement:{referral}:{case}")]
    );
    assert!(tally.delivered_kind("duplicate_subject") >= 1);

    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    assert!(
        records.len() > sent,
        "{} records for {sent} sends",
        records.len()
    );
    system.shutdown().await
}
