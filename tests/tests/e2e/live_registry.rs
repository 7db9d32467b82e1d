//! The registry as live state (docs/decisions/0020-live-membership.md):
//! named operators add, update and remove agencies and add or retire their
//! keys while the system runs, through the gateways; each change is in
//! force at every replica — NATS logins (the auth callout), both doors,
//! routing — within a second, nothing restarted, and is one ledger record.
//! Bad requests are refused with what was wrong, and recorded.

use crate::membership::{DUTY_KEY, change, operator_token};
use crate::replicas::second_gateway;
use liaison_client::{AgencyClient, NatsAuth};
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{Decision, Operation};
use liaison_runtime::users;
use liaison_system::keys;
use liaison_tests::{agency, assert_refused, inbox_exactly, ledger_all, referral, start};
use std::time::{Duration, Instant};

/// A new agency's keys: signing key (PEM) and NKey seed, with its entry.
struct NewAgency {
    id: String,
    pem: String,
    seed: String,
    entry: String,
}

fn new_agency(id: &str, kind: &str, clearance: &str) -> anyhow::Result<NewAgency> {
    let (pem, key_entry) = keys::generate(liaison_core::tokens::KeyAlg::EdDSA)?;
    let (seed, nkey) = keys::generate_nkey()?;
    let entry = format!(
        "[[agency]]\nid = \"{id}\"\nname = \"{id} (added live)\"\nkind = \"{kind}\"\nclearance = \"{clearance}\"\nareas = [\"exampleshire\"]\nregion = \"london\"\ncaveats = [\"UK-EYES-ONLY\"]\nnats_keys = [\"{nkey}\"]\n[[agency.keys]]\n{key_entry}\n"
    );
    Ok(NewAgency {
        id: id.to_owned(),
        pem,
        seed,
        entry,
    })
}

