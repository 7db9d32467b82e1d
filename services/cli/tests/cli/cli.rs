//! The `liaison` command as a user runs it, against a real system: `up` starts
//! and stops cleanly on Ctrl-C; `send`, `inbox` and `audit verify` print what
//! they should and exit with the right code; `audit verify` finds a record
//! altered in the LEDGER stream by an insider and names it; `agencies
//! suspend|resume` change membership as a named operator, and say what was
//! wrong when they cannot.

use crate::{liaison, root, stdout};
use async_nats::jetstream;
use liaison_core::subjects;
use liaison_proto::v1::{AuditRecord, LedgerBlock};
use liaison_runtime::config::Config;
use liaison_runtime::provision::stream_configs;
use liaison_runtime::users;
use liaison_system::system::{System, UpOptions};
use prost::Message;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `liaison up`'s listeners on free ports, clear of the defaults that
/// `suggested::` runs `liaison up` with.
const FREE_LISTENERS: [&str; 14] = [
    "--https-listen",
    "127.0.0.1:0",
    "--gateway-telemetry",
    "127.0.0.1:0",
    "--audit-telemetry",
    "127.0.0.1:0",
    "--cases-telemetry",
    "127.0.0.1:0",
    "--linkage-telemetry",
    "127.0.0.1:0",
    "--alerts-telemetry",
    "127.0.0.1:0",
    "--console",
    "127.0.0.1:0",
];

/// `liaison send --agency school-a deploy/examples/referral.json`, which
/// must succeed; what it printed.
fn send_example_referral(session: &Path) -> std::process::Output {
    let sent = liaison(
        session,
        &[
            "send",
            "--agency",
            "school-a",
            "deploy/examples/referral.json",
        ],
    );
    assert!(sent.status.success(), "{sent:?}");
    sent
}

async fn system() -> anyhow::Result<System> {
    system_with_policies(&root().join("deploy/policies")).await
}

/// [`system`] deciding under the policies in `policies`.
async fn system_with_policies(policies: &Path) -> anyhow::Result<System> {
    let mut config = Config::default();
    config.paths.registry = root().join("deploy/agencies/registry.toml");
    config.paths.policies = policies.to_path_buf();
    config.audit.checkpoint_key = root().join("deploy/audit/dev-checkpoint-key.pem");
    config.data.kek_file = root().join("deploy/keys/dev-kek.toml");
    config.audit.auditors = root().join("deploy/audit/auditors.toml");
    config.paths.operators = root().join("deploy/operators/operators.toml");
    // Checkpoints only on request, so the test knows how many there are.
    config.audit.checkpoint_interval_secs = 3600;
    System::start(
        config,
        UpOptions {
            inspector: true,
            ..UpOptions::default()
        },
    )
    .await
}

#[tokio::test]
async fn status_prints_streams_consumers_and_services_and_fails_when_one_is_down()
-> anyhow::Result<()> {
    let mut config = Config::default();
    config.paths.registry = root().join("deploy/agencies/registry.toml");
    config.paths.policies = root().join("deploy/policies");
    config.audit.checkpoint_key = root().join("deploy/audit/dev-checkpoint-key.pem");
    config.data.kek_file = root().join("deploy/keys/dev-kek.toml");
    config.audit.auditors = root().join("deploy/audit/auditors.toml");
    let options = UpOptions {
        inspector: true,
        gateway_telemetry: Some("127.0.0.1:0".into()),
        audit_telemetry: Some("127.0.0.1:0".into()),
        ..UpOptions::default()
    };
    let mut system = System::start(config, options).await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;

    let status = liaison(&session, &["status"]);
    let out = stdout(&status);
    assert!(status.status.success(), "{status:?}");
    for expected in [
        "nats-server ",
        "Servers: ",
        "EVENTS",
        "DELIVERY",
        "DECISIONS",
        "LEDGER",
        "CHECKPOINTS",
        "gateway-router",
        "audit-ledger",
        "Inboxes:",
        "  police ",
        "Ledger: ",
        "gateway  ready",
        "audit    ready",
        "Registered services ($SRV.INFO):",
        "liaison-gateway ",
        "liaison-audit ",
        "liaison-cases ",
        "liaison-linkage ",
        "liaison-alerts ",
        "query (liaison.cases.query)",
        "status (liaison.status.gateway)",
        "All well.",
    ] {
        assert!(out.contains(expected), "{expected:?} not in {out}");
    }

    system.stop_gateway().await;
    let status = liaison(&session, &["status"]);
    let out = stdout(&status);
    assert_eq!(status.status.code(), Some(1), "{out}");
    assert!(out.contains("PROBLEM: gateway at 127.0.0.1:"), "{out}");
    assert!(
        out.contains("PROBLEM: liaison-gateway is not registered"),
        "{out}"
    );
    system.shutdown().await
}

const PURPOSE: &str = "log-review";

/// Runs `liaison audit ARGS --purpose PURPOSE` as the development auditor.
fn audit(session: &Path, args: &[&str]) -> Output {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--purpose", PURPOSE]);
    liaison(session, &all)
}

