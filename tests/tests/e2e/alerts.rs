//! Business alerts end to end, over a real nats-server with the services
//! in-process: alerts reach business partners by sector and region (and the
//! time from the police verdict to each partner's delivery is printed),
//! acknowledgements reach the issuing unit, and an alert a partner never
//! acknowledges is escalated — exactly once, across a crash of the alerts
//! service and a rebuild of its state from EVENTS — and repeatedly up to the
//! configured maximum. `liaison alerts` (its function) shows what is
//! outstanding. Escalation periods are configured in seconds; nothing sleeps.

use anyhow::Result;
use liaison_alerts::alert::escalation_id;
use liaison_alerts::board;
use liaison_client::AgencyClient;
use liaison_core::system::Service;
use liaison_proto::v1::Operation;
use liaison_proto::v1::alert_issued::ThreatLevel;
use liaison_proto::v1::verdict::Outcome;
use liaison_tests::alerts::{
    WAIT, ack, alert, alert_row, alerts_caught_up, escalation_of, issue_and_time, kinds, operator,
    outbox_len, raised, sorted, watch_raises,
};
use liaison_tests::{agency, config, eventually, inbox_exactly, ledger, start_with};
use std::time::{Duration, SystemTime};

#[tokio::test]
async fn alerts_reach_partners_by_sector_and_region_and_acknowledgements_reach_the_issuer()
-> Result<()> {
    let system = start_with(config()).await?;
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;
    let transport = agency(&system, "transport-bsp").await?;
    let retail = agency(&system, "retail-bsp").await?;

    // Retail in London: the council and the retail partner; not transport.
    let issued = alert("alert-retail-1", ThreatLevel::Severe, &["retail"], "london");
    let (recipients, partners) = issue_and_time(&police, &issued, vec![retail]).await?;
    assert_eq!(recipients, ["council", "retail-bsp"]);
    let retail = partners
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("retail"));
    assert_eq!(
        kinds(&inbox_exactly(&council, 1).await?),
        [("alert".into(), issued.id.clone())]
    );
    inbox_exactly(&transport, 0).await?;

    // `liaison alerts`: outstanding, retail-bsp has not acknowledged.
    let row = alert_row(&system, &issued.id, "the alert tracked", |_| true).await?;
    assert_eq!((row.acknowledged, row.to_acknowledge), (0, 1));
    assert_eq!(row.not_acknowledged, ["retail-bsp"]);
    assert_eq!(
        (row.issued_by.as_str(), row.threat_level.as_str()),
        ("police", "SEVERE")
    );
    assert_eq!(
        (row.sectors.clone(), row.region.as_str()),
        (vec!["retail".to_owned()], "london")
    );
    let listed = board::outstanding(&operator(&system).await?, liaison_alerts::now_ms()).await?;
    assert!(
        board::table(&listed).contains("retail / london"),
        "{listed:?}"
    );

    // Transport never received it: it cannot acknowledge it.
    let verdict = transport
        .send(&ack("transport-bsp", "ack-t-1", &issued.id))
        .await?;
    assert_eq!(verdict.code, "policy_denied", "{verdict:?}");

    // Retail acknowledges; the police (who issued it) receive the acknowledgement.
    let verdict = retail
        .send(&ack("retail-bsp", "ack-r-1", &issued.id))
        .await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    assert_eq!(verdict.recipients, ["police"]);
    let to_police = inbox_exactly(&police, 1).await?;
    let acked = to_police[0].envelope.clone().unwrap_or_default();
    assert_eq!(
        (acked.kind(), acked.in_reply_to.as_str()),
        ("alert_ack", issued.id.as_str())
    );
    inbox_exactly(&council, 0).await?;

    let row = alert_row(&system, &issued.id, "the acknowledgement counted", |r| {
        r.acknowledged == 1
    })
    .await?;
    assert!(row.not_acknowledged.is_empty());
    let listed = board::outstanding(&operator(&system).await?, liaison_alerts::now_ms()).await?;
    assert!(listed.iter().all(|r| r.id != issued.id), "{listed:?}");

    // The acknowledgement is in the ledger, recorded by the alerts service,
    // without the alert's content.
    alerts_caught_up(&system).await?;
    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let ours: Vec<_> = records.iter().filter(|r| r.service == "alerts").collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].record_id, "alerts:ack:ack-r-1");
    assert_eq!(ours[0].operation, Operation::Collection as i32);
    assert_eq!(ours[0].recipients, ["police"]);
    assert!(ours[0].reason.contains("1 of 1"), "{}", ours[0].reason);
    let text = format!("{ours:?}");
    assert!(
        !text.contains("Oxford") && !text.contains("Vehicle"),
        "{text}"
    );
    system.shutdown().await
}

