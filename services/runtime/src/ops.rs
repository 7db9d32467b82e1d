//! The operations listener: plain HTTP `GET /metrics` (the service's
//! [`metrics::Registry`]), `GET /healthz` (the process is up) and
//! `GET /readyz` (NATS connected and the service's consumer bound; 503
//! otherwise). It has no authentication: bind it to loopback or a private
//! network (`[telemetry] listen`). It does not count anything itself.

use crate::metrics::{self, Registry};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

/// Why the operations listener could not open.
#[derive(Debug, thiserror::Error)]
#[error("telemetry listener on {addr:?}: {reason}")]
pub struct OpsError {
    pub addr: String,
    pub reason: String,
}

/// What the listener reports on.
#[derive(Clone)]
pub struct Probe {
    pub registry: Arc<Registry>,
    pub client: async_nats::Client,
    /// Set by the service once its consumer is bound and it serves.
    pub bound: Arc<AtomicBool>,
}

impl Probe {
    /// Whether the service is ready, and if not, why.
    pub fn ready(&self) -> Result<(), &'static str> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err("NATS not connected");
        }
        if !self.bound.load(Ordering::Relaxed) {
            return Err("consumer not bound");
        }
        Ok(())
    }
}

/// A bound, not yet serving, operations listener.
pub struct Listener {
    listener: tokio::net::TcpListener,
}

impl Listener {
    /// Binds `addr` (e.g. `127.0.0.1:9464`; port 0 picks one).
    pub async fn bind(addr: &str) -> Result<Self, OpsError> {
        let listener = tokio::net::TcpListener::bind(addr.trim())
            .await
            .map_err(|e| OpsError {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self { listener })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown`.
    pub async fn serve(self, probe: Probe, shutdown: CancellationToken) {
        let app = Router::new()
            .route("/metrics", get(metrics_page))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .with_state(probe);
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "Telemetry listener stopped");
        }
    }
}

async fn metrics_page(State(probe): State<Probe>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        probe.registry.render(),
    )
}

async fn readyz(State(probe): State<Probe>) -> impl IntoResponse {
    match probe.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
