//! Consultations (DPA 2018 s.62: consultation is processing, and is logged).
//! An auditor asks before reading the ledger: who they are (a registered
//! auditor, proved by a short-lived EdDSA token with `aud` = `liaison-audit`),
//! what they will do and why. The audit service writes a consultation record —
//! or a refusal record — and grants the request only once that record is in
//! the ledger, so every replay, export or proof is itself on the record.

use crate::writer::Writer;
use async_nats::jetstream;
use futures_util::StreamExt;
use liaison_kit::tokens::{Claims, TokenVerifier};
use liaison_kit::{AgencyId, subjects};
use liaison_proto::v1::{AuditRecord, Decision, Operation};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The audience auditor tokens must name.
pub const AUDIENCE: &str = "liaison-audit";
/// Actions an auditor may state.
pub const ACTIONS: [&str; 5] = ["verify", "replay", "export", "prove", "consistency"];
const MAX_REQUEST: usize = 4096;

/// What an auditor sends (JSON), with its token in the `Liaison-Token` header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsultRequest {
    pub auditor: String,
    pub purpose: String,
    pub action: String,
    #[serde(default)]
    pub scope: String,
}

/// The answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsultReply {
    pub granted: bool,
    pub record_id: String,
    pub code: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditorFile {
    auditor: Vec<Auditor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Auditor {
    id: AgencyId,
    #[allow(dead_code)] // shown to people reading the file
    name: String,
    keys: Vec<liaison_kit::tokens::KeySpec>,
}

/// Loads the auditors' registry into a token verifier.
pub fn load_auditors(path: &Path, skew: u64, max_lifetime: u64) -> Result<TokenVerifier, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("auditors {}: {e}", path.display()))?;
    let file: AuditorFile =
        toml::from_str(&text).map_err(|e| format!("auditors {}: {e}", path.display()))?;
    let keys = file
        .auditor
        .iter()
        .map(|a| (a.id.as_str(), a.keys.as_slice()));
    TokenVerifier::new(keys, AUDIENCE, skew, max_lifetime)
        .map_err(|e| format!("auditors {}: {e}", path.display()))
}

type Refused = (&'static str, String);

/// Checks a request: its size, shape, purpose and the auditor's token.
fn check(
    verifier: &TokenVerifier,
    token: Option<&str>,
    body: &[u8],
) -> (Option<ConsultRequest>, Result<Claims, Refused>) {
    if body.len() > MAX_REQUEST {
        return (
            None,
            Err((
                "too_large",
                format!("request is larger than {MAX_REQUEST} bytes"),
            )),
        );
    }
    let request: ConsultRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return (
                None,
                Err((
                    "malformed_request",
                    format!("not a consultation request: {e}"),
                )),
            );
        }
    };
    let fail = |code, reason: String| Err((code, reason));
    let verdict = if AgencyId::parse(&request.auditor).is_err() {
        fail(
            "invalid_auditor_id",
            format!("{:?} is not a valid auditor id", request.auditor),
        )
    } else if request.purpose.trim().is_empty() || request.purpose.len() > 256 {
        fail(
            "invalid_purpose",
            "state the purpose of the consultation (1 to 256 bytes)".into(),
        )
    } else if !ACTIONS.contains(&request.action.as_str()) || request.scope.len() > 512 {
        fail(
            "invalid_action",
            format!("action must be one of {ACTIONS:?}, scope at most 512 bytes"),
        )
    } else {
        match token {
            None => fail(
                "missing_token",
                "no token: send a signed JWT in the Liaison-Token header".into(),
            ),
            Some(token) => verifier
                .verify(&request.auditor, token, liaison_kit::time::unix_now())
                .map_err(|e| ("invalid_token", e.to_string())),
        }
    };
    (Some(request), verdict)
}

/// Answers consultation requests until `shutdown`.
pub async fn serve(
    client: async_nats::Client,
    writer: Arc<Writer>,
    verifier: TokenVerifier,
    mut requests: async_nats::Subscriber,
    shutdown: CancellationToken,
) {
    let js = jetstream::new(client.clone());
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return,
            message = requests.next() => match message { Some(m) => m, None => return },
        };
        let token = message
            .headers
            .as_ref()
            .and_then(|h| h.get(subjects::TOKEN_HEADER))
            .map(|v| v.as_str().to_owned());
        let (request, verdict) = check(&verifier, token.as_deref(), &message.payload);
        let request = request.unwrap_or(ConsultRequest {
            auditor: String::new(),
            purpose: String::new(),
            action: String::new(),
            scope: String::new(),
        });
        let reply = record(&js, &writer, &request, &verdict).await;
        info!(auditor = %request.auditor, action = %request.action, granted = reply.granted, code = %reply.code, "Consultation");
        if let Some(to) = message.reply {
            let body = serde_json::to_vec(&reply).unwrap_or_default();
            if let Err(e) = client.publish(to, body.into()).await {
                warn!(error = %e, "Consultation reply not sent");
            }
        }
    }
}

/// Writes the consultation (or refusal) record and waits until it is chained.
async fn record(
    js: &jetstream::Context,
    writer: &Writer,
    request: &ConsultRequest,
    verdict: &Result<Claims, Refused>,
) -> ConsultReply {
    let record_id = uuid::Uuid::new_v4().to_string();
    let (decision, code, reason, author) = match verdict {
        Ok(claims) => (
            Decision::Accepted,
            String::new(),
            format!("{} {}", request.action, request.scope),
            claims.sub.clone(),
        ),
        Err((code, reason)) => (
            Decision::Refused,
            (*code).to_owned(),
            reason.clone(),
            String::new(),
        ),
    };
    let audit = AuditRecord {
        record_id: record_id.clone(),
        operation: Operation::Consultation as i32,
        decision: decision as i32,
        code: code.clone(),
        reason: reason.trim().to_owned(),
        purpose: request.purpose.chars().take(256).collect(),
        time: Some(liaison_kit::time::timestamp_now()),
        agency: AgencyId::parse(&request.auditor)
            .map(|a| a.to_string())
            .unwrap_or_default(),
        author,
        service: "audit".into(),
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", record_id.as_str());
    let stored = async {
        js.publish_with_headers(
            subjects::decisions("audit"),
            headers,
            audit.encode_to_vec().into(),
        )
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    let chained = match stored {
        Ok(ack) => {
            writer
                .wait_chained(ack.sequence, Duration::from_secs(10))
                .await
        }
        Err(_) => false,
    };
    match (verdict, chained) {
        (Ok(_), true) => ConsultReply {
            granted: true,
            record_id,
            code,
            reason: String::new(),
        },
        (Ok(_), false) => ConsultReply {
            granted: false,
            record_id,
            code: "unavailable".into(),
            reason: "the consultation could not be recorded in the ledger now; try again".into(),
        },
        (Err(_), _) => ConsultReply {
            granted: false,
            record_id,
            code,
            reason,
        },
    }
}
