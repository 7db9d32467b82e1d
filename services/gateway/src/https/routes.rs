//! The door's routes. Envelopes go through [`ingress::submit`] (the NATS
//! door's path, refusals audited there); inbox reads and acknowledgements
//! authenticate the agency with the same verifier first. Every reply is JSON;
//! every error is `{"code", "reason"}` ([`Problem`]). Nothing here logs an
//! envelope's content: only agencies, codes and counts. A request's W3C
//! `traceparent`/`tracestate` headers are the parent of its ingress span.
//!
//! | route | |
//! |---|---|
//! | `POST /v1/agencies/{agency}/envelopes` | send an envelope; the verdict |
//! | `GET /v1/agencies/{agency}/inbox?max=N&wait_ms=M` | deliveries with ack ids, unacknowledged |
//! | `POST /v1/agencies/{agency}/inbox/ack` | `{"ack_ids": [...]}` |
//! | `GET /v1/openapi.json` | the OpenAPI 3.1 document |
//! | `GET /healthz` | `{"status": "ok"}` |

use super::inbox::{self, MAX_ACKS, MAX_BATCH, MAX_WAIT};
use super::openapi;
use super::problem::Problem;
use super::request::{Unread, bearer, encoding, path_agency, read_body};
use crate::Shared;
use crate::ingress;
use crate::refusal::Refusal;
use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use liaison_core::AgencyId;
use liaison_proto::v1::Verdict;
use liaison_proto::v1::verdict::Outcome;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// What the handlers share.
struct Door {
    shared: Arc<Shared>,
    /// Largest body read.
    limit: usize,
    shutdown: CancellationToken,
    /// The OpenAPI document, rendered once.
    openapi: Bytes,
}

type DoorState = State<Arc<Door>>;

/// The door's routes over `shared`; long reads end early at `shutdown`.
pub fn router(shared: Arc<Shared>, shutdown: CancellationToken) -> Router {
    let limit = shared.config.https.body_limit(&shared.config.gateway);
    let door = Arc::new(Door {
        shared,
        limit,
        shutdown,
        openapi: Bytes::from(openapi::document().to_string()),
    });
    Router::new()
        .route("/v1/agencies/{agency}/envelopes", post(envelopes))
        .route("/v1/agencies/{agency}/inbox", get(read_inbox))
        .route("/v1/agencies/{agency}/inbox/ack", post(ack))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(door)
}

async fn not_found() -> Problem {
    Problem::NotFound
}

async fn method_not_allowed() -> Problem {
    Problem::MethodNotAllowed
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi_json(State(door): DoorState) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        door.openapi.clone(),
    )
        .into_response()
}

/// The verdict as JSON, with its status: 201 accepted, 200 duplicate, the
/// refusal's own status otherwise.
fn verdict_response(verdict: &Verdict) -> Response {
    let status = match Outcome::try_from(verdict.outcome) {
        Ok(Outcome::Accepted) => 201,
        Ok(Outcome::Duplicate) => 200,
        _ => Refusal::http_status_of(&verdict.code).unwrap_or(500),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = liaison_proto::json::to_json("Verdict", verdict);
    (status, Json(body)).into_response()
}

async fn envelopes(
    State(door): DoorState,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let agency = path_agency(path);
    let encoding = match encoding(&headers) {
        Ok(e) => e,
        Err(problem) => return problem.into_response(),
    };
    let payload = match read_body(&headers, body, door.limit).await {
        Ok(payload) => payload,
        Err(Unread::TooLarge(size)) => {
            let verdict = ingress::refuse_too_large(&door.shared, size, door.limit).await;
            return verdict_response(&verdict);
        }
        Err(Unread::Problem(problem)) => return problem.into_response(),
    };
    let token = bearer(&headers);
    let context = liaison_core::trace::extract_http(&headers);
    let verdict = ingress::submit(
        &door.shared,
        &agency,
        token.as_deref(),
        &payload,
        encoding,
        context,
    )
    .await;
    verdict_response(&verdict)
}

/// The agency in the path, if the request's token is that agency's: the
/// checks [`ingress::submit`] makes before decoding, in the same order.
async fn authenticate(door: &Door, agency: &str, headers: &HeaderMap) -> Result<AgencyId, Refusal> {
    let id = AgencyId::parse(agency).map_err(|e| Refusal::InvalidAgencyId(e.to_string()))?;
    if door.shared.registry().get(&id).is_none() {
        return Err(Refusal::UnknownAgency(id.to_string()));
    }
    door.shared.membership.check(&id)?;
    let token = bearer(headers).ok_or(Refusal::MissingToken)?;
    door.shared.authenticate(&id, &token).await?;
    Ok(id)
}

/// [`authenticate`], logging a refusal (its code, never the token).
async fn agency_of(
    door: &Door,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    what: &'static str,
) -> Result<AgencyId, Problem> {
    authenticate(door, &path_agency(path), headers)
        .await
        .map_err(|refusal| {
            info!(code = refusal.code(), what, "HTTPS request refused");
            Problem::Refused(refusal)
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    max: Option<usize>,
    wait_ms: Option<u64>,
}

async fn read_inbox(
    State(door): DoorState,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<InboxQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, Problem> {
    let agency = agency_of(&door, path, &headers, "inbox").await?;
    let Query(query) = query.map_err(|e| Problem::InvalidRequest(e.body_text()))?;
    let max = query.max.unwrap_or(10);
    if !(1..=MAX_BATCH).contains(&max) {
        return Err(Problem::InvalidRequest(format!(
            "max must be 1 to {MAX_BATCH}"
        )));
    }
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0));
    if wait > MAX_WAIT {
        return Err(Problem::InvalidRequest(format!(
            "wait_ms must be at most {}",
            MAX_WAIT.as_millis()
        )));
    }
    let pulled = tokio::select! {
        pulled = inbox::pull(&door.shared, &agency, max, wait) => pulled?,
        () = door.shutdown.cancelled() => {
            return Err(Problem::Unavailable("the gateway is stopping".into()));
        }
    };
    info!(agency = %agency, deliveries = pulled.len(), "Inbox read over HTTPS");
    Ok(Json(json!({ "deliveries": pulled })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    ack_ids: Vec<String>,
}

async fn ack(
    State(door): DoorState,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, Problem> {
    let agency = agency_of(&door, path, &headers, "ack").await?;
    let body = read_body(&headers, body, door.limit)
        .await
        .map_err(|unread| match unread {
            Unread::TooLarge(size) => Problem::InvalidRequest(format!(
                "the body is {size} bytes, more than the {} allowed",
                door.limit
            )),
            Unread::Problem(problem) => problem,
        })?;
    let request: AckRequest = serde_json::from_slice(&body).map_err(|e| {
        Problem::InvalidRequest(format!(
            "the body must be {{\"ack_ids\": [\"...\"]}} (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    if request.ack_ids.len() > MAX_ACKS {
        return Err(Problem::InvalidRequest(format!(
            "at most {MAX_ACKS} ack ids at a time"
        )));
    }
    let acked = inbox::ack(&door.shared, &agency, &request.ack_ids).await?;
    info!(agency = %agency, acked, "Inbox acknowledged over HTTPS");
    Ok(Json(json!({ "acked": acked })))
}