#[tokio::test]
async fn send_inbox_and_audit_verify_as_a_user_runs_them() -> anyhow::Result<()> {
    let mut system = system().await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;

    let sent = send_example_referral(&session);
    assert!(
        stdout(&sent).contains("ACCEPTED: delivered to council, police under ISA-EDU-01/send"),
        "{}",
        stdout(&sent)
    );

    let refused = liaison(
        &session,
        &[
            "send",
            "--agency",
            "school-a",
            "deploy/examples/refused-case-update.json",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains("REFUSED (policy_denied)"),
        "{}",
        stdout(&refused)
    );

    let bad = liaison(
        &session,
        &[
            "send",
            "--agency",
            "School A",
            "deploy/examples/referral.json",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid agency id"),
        "{bad:?}"
    );

    let inbox = liaison(&session, &["inbox", "--agency", "police", "--json"]);
    assert!(inbox.status.success(), "{inbox:?}");
    let lines: Vec<serde_json::Value> = stdout(&inbox)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["envelope"]["referral"]["concern"].is_string());
    assert!(
        lines[0]["envelope"]["referral"]
            .get("healthNotes")
            .is_none()
    );
    assert_eq!(
        lines[0]["withheldLabels"],
        serde_json::json!(["DATA_LABEL_HEALTH", "DATA_LABEL_INTELLIGENCE"])
    );
    // Acknowledged: a second read finds nothing.
    let again = liaison(&session, &["inbox", "--agency", "police"]);
    assert!(
        stdout(&again).contains("0 deliveries for police"),
        "{}",
        stdout(&again)
    );

    // The policy set the gateway started with, a collection, two
    // disclosures, one refusal; verifying is itself a consultation, recorded
    // in the ledger before the ledger is read.
    system.wait_until_settled(Duration::from_secs(30)).await?;
    let verified = audit(&session, &["verify"]);
    assert!(verified.status.success(), "{verified:?}");
    assert!(
        stdout(&verified).contains("intact: 6 records"),
        "{}",
        stdout(&verified)
    );
    let unstated = liaison(&session, &["audit", "verify"]);
    assert!(
        String::from_utf8_lossy(&unstated.stderr).contains("--purpose"),
        "{unstated:?}"
    );
    let impostor = audit(
        &session,
        &[
            "verify",
            "--auditor-key",
            "deploy/agencies/dev-keys/police.pem",
        ],
    );
    assert!(!impostor.status.success());
    assert!(
        String::from_utf8_lossy(&impostor.stderr).contains("consultation refused (invalid_token)"),
        "{impostor:?}"
    );
    // A purpose is one of the registry's, never free text.
    let free_text = liaison(&session, &["audit", "verify", "--purpose", "just curious"]);
    assert!(!free_text.status.success());
    assert!(
        String::from_utf8_lossy(&free_text.stderr)
            .contains("consultation refused (invalid_purpose)")
            && String::from_utf8_lossy(&free_text.stderr)
                .contains("integrity-check, legal-proceedings, log-review"),
        "{free_text:?}"
    );

    // A signed checkpoint on demand, in the C2SP signed-note format ...
    system.wait_until_settled(Duration::from_secs(30)).await?;
    let checkpoint = liaison(&session, &["audit", "checkpoint"]);
    assert!(checkpoint.status.success(), "{checkpoint:?}");
    let note = stdout(&checkpoint);
    let size: u64 = note
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_default();
    assert!(
        note.starts_with("liaison.example/ledger\n") && size >= 6,
        "{note}"
    );
    assert!(
        note.contains("\n\n\u{2014} liaison.example/ledger "),
        "{note}"
    );
    let note_file = dir.path().join("checkpoint.note");
    std::fs::write(&note_file, &note)?;
    let verified = audit(&session, &["verify"]);
    assert!(
        stdout(&verified).contains(&format!(
            "matching 1 signed checkpoints up to {size} records"
        )),
        "{}",
        stdout(&verified)
    );
    // ... an inclusion proof for one record against it ...
    let proof = audit(&session, &["prove", "2"]);
    assert!(proof.status.success(), "{proof:?}");
    let proof: serde_json::Value = serde_json::from_str(&stdout(&proof))?;
    assert_eq!(
        (proof["index"].as_u64(), proof["tree_size"].as_u64()),
        (Some(2), Some(size))
    );
    assert!(proof["proof"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(!audit(&session, &["prove", "999"]).status.success());

    // Replay, filtered, for people and for tools.
    let csv = audit(
        &session,
        &["replay", "--agency", "police", "--format", "csv"],
    );
    assert!(csv.status.success(), "{csv:?}");
    let rows: Vec<String> = stdout(&csv).lines().map(String::from).collect();
    assert_eq!(
        rows.len(),
        3,
        "header, the collection and the police disclosure: {rows:?}"
    );
    assert!(rows[0].starts_with("index,time,operation,decision,agency"));
    assert!(
        rows[1].contains(",collection,accepted,school-a,") && rows[1].contains("council;police")
    );
    assert!(rows[2].contains(",disclosure,delivered,school-a,") && rows[2].contains(",police,"));
    let ndjson = audit(
        &session,
        &["replay", "--operation", "disclosure", "--format", "ndjson"],
    );
    let lines: Vec<serde_json::Value> = stdout(&ndjson)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_default())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| l["operation"] == "OPERATION_DISCLOSURE" && l["index"].is_u64())
    );
    // Every consultation so far is on the record, the refused one included.
    let consultations = audit(
        &session,
        &["replay", "--operation", "consultation", "--format", "csv"],
    );
    let rows: Vec<String> = stdout(&consultations)
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    assert!(
        rows.iter()
            .filter(|r| r.contains(",consultation,accepted,ig-officer,"))
            .count()
            >= 5,
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains(",consultation,refused (invalid_token),ig-officer,")),
        "{rows:?}"
    );
    // Every consultation is on the record with its purpose; the refused
    // free-text one with what was asked.
    assert!(
        rows.iter().all(|r| r.contains(PURPOSE)
            || r.contains("refused (invalid_purpose),ig-officer,,,,,just curious")),
        "{rows:?}"
    );
    let refused = audit(&session, &["replay", "--operation", "refusal"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unknown operation"),
        "{refused:?}"
    );
    let bad_time = audit(&session, &["replay", "--since", "yesterday"]);
    assert!(
        String::from_utf8_lossy(&bad_time.stderr).contains("RFC 3339"),
        "{bad_time:?}"
    );

    // ... and, after more traffic, a proof that the ledger only grew since.
    let again = liaison(
        &session,
        &[
            "send",
            "--agency",
            "school-a",
            "deploy/examples/referral.json",
        ],
    );
    assert!(again.status.success());
    system.wait_until_settled(Duration::from_secs(30)).await?;
    assert!(liaison(&session, &["audit", "checkpoint"]).status.success());
    let consistency = audit(
        &session,
        &["consistency", note_file.to_str().unwrap_or_default()],
    );
    assert!(consistency.status.success(), "{consistency:?}");
    let consistency: serde_json::Value = serde_json::from_str(&stdout(&consistency))?;
    assert_eq!(consistency["old_size"].as_u64(), Some(size));
    assert!(
        consistency["new_size"]
            .as_u64()
            .is_some_and(|n| n > size + 3)
    );

    // The whole ledger exported, and verified offline (no NATS involved).
    let bundle = dir.path().join("ledger.json");
    let exported = audit(&session, &["export", bundle.to_str().unwrap_or_default()]);
    assert!(exported.status.success(), "{exported:?}");
    assert!(
        stdout(&exported).contains(" records and 2 checkpoints"),
        "{}",
        stdout(&exported)
    );
    let offline = Command::new(env!("CARGO_BIN_EXE_liaison"))
        .current_dir(root())
        .args(["audit", "verify", "--bundle"])
        .arg(&bundle)
        .output()?;
    assert!(offline.status.success(), "{offline:?}");
    assert!(
        stdout(&offline).contains("Ledger intact: "),
        "{}",
        stdout(&offline)
    );

    // An insider with operator rights rewrites the ledger, changing who a
    // record says the referral was disclosed to.
    system.stop_audit().await;
    let js = jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let ledger = js.get_stream(subjects::LEDGER_STREAM).await?;
    let mut entries = Vec::new();
    let last = ledger.get_info().await?.state.last_sequence;
    for seq in 1..=last {
        entries.extend(LedgerBlock::decode(ledger.direct_get(seq).await?.payload)?.entries);
    }
    let mut record = AuditRecord::decode(entries[1].record.as_ref())?;
    record.recipients = vec!["retail-bsp".into()];
    entries[1].record = record.encode_to_vec().into();
    js.delete_stream(subjects::LEDGER_STREAM).await?;
    let config = stream_configs(&system.config.streams)
        .into_iter()
        .find(|c| c.name == subjects::LEDGER_STREAM)
        .ok_or_else(|| anyhow::anyhow!("LEDGER config"))?;
    js.create_stream(config).await?;
    // Each entry as a block of its own: the ledger is still well formed.
    for entry in entries {
        let block = LedgerBlock {
            entries: vec![entry],
        };
        js.publish(subjects::LEDGER_ENTRIES, block.encode_to_vec().into())
            .await?
            .await?;
    }

    // With the audit service stopped, an auditor cannot read the ledger (no
    // consultation can be recorded), and is told how an operator can.
    let unconsulted = audit(&session, &["verify"]);
    assert!(!unconsulted.status.success());
    assert!(
        String::from_utf8_lossy(&unconsulted.stderr).contains("liaison audit verify --unrecorded"),
        "{unconsulted:?}"
    );
    // The operator verifies without a consultation, and is told it is unrecorded.
    let tampered = audit(&session, &["verify", "--unrecorded"]);
    assert!(
        String::from_utf8_lossy(&tampered.stderr).contains("not recorded in the ledger"),
        "{tampered:?}"
    );
    assert_eq!(tampered.status.code(), Some(2), "{}", stdout(&tampered));
    assert!(
        stdout(&tampered).contains("record 1 (stream message 2) was altered"),
        "{}",
        stdout(&tampered)
    );
    // The audit service will not extend a broken ledger.
    let refused = system
        .start_audit()
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(
        refused.contains("broken") && refused.contains("record 1"),
        "{refused}"
    );
    system.shutdown().await
}

