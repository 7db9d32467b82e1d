//! The alerts service in the in-process system: started after the gateway
//! (it raises its escalations through the gateway's internal door), with its
//! own NATS user `svc-alerts` and, when asked, its operations listener;
//! stopped, killed and restarted by tests.

use super::{Running, System};
use anyhow::Result;
use liaison_alerts::AlertsService;
use liaison_core::system::Service;
use tokio::sync::oneshot;

impl System {
    /// Starts the alerts service (if it is not running).
    pub async fn start_alerts(&mut self) -> Result<()> {
        if self.alerts.is_some() {
            return Ok(());
        }
        let config = self.telemetry.config_for(&self.config, "alerts");
        let (listener, bound) = oneshot::channel();
        let running: Running = self
            .service(
                "alerts",
                &Service::Alerts.user(),
                |client| async move {
                    let alerts = AlertsService::start(config, client).await?;
                    let _ = listener.send(alerts.telemetry_addr());
                    Ok::<_, liaison_alerts::AlertsError>(alerts)
                },
                |alerts, stop| alerts.run(stop),
            )
            .await?;
        self.telemetry.bound("alerts", bound.await.ok().flatten());
        self.alerts = Some(running);
        Ok(())
    }

    /// Stops the alerts service, letting it store its cursor.
    pub async fn stop_alerts(&mut self) {
        if let Some(alerts) = self.alerts.take() {
            alerts.stop().await;
        }
    }

    /// Kills the alerts service at once, as a crash would.
    pub async fn kill_alerts(&mut self) {
        if let Some(alerts) = self.alerts.take() {
            alerts.kill().await;
        }
    }
}
