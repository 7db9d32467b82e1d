//! Waiting for the whole system to come to rest: the router and the ledger
//! writer have nothing pending, and each running fold service (cases,
//! linkage, alerts) has applied EVENTS up to its end. What the demo waits
//! on between the parts of its day, and tests before they look at state.

use super::System;
use anyhow::{Result, anyhow};
use liaison_core::subjects;
use liaison_core::system::Service;
use liaison_runtime::fold::Cursor;
use liaison_runtime::users;
use std::time::{Duration, Instant};

impl System {
    /// The fold services running now.
    fn running_folds(&self) -> Vec<Service> {
        [
            (Service::Cases, self.cases.is_some()),
            (Service::Linkage, self.linkage.is_some()),
            (Service::Alerts, self.alerts.is_some()),
        ]
        .into_iter()
        .filter_map(|(service, running)| running.then_some(service))
        .collect()
    }

    /// Waits until nothing is pending anywhere: EVENTS routed, decisions in
    /// the ledger, and every running fold service's cursor at the end of
    /// EVENTS (events they raise in the meantime move the end; the wait
    /// lasts until it stays put), for up to `timeout`.
    pub async fn wait_until_folded(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let js = async_nats::jetstream::new(self.connect_as(users::OPERATOR).await?);
        let mut cursors = Vec::new();
        for service in self.running_folds() {
            let store = js
                .get_key_value(service.bucket())
                .await
                .map_err(|e| anyhow!("the {} bucket: {e}", service.bucket()))?;
            cursors.push((service, Cursor::new(store, service)));
        }
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        loop {
            ticks.tick().await;
            let left = deadline.saturating_duration_since(Instant::now());
            self.wait_until_settled(left).await?;
            let end = js
                .get_stream(subjects::EVENTS_STREAM)
                .await
                .map_err(|e| anyhow!("EVENTS: {e}"))?
                .info()
                .await
                .map_err(|e| anyhow!("EVENTS: {e}"))?
                .state
                .last_sequence;
            let mut behind = Vec::new();
            for (service, cursor) in &cursors {
                if liaison_runtime::fold::applied_through(cursor.get().await?) < end {
                    behind.push(service.name());
                }
            }
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "{} still behind EVENTS after {timeout:?}",
                    behind.join(", ")
                ));
            }
        }
    }
}
