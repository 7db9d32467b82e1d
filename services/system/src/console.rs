//! The operator console: a small web page (`GET /console`) that draws the
//! live flows between agencies as a picture (agencies as nodes, edges
//! weighted by the copies delivered in the recent window, refusals by
//! reason), each agency's consumer lag and the audit ledger's checkpoints,
//! from a JSON state (`GET /console/state`, [`state`]) gathered every few
//! seconds ([`sampler`]). Plain HTML and JavaScript in one file ([`PAGE`]), no build
//! step, nothing fetched from anywhere but this listener (its
//! Content-Security-Policy says so to the browser). Counts by agency, kind
//! and reason only: no personal data, no envelope or case id. No
//! authentication, like the services' operations listeners: loopback or a
//! private network only (docs/decisions/0014-operator-console.md).

pub mod sampler;
pub mod scrape;
pub mod state;
pub mod window;

use axum::Router;
use axum::extract::State as Extract;
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use sampler::{Sampler, Sources};
use state::State;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The page: HTML, CSS and JavaScript, served as it is.
pub const PAGE: &str = include_str!("console/page.html");

/// How often the state is gathered (the page asks as often).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// The recent window the flows and refusals are counted over.
pub const WINDOW: Duration = Duration::from_secs(300);

/// What the browser may do with the page: only talk back to this listener.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// A bound, not yet serving, console listener.
pub struct Console {
    listener: tokio::net::TcpListener,
}

impl Console {
    /// Binds `addr` (e.g. `127.0.0.1:9460`; port 0 picks one).
    pub async fn bind(addr: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr.trim())
            .await
            .map_err(|e| anyhow::anyhow!("console listener on {addr:?}: {e}"))?;
        Ok(Self { listener })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Gathers the state every [`SAMPLE_EVERY`] and serves the page until
    /// `shutdown`.
    pub async fn serve(self, sources: Sources, shutdown: CancellationToken) {
        let (publish, latest) = watch::channel(Arc::new(State::default()));
        let sampling = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut sampler = Sampler::new(sources, WINDOW);
                let mut ticks = tokio::time::interval(SAMPLE_EVERY);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        _ = ticks.tick() => {}
                    }
                    let state = sampler.sample().await;
                    if publish.send(Arc::new(state)).is_err() {
                        break;
                    }
                }
            })
        };
        let app = Router::new()
            .route("/", get(|| async { Redirect::to("/console") }))
            .route("/console", get(page))
            .route("/console/state", get(current))
            .with_state(latest);
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "Console listener stopped");
        }
        sampling.abort();
    }
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
}

async fn current(Extract(latest): Extract<watch::Receiver<Arc<State>>>) -> impl IntoResponse {
    let state = latest.borrow().clone();
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(state.as_ref().clone()),
    )
}