#[test]
fn up_starts_everything_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let session = dir.path().join("session.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_liaison"))
        .current_dir(root())
        .args(["up", "--port", "0"])
        .args(FREE_LISTENERS)
        .arg("--session")
        .arg(&session)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("stdout"))).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        seen.push(line.clone());
        if line.contains("Liaison is ready") {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("NATS      nats://127.0.0.1:")),
        "{seen:?}"
    );
    assert!(seen.last().is_some_and(|l| l.contains("ready")), "{seen:?}");
    assert!(session.is_file(), "up writes the session file");

    // With the system up, a send works through the real binary.
    let sent = liaison(
        &session,
        &[
            "send",
            "--agency",
            "school-a",
            "deploy/examples/referral.json",
        ],
    );
    assert!(stdout(&sent).contains("ACCEPTED"), "{sent:?}");

    Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    let rest: Vec<String> = lines.map(|l| l.unwrap_or_default()).collect();
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{status:?} {rest:?}");
    assert!(rest.iter().any(|l| l == "Stopped."), "{rest:?}");
    assert!(!session.exists(), "the session file is removed on exit");
}

#[test]
fn bad_configuration_and_an_old_nats_server_are_named_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let session = dir.path().join("session.json");
    let up = |envs: &[(&str, &str)], config: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_liaison"));
        command
            .current_dir(root())
            .args(["up", "--port", "0"])
            .args(FREE_LISTENERS)
            .arg("--session")
            .arg(&session);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        for (k, v) in envs {
            command.env(k, v);
        }
        let out = command.output().unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let err = up(&[("LIAISON_GATEWAY_MAX_ENVELOPE_BYTES", "big")], None);
    assert!(err.contains("LIAISON_GATEWAY_MAX_ENVELOPE_BYTES"), "{err}");

    let file = dir.path().join("liaison.toml");
    std::fs::write(&file, "[gateway]\nmax_envelope = 5\n").unwrap_or_else(|e| panic!("{e}"));
    let err = up(&[], Some(&file));
    assert!(
        err.contains("max_envelope") && err.contains("liaison.toml"),
        "{err}"
    );

    let old = dir.path().join("nats-server");
    std::fs::write(&old, "#!/bin/sh\necho 'nats-server: v2.9.20'\n")
        .unwrap_or_else(|e| panic!("{e}"));
    Command::new("chmod")
        .arg("+x")
        .arg(&old)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = up(
        &[("LIAISON_NATS_SERVER", old.to_str().unwrap_or_default())],
        None,
    );
    assert!(err.contains("v2.9.20") && err.contains("2.12.6"), "{err}");
    assert!(err.contains("bash deploy/install-nats-server.sh"), "{err}");
    assert!(!session.exists());
}