async fn connect(
    system: &liaison_system::system::System,
    agency: &NewAgency,
) -> anyhow::Result<AgencyClient> {
    Ok(AgencyClient::connect(
        &system.url(),
        &NatsAuth::NKeySeed(agency.seed.clone().into()),
        AgencyId::parse(&agency.id)?,
        &agency.pem,
        &system.config.gateway.audience,
    )
    .await?
    .with_verdict_timeout(Duration::from_secs(3)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_added_live_logs_in_shares_and_receives_at_once_then_is_removed()
-> anyhow::Result<()> {
    let mut config = liaison_tests::config();
    // Removed agencies' copies looked for every second (not ten minutes).
    config.gateway.departures_sweep_secs = 1;
    let system = liaison_tests::start_with(config).await?;
    // Two gateway replicas: the change is made at one, and every login,
    // envelope and read may reach either.
    let (stop, running) = second_gateway(&system, system.config.clone()).await?;
    let token = operator_token("duty-officer", DUTY_KEY)?;
    let school = agency(&system, "school-a").await?;
    let council2 = new_agency("council-2", "council", "OFFICIAL-SENSITIVE")?;

    // Added: it logs in and receives the next referral in its area.
    let asked = Instant::now();
    let answer = change(
        &system,
        Some(&token),
        serde_json::json!({"action": "add", "agency": "council-2", "reason": "new safeguarding hub", "entry": council2.entry}),
    )
    .await?;
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(
        answer["changed"]
            .as_str()
            .is_some_and(|c| c.starts_with("added council-2 (council")),
        "{answer}"
    );
    let client = liaison_tests::eventually("council-2's login", Duration::from_secs(2), || async {
        Ok(connect(&system, &council2).await.ok())
    })
    .await?;
    let receipt = school
        .submit(&referral("school-a", "to-the-new-hub"))
        .await?;
    assert!(
        receipt.recipients.iter().any(|r| r == "council-2"),
        "{receipt:?}"
    );
    let delivered = inbox_exactly(&client, 1).await?;
    let took = asked.elapsed();
    assert_eq!(
        delivered[0].envelope.as_ref().map(|e| e.id.as_str()),
        Some("to-the-new-hub")
    );
    assert!(took < Duration::from_secs(2), "added to received: {took:?}");
    liaison_tests::fault::measured(
        "an agency added live",
        &format!("received its first copy {took:?} after the command"),
    );
    // Every login through either replica is let in (the queue group spreads them).
    for _ in 0..8 {
        connect(&system, &council2).await?;
    }

    // Updated: a lower clearance, in force at once at both replicas.
    let lowered = council2.entry.replace(
        "clearance = \"OFFICIAL-SENSITIVE\"",
        "clearance = \"OFFICIAL\"",
    );
    let answer = change(
        &system,
        Some(&token),
        serde_json::json!({"action": "update", "agency": "council-2", "reason": "clearance lapsed", "entry": lowered}),
    )
    .await?;
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(
        answer["changed"]
            .as_str()
            .is_some_and(|c| c.contains("clearance \"OfficialSensitive\" -> \"Official\"")),
        "{answer}"
    );

    // Removed: its connection closed, its login refused, nothing routed to it.
    let answer = change(
        &system,
        Some(&token),
        serde_json::json!({"action": "remove", "agency": "council-2", "reason": "hub merged"}),
    )
    .await?;
    assert_eq!(answer["ok"], true, "{answer}");
    let closed = liaison_tests::eventually(
        "council-2's connection closed",
        Duration::from_secs(1),
        || async {
            Ok(
                (client.nats().connection_state() != async_nats::connection::State::Connected)
                    .then_some(()),
            )
        },
    )
    .await;
    assert!(closed.is_ok(), "{closed:?}");
    let login = connect(&system, &council2).await;
    assert!(login.is_err(), "a removed agency logged in");
    let receipt = school
        .submit(&referral("school-a", "after-removal"))
        .await?;
    assert!(
        !receipt.recipients.iter().any(|r| r == "council-2"),
        "{receipt:?}"
    );

    // Its copies stay until DELIVERY's retention drops them (here: a purge
    // of its inbox, as the retention would); then that is recorded, once.
    let operator = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    operator
        .get_stream(subjects::DELIVERY_STREAM)
        .await?
        .purge()
        .filter("liaison.deliver.council-2.>")
        .await?;
    let dropped = liaison_tests::eventually(
        "the dropped copies recorded",
        Duration::from_secs(15),
        || async {
            system.wait_until_settled(Duration::from_secs(10)).await?;
            let (_, records) = ledger_all(&system).await?;
            Ok(records
                .into_iter()
                .find(|r| r.code == "removed_copies_dropped" && r.agency == "council-2"))
        },
    )
    .await?;
    assert!(
        dropped
            .reason
            .starts_with("1 copy held for council-2 when duty-officer removed it"),
        "{}",
        dropped.reason
    );

    // Each change is one ledger record, by the operator, with its reason.
    system.wait_until_settled(Duration::from_secs(30)).await?;
    let (_, records) = ledger_all(&system).await?;
    let changes: Vec<(&str, &str, &str)> = records
        .iter()
        .filter(|r| {
            r.operation == Operation::MembershipChange as i32
                && r.decision == Decision::Accepted as i32
                && r.agency == "council-2"
        })
        .map(|r| (r.code.as_str(), r.author.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        changes.iter().map(|c| c.0).collect::<Vec<_>>(),
        [
            "agency_added",
            "agency_updated",
            "agency_removed",
            "removed_copies_dropped"
        ],
        "{changes:?}"
    );
    assert!(changes[..3].iter().all(|c| c.1 == "duty-officer"));
    assert!(changes[1].2.contains("clearance lapsed"), "{changes:?}");
    assert!(
        changes[2]
            .2
            .contains("1 copy in its inbox, readable by no one"),
        "{changes:?}"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.code == "removed_copies_dropped")
            .count(),
        1,
        "recorded once, though two gateways sweep"
    );

    stop.cancel();
    running.await??;
    system.shutdown().await
}

#[tokio::test]
async fn keys_are_added_and_retired_live_and_bad_changes_are_refused_and_recorded()
-> anyhow::Result<()> {
    let system = start().await?;
    let token = operator_token("duty-officer", DUTY_KEY)?;
    let school = agency(&system, "school-a").await?;

    // A second key for the school, then the first retired: tokens signed
    // with the new one are accepted, with the old one refused.
    let (new_pem, key_entry) = keys::generate(liaison_core::tokens::KeyAlg::EdDSA)?;
    let answer = change(
        &system,
        Some(&token),
        serde_json::json!({"action": "add-key", "agency": "school-a", "reason": "key rotation", "entry": key_entry}),
    )
    .await?;
    assert_eq!(answer["ok"], true, "{answer}");
    let old_kid =
        liaison_core::tokens::Signer::from_pem(&liaison_tests::key_pem("school-a")?, None)
            .map_err(anyhow::Error::msg)?
            .kid()
            .to_owned();
    let answer = change(
        &system,
        Some(&token),
        serde_json::json!({"action": "retire-key", "agency": "school-a", "kid": old_kid, "reason": "rotation done"}),
    )
    .await?;
    assert_eq!(answer["ok"], true, "{answer}");
    let refused =
        liaison_tests::eventually("the old key refused", Duration::from_secs(1), || async {
            let verdict = school.send(&referral("school-a", "old-key")).await?;
            Ok((verdict.code == "invalid_token").then_some(verdict))
        })
        .await?;
    assert_refused(
        &refused,
        "invalid_token",
        "is not a registered key of \"school-a\"",
        "a retired key",
    );
    let rotated = AgencyClient::new(
        school.nats().clone(),
        AgencyId::parse("school-a")?,
        liaison_core::tokens::Signer::from_pem(&new_pem, None).map_err(anyhow::Error::msg)?,
        &system.config.gateway.audience,
    );
    let verdict = rotated.send(&referral("school-a", "new-key")).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");

    // Bad changes: each refused, saying what was wrong.
    let police_entry =
        std::fs::read_to_string(liaison_tests::repo_root().join("deploy/agencies/registry.toml"))?
            .split("\n[[agency]]\n")
            .find(|b| b.starts_with("id = \"police\""))
            .map(|b| format!("[[agency]]\n{b}"))
            .unwrap_or_default();
    let stolen_nkey = police_entry
        .lines()
        .find(|l| l.starts_with("nats_keys"))
        .unwrap_or_default()
        .to_owned();
    let thief = new_agency("school-z", "education", "OFFICIAL")?;
    let thief_entry = thief
        .entry
        .lines()
        .map(|l| {
            if l.starts_with("nats_keys") {
                stolen_nkey.as_str()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let school_key = operator_token("school-a", "deploy/agencies/dev-keys/school-a.pem")?;
    for (token, body, says) in [
        (
            Some(token.as_str()),
            serde_json::json!({"action": "add", "agency": "police", "reason": "x", "entry": police_entry}),
            "police is already registered",
        ),
        (
            Some(token.as_str()),
            serde_json::json!({"action": "add", "agency": "school-y", "reason": "x", "entry": "[[agency]]\nid = \"school-y\"\nname = 3\n"}),
            "name",
        ),
        (
            Some(token.as_str()),
            serde_json::json!({"action": "add", "agency": "school-z", "reason": "x", "entry": thief_entry}),
            "is already registered to police",
        ),
        (
            Some(token.as_str()),
            serde_json::json!({"action": "add-key", "agency": "school-a", "reason": "x", "entry": key_entry}),
            "registered twice",
        ),
        (
            Some(token.as_str()),
            serde_json::json!({"action": "update", "agency": "nobody", "reason": "x", "entry": police_entry}),
            "nobody is not a registered agency",
        ),
        (
            Some(token.as_str()),
            serde_json::json!({"action": "remove", "agency": "nobody", "reason": "x"}),
            "nobody is not a registered agency",
        ),
        (
            Some(school_key.as_str()),
            serde_json::json!({"action": "remove", "agency": "police", "reason": "x"}),
            "operator token refused",
        ),
    ] {
        let answer = change(&system, token, body.clone()).await?;
        assert_eq!(answer["ok"], false, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{says}: {error}");
    }
    // The police are still registered and unharmed: they log in.
    agency(&system, "police").await?;

    system.wait_until_settled(Duration::from_secs(30)).await?;
    let (_, records) = ledger_all(&system).await?;
    let of = |code: &str| records.iter().filter(|r| r.code == code).count();
    assert_eq!(of("key_added"), 1);
    assert_eq!(of("key_retired"), 1);
    assert_eq!(of("membership_refused"), 7);
    system.shutdown().await
}
