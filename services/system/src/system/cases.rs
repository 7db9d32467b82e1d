//! The cases service in the in-process system: started after the gateway
//! (it answers the gateway's case queries and raises events through its
//! internal door), with its own NATS user `svc-cases` and, when asked, its
//! operations listener; stopped, killed and restarted by tests.

use super::System;
use anyhow::Result;
use liaison_cases::CasesService;
use liaison_core::system::Service;
use tokio::sync::oneshot;

impl System {
    /// Starts the cases service (if it is not running).
    pub async fn start_cases(&mut self) -> Result<()> {
        if self.cases.is_some() {
            return Ok(());
        }
        let config = self.telemetry.config_for(&self.config, "cases");
        let (listener, bound) = oneshot::channel();
        let running = self
            .service(
                "cases",
                &Service::Cases.user(),
                |client| async move {
                    let cases = CasesService::start(config, client).await?;
                    let _ = listener.send(cases.telemetry_addr());
                    Ok::<_, liaison_cases::CasesError>(cases)
                },
                |cases, stop| cases.run(stop),
            )
            .await?;
        self.telemetry.bound("cases", bound.await.ok().flatten());
        self.cases = Some(running);
        Ok(())
    }

    /// Stops the cases service, letting the event in hand finish.
    pub async fn stop_cases(&mut self) {
        if let Some(cases) = self.cases.take() {
            cases.stop().await;
        }
    }

    /// Kills the cases service at once, as a crash would.
    pub async fn kill_cases(&mut self) {
        if let Some(cases) = self.cases.take() {
            cases.kill().await;
        }
    }
}