#[test]
fn policy_check_explain_and_test_answer_without_a_running_system() {
    let none = Path::new("/nonexistent/session.json");
    let checked = liaison(none, &["policy", "check"]);
    assert!(checked.status.success(), "{checked:?}");
    assert!(
        stdout(&checked).contains("ISA-EDU-01/send"),
        "{}",
        stdout(&checked)
    );

    let explained = liaison(
        none,
        &[
            "policy",
            "explain",
            "deploy/examples/referral.json",
            "--sender",
            "school-a",
            "--recipient",
            "police",
        ],
    );
    assert!(explained.status.success(), "{explained:?}");
    let text = stdout(&explained);
    assert!(text.contains("permitted by ISA-EDU-01/receive"), "{text}");
    assert!(
        text.contains("Withheld from police: health, social-care"),
        "{text}"
    );
    let refused = liaison(
        none,
        &[
            "policy",
            "explain",
            "deploy/examples/refused-case-update.json",
            "--sender",
            "school-a",
            "--recipient",
            "police",
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(stdout(&refused).contains("no clause permits it"));

    let tested = liaison(none, &["policy", "test"]);
    assert!(tested.status.success(), "{tested:?}");
    assert!(
        stdout(&tested).contains(", 0 failed"),
        "{}",
        stdout(&tested)
    );

    // A failing case makes `policy test` fail, naming the case and the problem.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("wrong.toml"),
        "[[case]]\nname = \"schools send alerts\"\nsender = \"school-a\"\nkind = \"alert\"\n\
         purpose = \"protective-security\"\nlegal_basis = \"DPA-2018-s35\"\nsend = \"allow\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let failing = liaison(none, &["policy", "test", &dir.path().display().to_string()]);
    assert_eq!(failing.status.code(), Some(1), "{failing:?}");
    assert!(stdout(&failing).contains("FAIL  wrong.toml: schools send alerts"));
    assert!(stdout(&failing).contains("expected send allowed"));

    let broken = liaison(none, &["policy", "--policies", "/nonexistent", "check"]);
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stderr).contains("/nonexistent"));
}

