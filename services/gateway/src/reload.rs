//! Policy hot reload. The gateway watches its policy directory (schema,
//! policies, vocabulary) and, when what it reads there changes, loads and
//! validates the new set in full before it replaces the one in force, in one
//! step: requests decided before the swap used the old set, requests after it
//! the new one, and none is ever decided without a valid set. A set that does
//! not load is refused and the old one kept. Both are recorded in the audit
//! ledger (operation POLICY_CHANGE), with the digests of the old and new sets,
//! so an auditor can tell which rules decided any share.

use crate::Shared;
use crate::policy::Policy;
use crate::records;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What one look at the policy directory found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The directory holds the set in force.
    Unchanged,
    /// A new set was loaded and is in force; its digest.
    Applied(String),
    /// The directory changed but does not load: the old set is kept.
    Refused(String),
}

/// Records the set in force when the gateway starts.
pub async fn record_start(shared: &Shared, started: u128) {
    let policy = shared.policy();
    let record = records::policy_change(
        &format!("{}:start:{started}", policy.digest()),
        true,
        format!(
            "gateway started with policy set sha256:{} ({} policies)",
            policy.digest(),
            policy.len()
        ),
    );
    shared.recorder.keep(record).await;
}

/// Looks at the policy directory once and applies a changed, valid set.
/// `last_refused`: digest of the last set refused, so a broken file is
/// recorded once, not at every look.
pub async fn check(shared: &Shared, last_refused: &mut Option<String>) -> Reload {
    let current = shared.policy();
    let dir = &shared.config.paths.policies;
    let digest = match Policy::digest_of(dir) {
        Ok(d) => d,
        Err(e) => format!("unreadable: {e}"),
    };
    if digest == current.digest() || last_refused.as_deref() == Some(digest.as_str()) {
        return Reload::Unchanged;
    }
    let now = liaison_core::time::unix_now();
    let loaded = shared.change(|live| {
        let new = Arc::new(Policy::load(dir, &live.registry).map_err(|e| e.to_string())?);
        let next = crate::live::Live {
            registry: live.registry.clone(),
            policy: new.clone(),
            verifier: live.verifier.clone(),
        };
        Ok((next, new))
    });
    match loaded {
        Ok(new) => {
            let reason = format!(
                "policy set sha256:{} ({} policies) replaced sha256:{} ({} policies)",
                new.digest(),
                new.len(),
                current.digest(),
                current.len()
            );
            let applied = new.digest().to_owned();
            *last_refused = None;
            info!(digest = %applied, "Policy set reloaded");
            let record = records::policy_change(&format!("{applied}:{now}"), true, reason);
            shared.recorder.keep(record).await;
            Reload::Applied(applied)
        }
        Err(e) => {
            warn!(error = %e, "Policy set refused; the old set stays in force");
            let reason = format!(
                "policy set in {} refused, sha256:{} ({} policies) stays in force: {e}",
                dir.display(),
                current.digest(),
                current.len()
            );
            let record = records::policy_change(
                &format!("refused:{}:{now}", short(&digest)),
                false,
                reason.chars().take(2000).collect(),
            );
            shared.recorder.keep(record).await;
            *last_refused = Some(digest);
            Reload::Refused(e.to_string())
        }
    }
}

fn short(digest: &str) -> String {
    digest
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect()
}

/// Looks every `interval` until `shutdown`.
pub async fn watch(shared: Arc<Shared>, interval: Duration, shutdown: CancellationToken) {
    let mut last_refused = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match check(&shared, &mut last_refused).await {
            Reload::Unchanged => {}
            Reload::Applied(_) => shared.metrics.policy_reloads.inc(&["applied"]),
            Reload::Refused(_) => shared.metrics.policy_reloads.inc(&["refused"]),
        }
    }
}
