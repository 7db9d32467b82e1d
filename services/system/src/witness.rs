//! The witness's HTTP interface (C2SP tlog-witness): `POST /add-checkpoint`,
//! answered by [`liaison_audit::witness::Witness`], with the status codes and
//! content types the specification gives, so that any log's client can use it
//! and Liaison's audit service can use any witness. No authentication beyond
//! the log's signature on the checkpoint (tlog-witness): cosignatures are
//! signed, so a man in the middle can only withhold them.

use anyhow::Result;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use liaison_audit::witness::{MAX_REQUEST, Refused, Witness};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Serves `witness` on `listener` until `shutdown`.
pub async fn serve(
    witness: Arc<Witness>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let app = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(witness);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: String) -> Response {
    let now = liaison_core::time::unix_now();
    // Checked, recorded and synced to disk before the answer: off the runtime.
    let answer = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
    match answer {
        Ok(Ok(cosignature)) => {
            info!("Checkpoint cosigned");
            text(StatusCode::OK, "text/plain; charset=utf-8", cosignature)
        }
        Ok(Err(Refused::Conflict(size))) => text(
            StatusCode::CONFLICT,
            "text/x.tlog.size",
            format!("{size}\n"),
        ),
        Ok(Err(refused)) => {
            let status =
                StatusCode::from_u16(refused.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if matches!(refused, Refused::Fork(_) | Refused::Inconsistent(_)) {
                warn!(error = %refused, "A checkpoint inconsistent with what this witness cosigned, kept as evidence");
            }
            text(status, "text/plain; charset=utf-8", format!("{refused}\n"))
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("{e}\n"),
        ),
    }
}
