//! The ledger restored from an exported bundle into a rebuilt deployment, as
//! after the loss of every node (docs/runbooks/restore-from-the-ledger.md):
//! a tampered bundle is refused before anything is written; the intact one
//! is restored into the empty streams and proves itself against its own
//! signed checkpoints; a second restore is refused; the audit service then
//! starts on it and continues the chain.

use anyhow::{Result, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use liaison_audit::bundle::Bundle;
use liaison_audit::restore::{RestoreError, restore};
use liaison_core::subjects;
use liaison_proto::v1::verdict::Outcome;
use liaison_runtime::nats_server::{NatsServer, ServerOptions};
use liaison_runtime::provision::provision;
use liaison_runtime::users;
use liaison_system::system::{System, UpOptions};
use liaison_tests::{agency, config, ledger_all, referral, start_with};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ledger_is_restored_from_its_bundle_and_continues() -> Result<()> {
    let config = config();
    let verifier = liaison_audit::signer(&config)?.verifier();

    // The old deployment: three referrals, a checkpoint, an export.
    let old = start_with(config.clone()).await?;
    let school = agency(&old, "school-a").await?;
    for n in 0..3 {
        let verdict = school
            .send_until_answered(
                &referral("school-a", &format!("rst-{n}")),
                Duration::from_secs(10),
            )
            .await?;
        ensure!(verdict.outcome == Outcome::Accepted as i32, "{verdict:?}");
    }
    let (report, _) = ledger_all(&old).await?;
    let auditor = liaison_tests::auditor(&old, "ig-officer").await?;
    auditor
        .request(subjects::CHECKPOINT_REQUEST, "".into())
        .await?;
    let bundle = Bundle::export(
        &async_nats::jetstream::new(old.connect_as(users::AUDIT).await?),
        &config.audit.origin,
        &verifier,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    ensure!(bundle.records() >= report.verified && !bundle.checkpoints.is_empty());
    old.shutdown().await?;

    // The rebuilt deployment: streams provisioned, nothing started yet.
    let mut plan = users::plan();
    plan.push(users::inspector());
    let server = NatsServer::start(&ServerOptions {
        users: plan.clone(),
        ..ServerOptions::default()
    })?;
    let connect_as = async |user: &str| {
        let credentials = plan
            .iter()
            .find(|u| u.credentials.user == user)
            .map(|u| u.credentials.clone())
            .ok_or_else(|| anyhow::anyhow!("no user {user}"))?;
        let client =
            liaison_core::connect::connect(&server.url(), &credentials, &Default::default(), user)
                .await?;
        anyhow::Ok(async_nats::jetstream::new(client))
    };
    // The operator provisions the empty streams; the restore writes them
    // as the audit service (the operator may not write the ledger).
    provision(
        &connect_as(users::OPERATOR).await?,
        &config.streams,
        &liaison_runtime::registry::Registry::load(&config.paths.registry)?,
    )
    .await?;
    let js = connect_as(users::AUDIT).await?;

    let mut tampered = bundle.clone();
    let mut bytes = B64.decode(&tampered.blocks[0])?;
    if let Some(b) = bytes.last_mut() {
        *b ^= 1;
    }
    tampered.blocks[0] = B64.encode(bytes);
    let refused = restore(&js, &tampered, &verifier).await;
    ensure!(
        matches!(refused, Err(RestoreError::Broken(_))),
        "{refused:?}"
    );

    let restored = restore(&js, &bundle, &verifier).await?;
    ensure!(
        restored.entries == bundle.records() && restored.blocks as usize == bundle.blocks.len(),
        "{restored:?}"
    );
    let again = restore(&js, &bundle, &verifier).await;
    ensure!(
        again
            .as_ref()
            .is_err_and(|e| e.to_string().contains("LEDGER already holds")),
        "{again:?}"
    );

    // The services start on it; the audit service verifies it and goes on.
    let system = System::start_on(
        config,
        &server.url(),
        &plan,
        UpOptions {
            inspector: true,
            ..UpOptions::default()
        },
    )
    .await?;
    let school = agency(&system, "school-a").await?;
    let verdict = school
        .send_until_answered(&referral("school-a", "rst-after"), Duration::from_secs(10))
        .await?;
    ensure!(verdict.outcome == Outcome::Accepted as i32, "{verdict:?}");
    let (after, records) = ledger_all(&system).await?;
    ensure!(after.intact(), "{after:?}");
    ensure!(
        after.verified > bundle.records(),
        "{after:?} after {} restored",
        bundle.records()
    );
    ensure!(
        records.iter().any(|r| r.envelope_id == "rst-0")
            && records.iter().any(|r| r.envelope_id == "rst-after"),
        "the restored and the new records are both in the ledger"
    );
    system.shutdown().await?;
    drop(server);
    Ok(())
}
