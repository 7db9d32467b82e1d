//! The linkage service in the in-process system: started after the gateway
//! (it raises its matches through the gateway's internal door), with its
//! own NATS user `svc-linkage` and, when asked, its operations listener;
//! stopped, killed and restarted by tests.

use super::System;
use anyhow::Result;
use liaison_core::system::Service;
use liaison_linkage::LinkageService;
use tokio::sync::oneshot;

impl System {
    /// Starts the linkage service (if it is not running), as `svc-linkage`.
    pub async fn start_linkage(&mut self) -> Result<()> {
        if self.linkage.is_some() {
            return Ok(());
        }
        let config = self.telemetry.config_for(&self.config, "linkage");
        let (listener, bound) = oneshot::channel();
        let running = self
            .service(
                "linkage",
                &Service::Linkage.user(),
                |client| async move {
                    let linkage = LinkageService::start(config, client).await?;
                    let _ = listener.send(linkage.telemetry_addr());
                    Ok::<_, liaison_linkage::LinkageError>(linkage)
                },
                |linkage, stop| linkage.run(stop),
            )
            .await?;
        self.telemetry.bound("linkage", bound.await.ok().flatten());
        self.linkage = Some(running);
        Ok(())
    }

    /// Stops the linkage service, letting it store its index.
    pub async fn stop_linkage(&mut self) {
        if let Some(linkage) = self.linkage.take() {
            linkage.stop().await;
        }
    }

    /// Kills the linkage service at once, as a crash would.
    pub async fn kill_linkage(&mut self) {
        if let Some(linkage) = self.linkage.take() {
            linkage.kill().await;
        }
    }
}
