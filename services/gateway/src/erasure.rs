//! Crypto-erasure (docs/decisions/0022-encryption-at-rest-and-crypto-erasure.md):
//! everything EVENTS and DELIVERY hold is sealed under data keys per
//! subject (or case) and per end of retention ([`liaison_runtime::seal`]).
//! Destroying a key erases everything sealed with it, wherever it is stored,
//! while the ledger — which holds no personal data — stays whole.
//!
//! Retention: every `gateway` looks every `data.retention_sweep_secs` for
//! the `until.<unix seconds>` keys whose time has come, records each
//! erasure in the ledger (operation ERASURE, code `retention_ended`), then
//! destroys the key. The record's id is the key's, so two gateways sweeping
//! at once record it once; it is recorded before the key is destroyed, so
//! no key is destroyed unrecorded (a crash in between leaves a record and a
//! key the next sweep destroys, recording nothing new).

use crate::Shared;
use liaison_proto::v1::{AuditRecord, Decision, Operation};
use liaison_runtime::seal;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The ledger record of destroying the data key `name`.
pub fn record(name: &str, code: &str, reason: String) -> AuditRecord {
    AuditRecord {
        record_id: format!("erasure:{name}"),
        operation: Operation::Erasure as i32,
        decision: Decision::Accepted as i32,
        code: code.into(),
        reason,
        time: Some(liaison_core::time::timestamp_now()),
        service: "gateway".into(),
        ..Default::default()
    }
}

/// A Unix time in words (UTC), for records.
fn when(unix: u64) -> String {
    let day = unix / 86_400;
    let secs = unix % 86_400;
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        crate::policy::format_day(day),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Destroys every data key whose retention has ended by `now`; how many.
pub async fn sweep(shared: &Shared, now: u64) -> Result<usize, String> {
    let due = shared.keys.due(now).await.map_err(|e| e.to_string())?;
    let mut destroyed = 0;
    for name in due {
        let until = seal::until_of(&name).unwrap_or_default();
        let entry = record(
            &name,
            "retention_ended",
            format!(
                "retention ended {}: the data key {name} is destroyed, and everything sealed with it (every envelope and copy whose retention ended then) can no longer be read",
                when(until)
            ),
        );
        shared
            .recorder
            .publish(&entry)
            .await
            .map_err(|e| format!("the erasure of {name} could not be recorded: {e}"))?;
        if shared
            .keys
            .destroy(&name)
            .await
            .map_err(|e| e.to_string())?
        {
            destroyed += 1;
            info!(key = %name, "Data key destroyed: its retention ended");
        }
    }
    Ok(destroyed)
}

/// Sweeps every `interval` until `shutdown`.
pub async fn watch(shared: Arc<Shared>, interval: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sweep(&shared, liaison_core::time::unix_now()).await {
            warn!(error = %e, "Retention not swept");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
