//! The operator console in the in-process system: served on the main
//! runtime as the operator, drawing the flows from the gateway's
//! operations listener; stopped first when the system stops.

use super::System;
use crate::console::Console;
use crate::console::sampler::Sources;
use anyhow::Result;
use liaison_runtime::users;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// A console being served.
pub(super) struct RunningConsole {
    addr: Option<SocketAddr>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl System {
    /// Opens the console on `listen` (e.g. `127.0.0.1:9460`).
    pub async fn start_console(&mut self, listen: &str) -> Result<()> {
        if self.console.is_some() {
            return Ok(());
        }
        let console = Console::bind(listen).await?;
        let addr = console.local_addr();
        let sources = Sources {
            operator: self.connect_as(users::OPERATOR).await?,
            agencies: self
                .registry
                .agencies()
                .map(|a| (a.id.to_string(), a.name.clone(), kind(a.kind)))
                .collect(),
            gateway: self.gateway_telemetry_addr().map(|a| a.to_string()),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(console.serve(sources, stop.clone()));
        self.console = Some(RunningConsole { addr, stop, task });
        Ok(())
    }

    /// Where the console serves `/console`, if it is open.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().and_then(|c| c.addr)
    }

    /// Stops the console.
    pub async fn stop_console(&mut self) {
        if let Some(console) = self.console.take() {
            console.stop.cancel();
            let _ = console.task.await;
        }
    }
}

/// An agency kind as the page colours it (`police`, `social-care`, ...).
fn kind(kind: liaison_runtime::registry::AgencyKind) -> String {
    use liaison_runtime::registry::AgencyKind as K;
    match kind {
        K::Police => "police",
        K::Health => "health",
        K::SocialCare => "social-care",
        K::Education => "education",
        K::Council => "council",
        K::Probation => "probation",
        K::Business => "business",
        K::System => "system",
    }
    .to_owned()
}