/// A copy of the development policies with `annotations` placed before the
/// clause `clause` of isa.cedar.
fn dated_policies(dir: &Path, clause: &str, annotations: &str) {
    let from = root().join("deploy/policies");
    for entry in std::fs::read_dir(&from).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_file() {
            let name = path.file_name().unwrap_or_default();
            let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let id = format!("@id(\"{clause}\")");
            if text.contains(&id) {
                text = text.replacen(&id, &format!("{annotations}\n{id}"), 1);
            }
            std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn policy_check_warns_of_a_clause_expiring_soon_and_explain_names_a_lapsed_one() {
    let none = Path::new("/nonexistent/session.json");
    let day = |offset: i64| {
        let today = liaison_gateway::policy::today() as i64;
        liaison_gateway::policy::format_day((today + offset) as u64)
    };
    let soon = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    dated_policies(
        soon.path(),
        "ISA-EDU-01/send",
        &format!("@expires(\"{}\")\n@review(\"{}\")", day(10), day(5)),
    );
    let checked = liaison(
        none,
        &[
            "policy",
            "--policies",
            &soon.path().display().to_string(),
            "check",
        ],
    );
    assert!(checked.status.success(), "{checked:?}");
    let text = stdout(&checked);
    assert!(
        text.contains(&format!(
            "ISA-EDU-01/send  (kept 6y, expires {}, review {})",
            day(10),
            day(5)
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "WARNING: ISA-EDU-01/send expires on {} (10 days)",
            day(10)
        )),
        "{text}"
    );
    assert!(
        text.contains("WARNING: ISA-EDU-01/send is due for review"),
        "{text}"
    );

    let lapsed = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    dated_policies(lapsed.path(), "ISA-EDU-01/send", "@expires(\"2020-01-31\")");
    let policies = lapsed.path().display().to_string();
    let checked = liaison(none, &["policy", "--policies", &policies, "check"]);
    assert!(
        stdout(&checked).contains("WARNING: ISA-EDU-01/send LAPSED on 2020-01-31"),
        "{}",
        stdout(&checked)
    );
    let explained = liaison(
        none,
        &[
            "policy",
            "--policies",
            &policies,
            "explain",
            "deploy/examples/referral.json",
            "--sender",
            "school-a",
            "--recipient",
            "police",
        ],
    );
    let text = stdout(&explained);
    assert!(
        text.contains("ISA-EDU-01/send (lapsed: expired 2020-01-31)"),
        "{text}"
    );

    let bad = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    dated_policies(bad.path(), "ISA-EDU-01/send", "@expires(\"31/01/2020\")");
    let refused = liaison(
        none,
        &[
            "policy",
            "--policies",
            &bad.path().display().to_string(),
            "check",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("clause ISA-EDU-01/send: @expires(\"31/01/2020\") is not a date"),
        "{refused:?}"
    );
}

/// A clause past its expiry date permits nothing at the gateway: the
/// referral it alone permitted is refused, naming the lapsed clause, and
/// the refusal is recorded with it.
#[tokio::test]
async fn a_lapsed_clause_permits_nothing_and_the_refusal_names_it() -> anyhow::Result<()> {
    let policies = tempfile::tempdir()?;
    dated_policies(
        policies.path(),
        "ISA-EDU-01/send",
        "@expires(\"2020-01-31\")",
    );
    let system = system_with_policies(policies.path()).await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;
    let refused = liaison(
        &session,
        &[
            "send",
            "--agency",
            "school-a",
            "deploy/examples/referral.json",
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let text = stdout(&refused);
    assert!(
        text.contains("REFUSED (policy_denied)")
            && text.contains("has lapsed: ISA-EDU-01/send (lapsed: expired 2020-01-31)"),
        "{text}"
    );
    let js = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let verifier = liaison_audit::signer(&system.config)?.verifier();
    // The ledger writer chains the refusal's record soon after the verdict.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        ticks.tick().await;
        let mut recorded = Vec::new();
        liaison_audit::verify::verify(&js, &verifier, |_, r| {
            if r.code == "policy_denied" {
                recorded.push(r.reason.clone());
            }
        })
        .await?;
        if recorded
            .iter()
            .any(|r| r.contains("ISA-EDU-01/send (lapsed"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lapsed clause's refusal is not on the ledger: {recorded:?}"
        );
    }
    system.shutdown().await
}

/// `liaison subject report`: every share about one subject token, from the
/// ledger, as text, JSON and HTML; a consultation recorded with the purpose
/// `subject-rights`; a malformed token refused before anything is read.
#[tokio::test]
async fn a_subject_report_lists_every_share_about_the_token() -> anyhow::Result<()> {
    const TOKEN: &str = "st1:SQHU-Cvi3OzFuZYjI0hw-tWBeuTTzQ-1elxR4WFxCqo";
    let system = system().await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;
    let _ = send_example_referral(&session);
    // The copies' disclosure records are chained soon after the verdict.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(100));
    let report = loop {
        ticks.tick().await;
        let json = liaison(
            &session,
            &["subject", "report", "--token", TOKEN, "--format", "json"],
        );
        assert!(json.status.success(), "{json:?}");
        let report: serde_json::Value = serde_json::from_str(&stdout(&json))?;
        let disclosed = report["shares"][0]["disclosures"]
            .as_array()
            .map_or(0, Vec::len);
        if disclosed == 2 {
            break report;
        }
        assert!(std::time::Instant::now() < deadline, "{report}");
    };
    let share = &report["shares"][0];
    assert_eq!(share["sender"], "school-a");
    assert_eq!(share["kind"], "referral");
    assert_eq!(share["clauses"][0], "ISA-EDU-01/send");
    let mut to: Vec<&str> = share["disclosures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["recipient"].as_str())
        .collect();
    to.sort_unstable();
    assert_eq!(to, ["council", "police"]);
    // The police did not see the health notes (ISA-EDU-01/police-sees).
    let police = share["disclosures"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["recipient"] == "police")
        .ok_or_else(|| anyhow::anyhow!("no police copy"))?;
    assert!(
        police["withheld"].to_string().contains("health"),
        "{police}"
    );

    let text = liaison(&session, &["subject", "report", "--token", TOKEN]);
    let text = stdout(&text);
    assert!(
        text.contains(&format!("Subject token {TOKEN}: 1 share(s)"))
            && text.contains("to police at"),
        "{text}"
    );
    let html = liaison(
        &session,
        &["subject", "report", "--token", TOKEN, "--format", "html"],
    );
    assert!(stdout(&html).starts_with("<!doctype html>"), "{html:?}");

    let bad = liaison(&session, &["subject", "report", "--token", "a b"]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is not a subject token"),
        "{bad:?}"
    );

    // Each report is a consultation on the ledger, for subject-rights.
    let replayed = audit(
        &session,
        &[
            "replay",
            "--operation",
            "consultation",
            "--format",
            "ndjson",
        ],
    );
    let consultations = stdout(&replayed);
    assert!(
        consultations.contains("subject report --token st1:")
            && consultations.contains("\"purpose\":\"subject-rights\""),
        "{consultations}"
    );
    system.shutdown().await
}

/// `liaison subject restrict`, `unrestrict` and `erase`, as the README
/// shows them, through the binary: a restricted subject's referral is
/// refused naming the restriction, accepted once it is lifted; erasure
/// tells both earlier recipients, and the report lists every request.
#[tokio::test]
async fn subject_restrict_unrestrict_and_erase_work_as_the_readme_shows() -> anyhow::Result<()> {
    const TOKEN: &str = "st1:SQHU-Cvi3OzFuZYjI0hw-tWBeuTTzQ-1elxR4WFxCqo";
    let system = system().await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;
    let send = || {
        liaison(
            &session,
            &[
                "send",
                "--agency",
                "school-a",
                "deploy/examples/referral.json",
            ],
        )
    };
    let by = |action: &str, reason: &str| {
        liaison(
            &session,
            &[
                "subject",
                action,
                "--token",
                TOKEN,
                "--reason",
                reason,
                "--operator",
                "duty-officer",
            ],
        )
    };
    let sent = send();
    assert!(sent.status.success(), "{sent:?}");

    let restricted = by("restrict", "held as evidence");
    assert!(restricted.status.success(), "{restricted:?}");
    assert!(
        stdout(&restricted).contains("restricted: no further shares; recorded in the ledger"),
        "{restricted:?}"
    );
    let refused = send();
    let out = format!(
        "{}{}",
        stdout(&refused),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        out.contains("policy_denied")
            && out.contains("restricted (DPA 2018 s.47(2)) by duty-officer"),
        "{out}"
    );
    let lifted = by("unrestrict", "proceedings ended");
    assert!(lifted.status.success(), "{lifted:?}");
    let again = send();
    assert!(again.status.success(), "{again:?}");

    // Erasure waits for nothing: the shares are read from the ledger
    // (chained soon after each verdict), their recipients from receipts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        ticks.tick().await;
        let json = liaison(
            &session,
            &["subject", "report", "--token", TOKEN, "--format", "json"],
        );
        let report: serde_json::Value = serde_json::from_str(&stdout(&json))?;
        if report["shares"].as_array().map_or(0, Vec::len) == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{report}");
    }
    let erased = by("erase", "erasure request upheld");
    assert!(erased.status.success(), "{erased:?}");
    assert!(
        stdout(&erased).contains(
            "erased: the subject's data key is destroyed; told council, police; recorded in the ledger"
        ),
        "{erased:?}"
    );
    let text = stdout(&liaison(&session, &["subject", "report", "--token", TOKEN]));
    for line in [
        "subject restricted by duty-officer",
        "subject unrestricted by duty-officer",
        "subject erased by duty-officer",
        "erasure notice by duty-officer",
        "told council (DPA 2018 s.48)",
        "told police (DPA 2018 s.48)",
    ] {
        assert!(text.contains(line), "{line:?} is not in:\n{text}");
    }
    system.shutdown().await
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly_as_sigpipe_would() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_liaison"))
        .current_dir(root())
        .args(["policy", "check"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // The reader goes away before the command writes (`liaison … | head -0`).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn agencies_suspend_and_resume_as_a_named_operator() -> anyhow::Result<()> {
    let system = system().await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;
    let run = |args: &[&str]| liaison(&session, args);
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    let suspended = run(&[
        "agencies",
        "suspend",
        "school-b",
        "--reason",
        "password reported shared",
        "--operator",
        "duty-officer",
    ]);
    assert!(suspended.status.success(), "{}", text(&suspended));
    assert!(
        stdout(&suspended).contains("school-b suspended by duty-officer"),
        "{}",
        text(&suspended)
    );
    let send = run(&[
        "send",
        "--agency",
        "school-b",
        "deploy/examples/referral.json",
    ]);
    // It cannot even log in to NATS now.
    assert!(!send.status.success());
    assert!(
        text(&send).contains("did not let this NKey in")
            && text(&send).contains("school-b neither suspended nor removed"),
        "{}",
        text(&send)
    );

    for (args, says) in [
        (
            vec![
                "agencies",
                "suspend",
                "nobody",
                "--reason",
                "x",
                "--operator",
                "duty-officer",
            ],
            "not a registered agency",
        ),
        (
            vec![
                "agencies",
                "suspend",
                "council",
                "--reason",
                "x",
                "--operator",
                "someone-else",
            ],
            "someone-else.pem",
        ),
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).contains(says), "{says}: {}", text(&out));
    }

    let resumed = run(&[
        "agencies",
        "resume",
        "school-b",
        "--reason",
        "password changed",
        "--operator",
        "duty-officer",
    ]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    let send = run(&[
        "send",
        "--agency",
        "school-b",
        "deploy/examples/referral.json",
    ]);
    // Logged in again, and its envelope decided by the policy, not refused
    // for suspension.
    assert!(
        text(&send).contains("from school-b") && !text(&send).contains("agency_suspended"),
        "{}",
        text(&send)
    );
    system.shutdown().await
}

#[tokio::test]
async fn agencies_are_listed_shown_added_and_imported_as_a_named_operator() -> anyhow::Result<()> {
    let system = system().await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;
    let run = |args: &[&str]| liaison(&session, args);
    let said = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let by = ["--reason", "new academy", "--operator", "duty-officer"];

    let list = run(&["agencies", "list"]);
    assert!(list.status.success(), "{}", said(&list));
    assert!(
        stdout(&list).contains("| police | police | Secret | exampleshire | 2 | 1 | active |")
            && stdout(&list).contains("11 agencies in the live registry"),
        "{}",
        said(&list)
    );
    let json = run(&["agencies", "list", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&json))?;
    assert_eq!(rows.len(), 11);
    let shown = run(&["agencies", "show", "police"]);
    assert!(
        stdout(&shown).contains("id = \"police\"") && stdout(&shown).contains("# status: active"),
        "{}",
        said(&shown)
    );

    // Added from one [[agency]] block, then shown from the live registry.
    let (_, key_entry) = liaison_system::keys::generate(liaison_core::tokens::KeyAlg::EdDSA)?;
    let (_, nkey) = liaison_system::keys::generate_nkey()?;
    let entry = dir.path().join("school-c.toml");
    std::fs::write(
        &entry,
        format!(
            "[[agency]]\nid = \"school-c\"\nname = \"Northgate Academy\"\nkind = \"education\"\nclearance = \"OFFICIAL-SENSITIVE\"\nareas = [\"exampleshire\"]\nnats_keys = [\"{nkey}\"]\n[[agency.keys]]\n{key_entry}\n"
        ),
    )?;
    let entry = entry.display().to_string();
    let added = run(&[&["agencies", "add", "--file", &entry][..], &by[..]].concat());
    assert!(
        added.status.success() && stdout(&added).contains("added school-c (education"),
        "{}",
        said(&added)
    );
    let again = run(&[&["agencies", "add", "--file", &entry][..], &by[..]].concat());
    assert!(
        !again.status.success() && said(&again).contains("school-c is already registered"),
        "{}",
        said(&again)
    );
    let shown = run(&["agencies", "show", "school-c"]);
    assert!(
        stdout(&shown).contains("name = \"Northgate Academy\""),
        "{}",
        said(&shown)
    );

    // Imported back to the file: the difference is shown, and applied with --yes.
    let file = root().join("deploy/agencies/registry.toml");
    let file = file.display().to_string();
    let dry = run(&[&["agencies", "import", &file][..], &by[..]].concat());
    assert!(
        dry.status.success()
            && stdout(&dry).contains("remove removed school-c")
            && stdout(&dry).contains("0 to add, 0 to update, 1 to remove, 11 unchanged")
            && stdout(&dry).contains("run again with --yes"),
        "{}",
        said(&dry)
    );
    let applied = run(&[&["agencies", "import", &file, "--yes"][..], &by[..]].concat());
    assert!(
        applied.status.success() && stdout(&applied).contains("1 of 1 changes applied"),
        "{}",
        said(&applied)
    );
    let gone = run(&["agencies", "show", "school-c"]);
    assert!(
        !gone.status.success() && said(&gone).contains("school-c is not in the live registry"),
        "{}",
        said(&gone)
    );
    // A file that is not one agency is named.
    let bad = run(&[&["agencies", "update", "--file", &file][..], &by[..]].concat());
    assert!(
        !bad.status.success() && said(&bad).contains("give exactly one [[agency]] block"),
        "{}",
        said(&bad)
    );
    system.shutdown().await
}

/// `liaison witness init` makes a witness's key once, and prints a verifier
/// key that parses as a cosignature/v1 (C2SP) key of that name.
#[test]
fn witness_init_prints_a_cosignature_verifier_key_and_keeps_its_key() -> anyhow::Result<()> {
    let none = Path::new("/nonexistent/session.json");
    let dir = tempfile::tempdir()?;
    let out = dir.path().display().to_string();
    let made = liaison(
        none,
        &[
            "witness",
            "init",
            "--name",
            "oversight.test/w1",
            "--out",
            &out,
        ],
    );
    assert!(made.status.success(), "{made:?}");
    let text = stdout(&made);
    let vkey = text
        .lines()
        .find(|l| l.starts_with("oversight.test/w1+"))
        .ok_or_else(|| anyhow::anyhow!("no verifier key in {text}"))?;
    let verifier = liaison_audit::witness::CosignatureVerifier::parse(vkey)?;
    assert_eq!(verifier.name(), "oversight.test/w1");
    assert!(dir.path().join("witness.pem").is_file());
    let again = liaison(
        none,
        &[
            "witness",
            "init",
            "--name",
            "oversight.test/w1",
            "--out",
            &out,
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("a witness keeps its key"),
        "{again:?}"
    );
    let elsewhere = format!("{out}/other");
    let bad = liaison(
        none,
        &["witness", "init", "--name", "bad name", "--out", &elsewhere],
    );
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid witness name"),
        "{bad:?}"
    );
    assert!(!dir.path().join("other/witness.pem").exists());
    Ok(())
}

/// `liaison audit receipt` writes, for one envelope, every record of it with
/// its inclusion proof against a signed checkpoint (C2SP tlog-proof), and
/// `liaison audit verify-receipt` checks it offline; one byte changed and it
/// is refused.
#[tokio::test]
async fn a_receipt_for_a_share_verifies_offline_and_one_changed_byte_is_refused()
-> anyhow::Result<()> {
    let system = system().await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;
    let sent = send_example_referral(&session);
    let id = stdout(&sent)
        .lines()
        .find_map(|l| l.strip_prefix("envelope "))
        .and_then(|l| l.split(' ').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no envelope id in {sent:?}"))?;
    let envelope = format!("school-a/{id}");
    let file = dir.path().join("receipt.json");
    let file_arg = file.display().to_string();
    // Its collection and two disclosures chained, then a checkpoint over them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(200));
    let written = loop {
        ticks.tick().await;
        let _ = audit(&session, &["checkpoint"]);
        let written = audit(&session, &["receipt", &envelope, "--out", &file_arg]);
        if written.status.success() && stdout(&written).contains(": 3 records") {
            break written;
        }
        assert!(std::time::Instant::now() < deadline, "{written:?}");
    };
    assert!(
        stdout(&written).contains("proved against the checkpoint of"),
        "{written:?}"
    );
    system.shutdown().await?;

    // Offline: the system is gone; only the configured public key is used.
    let none = Path::new("/nonexistent/session.json");
    let checked = liaison(none, &["audit", "verify-receipt", &file_arg]);
    let text = stdout(&checked);
    assert!(checked.status.success(), "{checked:?}");
    assert!(
        text.contains(&format!(
            "Receipt verified: 3 records of {envelope} are in the ledger"
        )) && text.contains("(collection)")
            && text.contains("(disclosure)")
            && text.contains("to police"),
        "{text}"
    );
    let mut bytes = std::fs::read(&file)?;
    let at = String::from_utf8_lossy(&bytes)
        .find("extra ")
        .ok_or_else(|| anyhow::anyhow!("no extra line"))?
        + 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&file, bytes)?;
    let refused = liaison(none, &["audit", "verify-receipt", &file_arg]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(stdout(&refused).contains("Receipt REFUSED"), "{refused:?}");
    Ok(())
}

/// `liaison audit verify` with a witness quorum configured: a ledger no
/// configured witness has cosigned is NOT WITNESSED (exit 2), the missing
/// cosignature named; with no quorum required it verifies as before.
#[tokio::test]
async fn audit_verify_names_the_missing_cosignature_when_a_quorum_is_required() -> anyhow::Result<()>
{
    let system = system().await?;
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("session.json");
    system.session.save(&session)?;
    let _ = send_example_referral(&session);
    let checkpoint = audit(&session, &["checkpoint"]);
    assert!(checkpoint.status.success(), "{checkpoint:?}");
    // A configuration naming a witness (nobody runs it here).
    let (pem, _) = liaison_system::keys::generate(liaison_core::tokens::KeyAlg::EdDSA)?;
    let vkey = liaison_audit::witness::Cosigner::from_pem("oversight.test/w1", &pem)?
        .verifier()
        .vkey();
    let config = dir.path().join("liaison.toml");
    let base = std::fs::read_to_string(root().join("deploy/config/liaison.toml"))?;
    std::fs::write(
        &config,
        format!("{base}\n[[audit.witnesses]]\nurl = \"http://127.0.0.1:9\"\nkey = \"{vkey}\"\n"),
    )?;
    let verify = |quorum: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_liaison"))
            .current_dir(root())
            .arg("--session")
            .arg(&session)
            .arg("--config")
            .arg(&config)
            .args(["audit", "verify", "--purpose", PURPOSE])
            .env("LIAISON_AUDIT_WITNESS_QUORUM", quorum)
            .env_remove("LIAISON_NATS_URL")
            .output()
    };
    let unwitnessed = verify("1")?;
    let out = stdout(&unwitnessed);
    assert_eq!(unwitnessed.status.code(), Some(2), "{unwitnessed:?}");
    assert!(
        out.contains("Ledger intact: ")
            && out.contains(
                "Ledger NOT WITNESSED: no checkpoint of this ledger is cosigned by 1 of its witnesses (missing cosignature by oversight.test/w1"
            ),
        "{out}"
    );
    let required_none = verify("0")?;
    assert!(required_none.status.success(), "{required_none:?}");
    system.shutdown().await
}
