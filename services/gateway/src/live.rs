//! What the gateway decides with, and how it follows the live registry
//! (docs/decisions/0020-live-membership.md). The registry, the policy set
//! built for it and the agencies' token keys are one [`Live`], replaced
//! whole in one step: a request is decided with one registry and its own
//! policy and keys, never a mix. A change to the live registry (an agency
//! added, updated or removed, a key added or retired) is in force here as
//! soon as the bucket's watch delivers it — milliseconds after the
//! operator's command, at every replica, nothing restarted.

use crate::Shared;
use crate::auth::Verifier;
use crate::policy::Policy;
use liaison_runtime::live_registry::Follower;
use liaison_runtime::registry::Registry;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// The registry, policy set and keys in force.
pub struct Live {
    pub registry: Arc<Registry>,
    pub policy: Arc<Policy>,
    pub verifier: Arc<Verifier>,
}

impl Live {
    /// This state for `registry`, with the rules of this state's policy
    /// set; refused if the policy set does not hold for it or a key does
    /// not load.
    pub fn for_registry(&self, shared: &Shared, registry: Registry) -> Result<Self, String> {
        let policy = self
            .policy
            .for_registry(&registry)
            .map_err(|e| e.to_string())?;
        let verifier = Verifier::new(&registry, &shared.config.gateway)?;
        Ok(Self {
            registry: Arc::new(registry),
            policy: Arc::new(policy),
            verifier: Arc::new(verifier),
        })
    }
}

/// Puts `registry` in force at this gateway: registry, policy, keys and
/// limits (the old state kept if it does not hold). Returns how long it
/// took.
pub fn apply(shared: &Shared, registry: Registry) -> Result<std::time::Duration, String> {
    let started = std::time::Instant::now();
    let agencies = registry.len();
    shared.change(|current| {
        let next = current.for_registry(shared, registry)?;
        shared.limits.follow(&next.registry);
        Ok((next, ()))
    })?;
    shared
        .metrics
        .agencies
        .set(&[], u64::try_from(agencies).unwrap_or(u64::MAX));
    Ok(started.elapsed())
}

/// Follows the live registry until `shutdown`.
pub async fn follow(shared: Arc<Shared>, mut follower: Follower, shutdown: CancellationToken) {
    let agencies = shared.registry().len();
    shared
        .metrics
        .agencies
        .set(&[], u64::try_from(agencies).unwrap_or(u64::MAX));
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = follower.next() => next,
        };
        let Some(next) = next else {
            error!("The live registry's watch ended: registry changes are no longer followed");
            return;
        };
        let applied = next.and_then(|registry| apply(&shared, registry));
        match applied {
            Ok(took) => {
                shared.metrics.registry_changes.inc(&["applied"]);
                info!(
                    agencies = shared.registry().len(),
                    took_ms = took.as_millis(),
                    "Live registry change in force"
                );
            }
            Err(e) => {
                shared.metrics.registry_changes.inc(&["refused"]);
                error!(error = %e, "Live registry change not applied: the registry in force is kept");
            }
        }
    }
}