#[tokio::test]
async fn an_unacknowledged_alert_escalates_once_across_a_crash_and_a_rebuild() -> Result<()> {
    let mut settings = config();
    settings.alerts.escalate_severe_secs = 4;
    settings.alerts.max_escalations = 1;
    let mut system = start_with(settings).await?;
    let raises = watch_raises(&system).await?;
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;
    let retail = agency(&system, "retail-bsp").await?;
    let transport = agency(&system, "transport-bsp").await?;

    // Retail and transport in London: the national transport lead receives it too.
    let issued = alert(
        "alert-2",
        ThreatLevel::Severe,
        &["retail", "transport"],
        "london",
    );
    let due = SystemTime::now() + Duration::from_secs(4);
    let (recipients, partners) = issue_and_time(&police, &issued, vec![retail, transport]).await?;
    assert_eq!(recipients, ["council", "retail-bsp", "transport-bsp"]);
    assert_eq!(
        kinds(&inbox_exactly(&council, 1).await?),
        [("alert".into(), issued.id.clone())]
    );
    let [retail, transport]: [AgencyClient; 2] = partners
        .try_into()
        .unwrap_or_else(|_| panic!("two partners"));
    let verdict = retail.send(&ack("retail-bsp", "ack-2", &issued.id)).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    let row = alert_row(&system, &issued.id, "retail's acknowledgement", |r| {
        r.acknowledged == 1
    })
    .await?;
    assert_eq!(row.not_acknowledged, ["transport-bsp"]);
    assert_eq!(row.escalations, 0);

    // The alerts service crashes before the escalation is due, and comes back after.
    if SystemTime::now() < due {
        assert!(raised(&raises).is_empty(), "{:?}", raised(&raises));
    }
    system.kill_alerts().await;
    eventually("the escalation to fall due", WAIT, || async {
        Ok((SystemTime::now() >= due).then_some(()))
    })
    .await?;
    system.start_alerts().await?;

    // Police and transport receive the escalation, once; retail (which
    // acknowledged) and the council do not.
    let to_police = inbox_exactly(&police, 2).await?;
    let expected_id = escalation_id(&issued.id, 1);
    let escalations: Vec<_> = to_police.iter().filter_map(escalation_of).collect();
    assert_eq!(escalations.len(), 1, "{to_police:?}");
    let (envelope, body) = escalations[0];
    assert_eq!(envelope.id, expected_id);
    assert_eq!(envelope.in_reply_to, issued.id);
    assert_eq!(envelope.sender_agency, "liaison-alerts");
    assert_eq!(body.unacknowledged, ["transport-bsp"]);
    assert_eq!(body.after_seconds, 4);
    assert_eq!(body.threat_level, ThreatLevel::Severe as i32);
    let to_transport = inbox_exactly(&transport, 1).await?;
    assert_eq!(
        kinds(&to_transport),
        [("alert_escalated".into(), expected_id.clone())]
    );
    inbox_exactly(&retail, 0).await?;
    inbox_exactly(&council, 0).await?;
    let row = alert_row(&system, &issued.id, "the escalation's echo", |r| {
        r.escalations == 1
    })
    .await?;
    assert_eq!(row.not_acknowledged, ["transport-bsp"]);

    // Another crash and restart: nothing raised again.
    system.kill_alerts().await;
    system.start_alerts().await?;
    alerts_caught_up(&system).await?;

    // An empty bucket: the state is rebuilt from EVENTS, nothing raised again.
    system.stop_alerts().await;
    let js = operator(&system).await?;
    js.delete_key_value(Service::Alerts.bucket()).await?;
    js.create_key_value(liaison_runtime::provision::service_bucket(
        Service::Alerts,
        1,
    ))
    .await?;
    system.start_alerts().await?;
    alerts_caught_up(&system).await?;
    let rebuilt = alert_row(&system, &issued.id, "the rebuilt alert", |_| true).await?;
    assert_eq!(
        rebuilt,
        board::Row {
            age_secs: rebuilt.age_secs,
            ..row
        }
    );
    let listed = board::outstanding(&js, liaison_alerts::now_ms()).await?;
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [issued.id.as_str()]
    );
    assert!(board::table(&listed).contains("yes (1)"), "{listed:?}");
    inbox_exactly(&police, 0).await?;
    inbox_exactly(&transport, 0).await?;
    assert_eq!(
        raised(&raises),
        std::slice::from_ref(&expected_id),
        "raised through the internal door"
    );

    // One escalation record (and one acknowledgement record) in the ledger.
    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let ours: Vec<&str> = records
        .iter()
        .filter(|r| r.service == "alerts")
        .map(|r| r.record_id.as_str())
        .collect();
    assert_eq!(
        ours,
        [
            "alerts:ack:ack-2",
            &format!("alerts:escalation:{expected_id}")
        ]
    );
    let escalated = records
        .iter()
        .find(|r| r.code == "alert_escalated")
        .unwrap_or_else(|| panic!("escalation record"));
    assert_eq!(escalated.operation, Operation::Combination as i32);
    assert_eq!(escalated.recipients, ["police", "transport-bsp"]);
    let disclosed: Vec<&str> = records
        .iter()
        .filter(|r| r.envelope_id == expected_id && r.operation == Operation::Disclosure as i32)
        .flat_map(|r| r.recipients.iter().map(String::as_str))
        .collect();
    assert_eq!(
        sorted(
            &disclosed
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>()
        ),
        ["police", "transport-bsp"]
    );
    system.shutdown().await
}

