//! `liaison alerts` as an operator and a business partner run it, against a
//! real system: the police send an alert (`deploy/examples/alert.json`), the
//! operator sees it outstanding, a partner acknowledges it with `liaison
//! alerts ack`, and the operator sees who still has not; an agency that never
//! received the alert cannot acknowledge it.

use crate::{liaison, root, stdout};
use liaison_runtime::config::Config;
use liaison_system::system::{System, UpOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `liaison ARGS` until its output satisfies `done`, for up to 30 s.
async fn until(session: &Path, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        ticks.tick().await;
        let out = liaison(session, args);
        let text = stdout(&out);
        if out.status.success() && done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "liaison {args:?} never showed it: {out:?}"
        );
    }
}

#[tokio::test]
async fn alerts_lists_the_outstanding_and_ack_acknowledges_as_the_partner() -> anyhow::Result<()> {
    let mut config = Config::default();
    config.paths.registry = root().join("deploy/agencies/registry.toml");
    config.paths.policies = root().join("deploy/policies");
    config.audit.checkpoint_key = root().join("deploy/audit/dev-checkpoint-key.pem");
    config.data.kek_file = root().join("deploy/keys/dev-kek.toml");
    config.audit.auditors = root().join("deploy/audit/auditors.toml");
    let system = System::start(
        config,
        UpOptions {
            inspector: true,
            ..UpOptions::default()
        },
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;

    let sent = liaison(
        &session,
        &["send", "--agency", "police", "deploy/examples/alert.json"],
    );
    let text = stdout(&sent);
    assert!(sent.status.success(), "{sent:?}");
    for partner in ["council", "retail-bsp", "transport-bsp"] {
        assert!(text.contains(partner), "{text}");
    }
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("envelope ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no envelope id in {text}"))
        .to_owned();

    let listed = until(&session, &["alerts"], |out| out.contains(&id)).await;
    for expected in [
        "police",
        "SEVERE",
        "retail,transport / london",
        "0/2",
        "retail-bsp,transport-bsp",
        "no",
    ] {
        assert!(listed.contains(expected), "{expected:?} not in {listed}");
    }
    assert!(
        listed.contains("1 outstanding alert(s) of 1 tracked"),
        "{listed}"
    );

    let acked = liaison(&session, &["alerts", "ack", &id, "--agency", "retail-bsp"]);
    assert!(acked.status.success(), "{acked:?}");
    assert!(
        stdout(&acked).contains("ACCEPTED: delivered to police under ISA-PSA-02/acknowledge"),
        "{}",
        stdout(&acked)
    );
    let json = until(&session, &["alerts", "--json"], |out| {
        out.contains("\"acknowledged\":1")
    })
    .await;
    let row: serde_json::Value = serde_json::from_str(json.trim())?;
    assert_eq!(row["id"], id.as_str());
    assert_eq!(
        row["not_acknowledged"],
        serde_json::json!(["transport-bsp"])
    );
    assert_eq!(row["escalations"], 0);

    let refused = liaison(&session, &["alerts", "ack", &id, "--agency", "school-a"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        stdout(&refused).contains("REFUSED (policy_denied)"),
        "{}",
        stdout(&refused)
    );
    system.shutdown().await
}
