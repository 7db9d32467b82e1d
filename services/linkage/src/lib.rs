//! `liaison-linkage`: the pseudonymous subject index, and the alerts it
//! raises.
//!
//! Agencies refer people by subject token (an HMAC of their normalised
//! identifiers under the partnership's key, computed inside the agency:
//! `liaison_client::subject`). This service folds EVENTS into an index of
//! tokens → cases (live, and former subjects under review) and recent
//! referrals ([`index`]), kept in its KV bucket `LINKAGE` ([`store`]). Each
//! new referral is matched: a former subject re-engaging raises a
//! `ReengagementAlert` to the owning agency; a person already on a live case,
//! or referred by another agency within the window, raises a
//! `DuplicateSubject` ([`alert`]). Each match is a COMBINATION record in the
//! ledger. Events are raised through the gateway's internal door, which
//! applies the partnership's policy to them like any envelope, through liaison-runtime's
//! outbox, so a restart or a rebuild never raises one twice ([`service`]).
//!
//! Each event is folded in a `linkage.fold` span continuing the event's
//! trace, and what it raises continues that span, so a referral and the
//! re-engagement alert it causes are one trace. It registers with the NATS
//! service API (`liaison-linkage`) and serves `/metrics`, `/healthz` and
//! `/readyz` on `[telemetry] listen` ([`metrics`]).
//!
//! It never sees, stores or logs a name or a date of birth, and never holds
//! the partnership key.

pub mod alert;
pub mod index;
pub mod matching;
pub mod metrics;
pub mod service;
pub mod store;

pub use service::{LinkageError, LinkageService};

use liaison_runtime::config::Config;
use tokio_util::sync::CancellationToken;

/// Starts the linkage service and serves until `shutdown`.
pub async fn run(
    config: Config,
    client: async_nats::Client,
    shutdown: CancellationToken,
) -> Result<(), LinkageError> {
    LinkageService::start(config, client)
        .await?
        .run(shutdown)
        .await
}

#[cfg(test)]
mod tests;