#[tokio::test]
async fn escalation_repeats_each_period_up_to_the_maximum() -> Result<()> {
    let mut settings = config();
    settings.alerts.escalate_critical_secs = 1;
    settings.alerts.max_escalations = 2;
    let system = start_with(settings).await?;
    let police = agency(&system, "police").await?;
    let transport = agency(&system, "transport-bsp").await?;

    let issued = alert("alert-3", ThreatLevel::Critical, &["transport"], "national");
    let (recipients, partners) = issue_and_time(&police, &issued, vec![transport]).await?;
    assert_eq!(
        recipients,
        ["council", "transport-bsp", "westshire-council"]
    );
    let transport = partners
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("transport"));

    let to_police = inbox_exactly(&police, 2).await?;
    let mut after: Vec<(String, u32)> = to_police
        .iter()
        .filter_map(escalation_of)
        .map(|(e, body)| (e.id.clone(), body.after_seconds))
        .collect();
    after.sort();
    assert_eq!(
        after,
        [
            (escalation_id("alert-3", 1), 1),
            (escalation_id("alert-3", 2), 2)
        ]
    );
    assert_eq!(inbox_exactly(&transport, 2).await?.len(), 2);

    // No third: wait until it would have been due, and the service caught up.
    let due = SystemTime::now() + Duration::from_secs(2);
    eventually("a third period to pass", WAIT, || async {
        Ok((SystemTime::now() >= due).then_some(()))
    })
    .await?;
    alerts_caught_up(&system).await?;
    inbox_exactly(&police, 0).await?;
    let row = alert_row(&system, &issued.id, "two escalations", |r| {
        r.escalations == 2
    })
    .await?;
    assert_eq!(row.not_acknowledged, ["transport-bsp"]);
    system.shutdown().await
}

#[tokio::test]
async fn an_escalation_waiting_in_the_outbox_is_raised_once_after_a_crash() -> Result<()> {
    let mut settings = config();
    settings.alerts.escalate_critical_secs = 1;
    settings.alerts.max_escalations = 1;
    let mut system = start_with(settings).await?;
    let raises = watch_raises(&system).await?;
    let police = agency(&system, "police").await?;
    let transport = agency(&system, "transport-bsp").await?;
    let issued = alert("alert-4", ThreatLevel::Critical, &["transport"], "national");
    let (_, partners) = issue_and_time(&police, &issued, vec![transport]).await?;
    let transport = partners
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("transport"));
    alert_row(&system, &issued.id, "the alert tracked", |_| true).await?;

    // The gateway is down when the escalation falls due: it waits in the
    // outbox (in the bucket), and the alerts service crashes.
    system.kill_gateway().await;
    eventually("the escalation in the outbox", WAIT, || async {
        Ok((outbox_len(&system).await? > 0).then_some(()))
    })
    .await?;
    system.kill_alerts().await;
    system.start_gateway().await?;
    system.start_alerts().await?;

    let expected_id = escalation_id(&issued.id, 1);
    let to_police = inbox_exactly(&police, 1).await?;
    assert_eq!(
        kinds(&to_police),
        [("alert_escalated".into(), expected_id.clone())]
    );
    assert_eq!(
        kinds(&inbox_exactly(&transport, 1).await?),
        [("alert_escalated".into(), expected_id.clone())]
    );
    alert_row(&system, &issued.id, "the escalation's echo", |r| {
        r.escalations == 1
    })
    .await?;
    alerts_caught_up(&system).await?;
    eventually("the outbox emptied", WAIT, || async {
        Ok((outbox_len(&system).await? == 0).then_some(()))
    })
    .await?;
    // Raised while the gateway was down (no one answered), then once more.
    let accepted: Vec<String> = raised(&raises);
    assert!(accepted.iter().all(|id| *id == expected_id), "{accepted:?}");
    inbox_exactly(&police, 0).await?;
    system.shutdown().await
}
