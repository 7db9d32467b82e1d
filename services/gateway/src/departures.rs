//! A removed agency's copies (docs/runbooks/remove-an-agency.md): copies
//! already made for it stay in DELIVERY, unread, for the stream's retention
//! (`streams.delivery_max_age_days`), then the stream drops them. The removal
//! record says how many were held and until when; the gateway keeps a
//! departure under `<agency>.removed` in `MEMBERSHIP`, looks every
//! `gateway.departures_sweep_secs` whether the copies are gone, and records
//! that they were dropped (once: the record's id is the departure's, which
//! the ledger de-duplicates across replicas). Added again before then, the
//! agency reads them; its departure is forgotten.

use crate::Shared;
use futures_util::StreamExt as _;
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::{AuditRecord, Decision, Operation};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The suffix of a departure's key in `MEMBERSHIP`.
const SUFFIX: &str = ".removed";

/// A removed agency whose held copies may still be in DELIVERY.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Departure {
    /// Unix seconds.
    pub at: u64,
    pub by: String,
    /// Copies held for it when it was removed.
    pub held: u64,
    /// When DELIVERY's retention will have dropped the last of them (Unix seconds).
    pub until: u64,
}

fn copies(n: u64) -> &'static str {
    if n == 1 { "copy" } else { "copies" }
}

/// Copies in `agency`'s inbox now.
pub async fn held(shared: &Shared, agency: &AgencyId) -> Result<u64, String> {
    let stream = shared
        .js
        .get_stream(subjects::DELIVERY_STREAM)
        .await
        .map_err(|e| format!("stream {}: {e}", subjects::DELIVERY_STREAM))?;
    let mut counts = stream
        .info_with_subjects(format!("liaison.deliver.{agency}.>"))
        .await
        .map_err(|e| format!("stream {}: {e}", subjects::DELIVERY_STREAM))?;
    let mut count = 0;
    while let Some(subject) = counts.next().await {
        let (_, n) = subject.map_err(|e| format!("stream {}: {e}", subjects::DELIVERY_STREAM))?;
        count += u64::try_from(n).unwrap_or(0);
    }
    Ok(count)
}

/// What the removal record says of the copies, and the departure to keep.
pub fn departure(shared: &Shared, held: u64, by: &str) -> (String, Option<Departure>) {
    if held == 0 {
        return ("its inbox held no copies".to_owned(), None);
    }
    let at = liaison_core::time::unix_now();
    let until = at + shared.config.streams.delivery_max_age_days * 24 * 3600;
    (
        format!(
            "{held} {} in its inbox, readable by no one, until DELIVERY's retention drops {} ({} days)",
            copies(held),
            if held == 1 { "it" } else { "them" },
            shared.config.streams.delivery_max_age_days
        ),
        Some(Departure {
            at,
            by: by.to_owned(),
            held,
            until,
        }),
    )
}

/// Keeps `departure` of `agency` (after its removal was written).
pub async fn keep(shared: &Shared, agency: &AgencyId, departure: &Departure) {
    let value = serde_json::to_vec(departure).unwrap_or_default();
    if let Err(e) = shared
        .membership
        .store()
        .put(format!("{agency}{SUFFIX}"), value.into())
        .await
    {
        warn!(agency = %agency, error = %e, "Departure not kept: its copies' end will not be recorded");
    }
}

/// Forgets `agency`'s departure (it was added again).
pub async fn forget(shared: &Shared, agency: &AgencyId) {
    let _ = shared
        .membership
        .store()
        .purge(format!("{agency}{SUFFIX}"))
        .await;
}

/// Records the end of every departure whose copies are gone.
pub async fn sweep(shared: &Shared) -> Result<usize, String> {
    let store = shared.membership.store();
    let mut keys = store.keys().await.map_err(|e| e.to_string())?;
    let mut departed = Vec::new();
    while let Some(key) = keys.next().await {
        let Ok(key) = key else { continue };
        if let Some(agency) = key
            .strip_suffix(SUFFIX)
            .and_then(|a| AgencyId::parse(a).ok())
        {
            departed.push(agency);
        }
    }
    let mut recorded = 0;
    for agency in departed {
        let key = format!("{agency}{SUFFIX}");
        let Ok(Some(value)) = store.get(&key).await else {
            continue;
        };
        let Ok(departure) = serde_json::from_slice::<Departure>(&value) else {
            continue;
        };
        if held(shared, &agency).await? > 0 {
            continue;
        }
        shared
            .recorder
            .publish(&record(&agency, &departure))
            .await
            .map_err(|e| format!("the dropped copies' record: {e}"))?;
        let _ = store.purge(&key).await;
        info!(agency = %agency, held = departure.held, "Removed agency's held copies are gone: recorded");
        recorded += 1;
    }
    Ok(recorded)
}

fn record(agency: &AgencyId, departure: &Departure) -> AuditRecord {
    AuditRecord {
        record_id: format!("membership:{agency}:copies-dropped:{}", departure.at),
        operation: Operation::MembershipChange as i32,
        decision: Decision::Accepted as i32,
        code: "removed_copies_dropped".into(),
        reason: format!(
            "{} {} held for {agency} when {} removed it (at {}): no longer in DELIVERY, its retention dropped them",
            departure.held,
            copies(departure.held),
            departure.by,
            departure.at
        ),
        agency: agency.to_string(),
        author: "gateway".into(),
        time: Some(liaison_core::time::timestamp_now()),
        service: "gateway".into(),
        ..Default::default()
    }
}

/// Sweeps every `interval` until `shutdown`.
pub async fn watch(
    shared: std::sync::Arc<Shared>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = sweep(&shared).await {
            warn!(error = %e, "Departures not swept");
        }
    }
}
