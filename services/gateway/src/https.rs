//! The HTTPS door, for agencies that do not speak NATS: JSON (or binary
//! protobuf) over HTTP/1.1 on TLS 1.2 or 1.3, authenticated by the same
//! agency JWT as the NATS door (`Authorization: Bearer`).
//!
//! It owns the listener, TLS ([`tls`]), the routes ([`routes`]), reading an
//! agency's inbox for it ([`inbox`]) and the OpenAPI document generated from
//! the code ([`openapi`]). It decides nothing about envelopes: every envelope
//! goes through [`crate::ingress::submit`], exactly as over NATS, so checks,
//! policy, storage and audit are the same whatever the door.

pub mod inbox;
pub mod openapi;
pub mod problem;
pub mod request;
pub mod routes;
pub mod tls;

use crate::Shared;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use liaison_runtime::config::HttpsConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 512;
/// Longest a client may take over the TLS handshake, or over sending a
/// request's headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests have to finish once the gateway is stopping.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the HTTPS door could not open.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error("https.{key} {path}: {reason}")]
    Pem {
        key: &'static str,
        path: String,
        reason: String,
    },
    #[error("https.{0} is not set: the door needs it")]
    Missing(&'static str),
    #[error("https: {0}")]
    Config(String),
    #[error(
        "https.listen {addr}: cannot listen there ({reason}); choose another address with https.listen or LIAISON_HTTPS_LISTEN"
    )]
    Bind { addr: String, reason: String },
}

/// The door, bound and with its TLS configuration loaded, not yet serving.
pub struct Door {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    addr: SocketAddr,
}

impl Door {
    /// Loads certificates and binds `config.listen`, so that bad files or a
    /// taken port stop the gateway at start.
    pub async fn bind(config: &HttpsConfig) -> Result<Self, HttpsError> {
        let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(config)?));
        let listen = config.listen.trim();
        let bind_error = |e: std::io::Error| HttpsError::Bind {
            addr: listen.to_owned(),
            reason: e.to_string(),
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            acceptor,
            addr,
        })
    }

    /// The address the door listens on (the port chosen, if `:0` was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Serves the door until `shutdown`, then lets requests in hand finish (for
/// up to [`DRAIN_TIMEOUT`]) and closes every connection.
pub async fn serve(shared: Arc<Shared>, door: Door, shutdown: CancellationToken) {
    let router = routes::router(shared, shutdown.clone());
    let tracker = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    info!(addr = %door.addr, "HTTPS door open");
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = door.listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    warn!(error = %e, "HTTPS accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = door.acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let stop = shutdown.clone();
        tracker.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            let mut connection = std::pin::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    tokio::time::timeout(DRAIN_TIMEOUT, connection.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(e) = served {
                debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
    info!("HTTPS door closed");
}
